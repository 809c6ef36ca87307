import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, forbiddenAddressReason, parseWebhookUrl, UnsafeUrlError } from '../../src/webhooks/ssrf.js';

const refused: Array<[string, string]> = [
  ['0.0.0.0', 'unspecified'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['169.254.169.254', 'link-local'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['192.0.2.10', 'documentation'],
  ['198.18.0.1', 'benchmark'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456::1', 'unique-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['::ffff:127.0.0.1', 'ipv4-embedded loopback'],
  ['::ffff:7f00:1', 'ipv4-embedded loopback'],
  ['::ffff:10.0.0.1', 'ipv4-embedded private'],
  ['::ffff:169.254.169.254', 'ipv4-embedded link-local'],
  ['64:ff9b::a9fe:a9fe', 'ipv4-embedded link-local'],
  ['2002:c0a8:101::1', 'ipv4-embedded private'],
  ['::127.0.0.1', 'ipv4-compatible'],
  ['not-an-ip', 'invalid'],
];
const allowed = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '11.0.0.1', '2606:4700:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.8.8'];

describe('forbiddenAddressReason', () => {
  it.each(refused)('refuses %s (%s)', (addr, reason) => {
    expect(forbiddenAddressReason(addr)).toBe(reason);
  });
  it.each(allowed)('allows public %s', (addr) => {
    expect(forbiddenAddressReason(addr)).toBeNull();
  });
});

describe('parseWebhookUrl', () => {
  it('accepts http and https', () => {
    expect(parseWebhookUrl('https://hooks.example.com/tpx?x=1').hostname).toBe('hooks.example.com');
    expect(parseWebhookUrl('http://hooks.example.com:8080/').port).toBe('8080');
  });
  it.each(['ftp://example.com/', 'file:///etc/passwd', 'gopher://x/', 'javascript:alert(1)', 'not a url', '', 'https://user:pw@example.com/', 'https://user@example.com/', 'https://example.com/' + 'a'.repeat(2100)])(
    'refuses %s',
    (u) => {
      expect(() => parseWebhookUrl(u)).toThrow(UnsafeUrlError);
    },
  );
});

describe('checkWebhookUrl', () => {
  const resolveTo = (addrs: string[]) => async () => addrs;
  it('refuses loopback, private and link-local literals and names', async () => {
    for (const u of ['http://127.0.0.1:8080/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://169.254.169.254/latest/meta-data', 'http://2130706433/', 'http://0x7f000001/', 'http://localhost/', 'http://api.localhost/']) {
      await expect(checkWebhookUrl(u, { allowPrivate: false }), u).rejects.toBeInstanceOf(UnsafeUrlError);
    }
  });
  it('refuses a name when any resolved address is private', async () => {
    await expect(checkWebhookUrl('https://evil.example/', { allowPrivate: false, resolve: resolveTo(['93.184.216.34', '10.0.0.5']) })).rejects.toThrow(/private/);
  });
  it('refuses an unresolvable name', async () => {
    await expect(
      checkWebhookUrl('https://nope.invalid/', {
        allowPrivate: false,
        resolve: async () => {
          throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
        },
      }),
    ).rejects.toThrow(/does not resolve/);
  });
  it('accepts a name resolving to public addresses only', async () => {
    const url = await checkWebhookUrl('https://partner.example/hook', { allowPrivate: false, resolve: resolveTo(['93.184.216.34', '2606:4700::1']) });
    expect(url.href).toBe('https://partner.example/hook');
  });
  it('allowPrivate skips address checks but not syntax checks', async () => {
    await expect(checkWebhookUrl('http://127.0.0.1:9/', { allowPrivate: true })).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('ftp://127.0.0.1/', { allowPrivate: true })).rejects.toBeInstanceOf(UnsafeUrlError);
  });
});
