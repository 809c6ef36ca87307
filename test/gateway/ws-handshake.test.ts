/**
 * The opening handshake (src/gateway/ws-handshake.ts): RFC 6455 §4.2's accept value, and the
 * refusals `ws` gave before (405 for another method; 400 for a bad Upgrade, key, version or
 * subprotocol list), checked on a real server with raw requests.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { answerUpgrade } from '../../src/gateway/ws-handshake.js';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';

const req = (headers: Record<string, string>, method = 'GET') => ({ method, headers }) as unknown as IncomingMessage;
const valid = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };

describe('answerUpgrade', () => {
  it('answers the RFC 6455 example with its accept value, in one buffer', () => {
    const r = answerUpgrade(req(valid));
    expect(r.ok).toBe(true);
    const text = r.ok ? r.response.toString('latin1') : '';
    expect(text).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
  });

  it('selects the first offered subprotocol, and refuses a malformed list', () => {
    const r = answerUpgrade(req({ ...valid, 'sec-websocket-protocol': 'tpx.v1, other' }));
    expect(r.ok && r.response.toString('latin1')).toContain('\r\nSec-WebSocket-Protocol: tpx.v1\r\n\r\n');
    for (const bad of ['a,,b', 'a, a', 'sp ace', '']) expect(answerUpgrade(req({ ...valid, 'sec-websocket-protocol': bad }))).toMatchObject({ ok: false, status: 400 });
  });

  it.each([
    ['another method', req(valid, 'POST'), 405],
    ['no Upgrade header', req({ ...valid, upgrade: '' }), 400],
    ['Upgrade other than websocket', req({ ...valid, upgrade: 'h2c' }), 400],
    ['a key that is not 16 bytes in base64', req({ ...valid, 'sec-websocket-key': 'c2hvcnQ=' }), 400],
    ['no version', req({ ...valid, 'sec-websocket-version': '' }), 400],
    ['version 12', req({ ...valid, 'sec-websocket-version': '12' }), 400],
  ])('refuses %s', (_name, r, status) => {
    expect(answerUpgrade(r)).toMatchObject({ ok: false, status });
  });
});

describe('the /ws endpoint', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await stopAll();
  });

  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const url = new URL(server.wsUrl);
      const s = net.connect(Number(url.port), url.hostname, () => s.write(request));
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.startsWith('HTTP/1.1 101') && got.includes('\r\n\r\n')) s.destroy(); // open: nothing more to read
      });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      setTimeout(() => s.destroy(), 2000);
    });

  it('refuses a bad key with 400 and closes; answers a good one with 101', async () => {
    const bad = await raw('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: nope\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bad).toContain('Missing or invalid Sec-WebSocket-Key header');
    const version = await raw('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n');
    expect(version).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(version).toContain('Sec-WebSocket-Version: 13, 8');
    const good = await raw('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect(good).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n\r\n/);
  });
});
