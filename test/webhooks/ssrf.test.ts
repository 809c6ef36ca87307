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
  ['::2:1', 'ipv4-compatible'],
  ['not-an-ip', 'invalid'],
];

/**
 * Issue 9: IPv4-in-IPv6 ranges and non-global IPv6 that the guard let through. Each of these was
 * allowed (null) before.
 */
const refusedSinceIssue9: Array<[string, string]> = [
  // ::ffff:0:0/96 (IPv4-mapped) is closed whole, in every spelling, whatever the IPv4.
  ['::ffff:8.8.8.8', 'ipv4-mapped'],
  ['::ffff:808:808', 'ipv4-mapped'],
  ['0:0:0:0:0:ffff:0808:0808', 'ipv4-mapped'],
  // ::ffff:0:0:0/96 (IPv4-translated, SIIT).
  ['::ffff:0:7f00:1', 'ipv4-embedded loopback'],
  ['::ffff:0:127.0.0.1', 'ipv4-embedded loopback'],
  ['::ffff:0:a9fe:a9fe', 'ipv4-embedded link-local'],
  ['::ffff:0:8.8.8.8', 'ipv4-translated'],
  // NAT64: the well-known prefix is closed whole, the local-use /48 too (its IPv4 may sit anywhere).
  ['64:ff9b::808:808', 'nat64'],
  ['64:ff9b::8.8.8.8', 'nat64'],
  ['64:ff9b:1::7f00:1', 'nat64-local'],
  ['64:ff9b:1:7f00:1::', 'nat64-local'],
  ['64:ff9b:1:ffff::a00:1', 'nat64-local'],
  // Outside 2000::/3 nothing is global unicast.
  ['::ffff:1:2:3', 'reserved'],
  ['1::', 'reserved'],
  ['5f00::1', 'reserved'],
  ['4000::1', 'reserved'],
  // IETF protocol assignments and documentation inside 2000::/3.
  ['2001:2::1', 'ietf-protocol'],
  ['2001:10::1', 'ietf-protocol'],
  ['2001:20::1', 'ietf-protocol'],
  ['3fff::1', 'documentation'],
  ['3fff:fff:ffff::1', 'documentation'],
];

const allowed = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.32.0.1',
  '100.128.0.1',
  '11.0.0.1',
  '2606:4700:4700::1111',
  '2a00:1450:4001::200e',
  '2002:808:808::1', // 6to4 of a public IPv4
  '2001:200::1', // just past 2001::/23
  '3fff:1000::1', // just past 3fff::/20
  '2c0f:f248::1',
];

describe('forbiddenAddressReason', () => {
  it.each(refused)('refuses %s (%s)', (addr, reason) => {
    expect(forbiddenAddressReason(addr)).toBe(reason);
  });
  it.each(refusedSinceIssue9)('refuses %s (%s)', (addr, reason) => {
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
  it('refuses IPv4-in-IPv6 and loopback-name literals in URLs, in every spelling', async () => {
    for (const u of [
      'http://[::ffff:7f00:1]/',
      'http://[::ffff:0:7f00:1]/',
      'http://[0:0:0:0:0:ffff:8.8.8.8]/',
      'http://[64:ff9b::7f00:1]/',
      'http://[64:ff9b:1::7f00:1]/',
      'http://[64:ff9b::808:808]/',
      'http://[2002:7f00:1::1]/',
      'http://[fe80::1]/',
      'http://0177.0.0.1/',
      'http://0x7f.1/',
      'http://127.1/',
      'http://017700000001/',
      'http://0x7f.0x0.0x0.0x1/',
      'http://0/',
      'http://100.64.0.1/',
      'http://255.255.255.255/',
      'http://localhost./',
      'http://api.localhost./',
    ]) {
      await expect(checkWebhookUrl(u, { allowPrivate: false, resolve: async () => ['93.184.216.34'] }), u).rejects.toBeInstanceOf(UnsafeUrlError);
    }
  });
  it('refuses a name resolving to an IPv4-mapped or NAT64 address', async () => {
    for (const a of ['::ffff:127.0.0.1', '::ffff:8.8.8.8', '64:ff9b:1::a00:1']) {
      await expect(checkWebhookUrl('https://evil.example/', { allowPrivate: false, resolve: async () => [a] }), a).rejects.toBeInstanceOf(UnsafeUrlError);
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
