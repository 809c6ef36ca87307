/**
 * Review (issue 11 "a client that fails loudly", issue 12 TLS): the SDK against a TLS server with
 * the mistakes a partner makes first. Each one below is retried forever with the same
 * `reconnecting` "connection closed (1006)" and nothing ever reaches `error` (README's snippet
 * listens only to `error` and `closed`, so the partner sees nothing at all). The TLS reason
 * (wrong scheme, certificate not trusted) is dropped from the message.
 * Expected: within a few seconds an `error` whose message says what is wrong.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import type { TpxError } from '../../packages/client/src/errors.js';
import { sleep, startTestServer, stopAll, type TestServer } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tpx-rv-tls-'));
const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

let tlsServer: TestServer;
let plainServer: TestServer;

beforeAll(async () => {
  // A certificate from a private CA that the client does not trust (NODE_EXTRA_CA_CERTS not set to it).
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=review CA');
  writeFileSync(file('leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=review leaf');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'leaf.ext');
  [tlsServer, plainServer] = await Promise.all([
    startTestServer({ env: { TPX_TLS_CERT: file('leaf.pem'), TPX_TLS_KEY: file('leaf.key') } }),
    startTestServer(),
  ]);
}, 60_000);

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** What the application sees on `error` within `ms`, and how many silent reconnects happened. */
async function observe(url: string, transport: 'websocket' | 'sse', ms = 4_000) {
  const client = new TpxClient({ url, token: 'tp_live_whatever', transport, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  const errors: TpxError[] = [];
  const reconnects: string[] = [];
  client.on('error', (e) => void errors.push(e));
  client.on('reconnecting', (i) => void reconnects.push(i.error?.message ?? ''));
  void client.connect();
  await sleep(ms);
  await client.close();
  return { errors: errors.map((e) => `${e.code}: ${e.message}`), reconnects: reconnects.length, lastReconnectMessage: reconnects.at(-1) };
}

describe.each(['websocket', 'sse'] as const)('SDK (%s) fails loudly on TLS mistakes', (transport) => {
  it('http:// base URL (as README shows) against a server that serves TLS', async () => {
    const seen = await observe(`http://127.0.0.1:${tlsServer.port}`, transport);
    expect(seen.errors[0], JSON.stringify(seen)).toMatch(/TLS|https|wss/i);
  }, 20_000);

  it('https:// against a certificate the runtime does not trust (NODE_EXTRA_CA_CERTS missing)', async () => {
    const seen = await observe(`https://127.0.0.1:${tlsServer.port}`, transport);
    expect(seen.errors[0], JSON.stringify(seen)).toMatch(/certificate/i);
  }, 20_000);

  it('https:// against a server without TLS', async () => {
    const seen = await observe(`https://127.0.0.1:${plainServer.port}`, transport);
    expect(seen.errors[0], JSON.stringify(seen)).toMatch(/TLS|SSL|http:\/\/|ws:\/\//i);
  }, 20_000);
});
