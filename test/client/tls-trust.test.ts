/**
 * The SDK against TLS servers whose certificate comes from a private CA, in a child process that
 * trusts that CA the way the SDK's hint says (NODE_EXTRA_CA_CERTS), with both transports:
 * - the hint works: https:// to a tpx server with a CA-signed certificate connects;
 * - an expired certificate is the operator's to renew: `error` TLS_CERT_EXPIRED once (loud), and
 *   the client keeps retrying (it recovers by itself once the certificate is renewed);
 * - a certificate for another name is fatal TLS_CERT_NAME_MISMATCH, never a silent retry loop.
 * The expired and wrong-name servers are plain Node HTTPS servers: the handshake fails before any
 * HTTP, and tpx itself refuses to start with an expired certificate.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf } from '../helpers/certs.js';
import { REPO_ROOT, startTestServer, stopAll, type TestServer } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tpx-sdk-trust-'));
let tpx: TestServer;
const plain: Server[] = [];

async function httpsServer(leaf: { cert: string; key: string }): Promise<number> {
  const s = createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (_req, res) => res.end('{}'));
  s.on('tlsClientError', (_err, socket) => socket.destroy());
  plain.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

let expiredPort: number;
let otherNamePort: number;

beforeAll(async () => {
  makeCa(dir);
  const good = makeLeaf(dir, 'good');
  expiredPort = await httpsServer(makeLeaf(dir, 'expired', { expired: true }));
  otherNamePort = await httpsServer(makeLeaf(dir, 'other', { names: 'DNS:other.example' }));
  tpx = await startTestServer({ env: { TPX_TLS_CERT: good.cert, TPX_TLS_KEY: good.key } });
}, 60_000);

afterAll(async () => {
  for (const s of plain) s.close();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Run the SDK (from source) in a child that trusts our CA; the snippet prints one JSON line. */
function runTrusting(code: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', () => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`no JSON result; stdout: ${out}\nstderr: ${err}`));
      }
    });
  });
}

const observe = (url: string, transport: string, token: string) => `
  import { TpxClient } from './packages/client/src/index.ts';
  const client = new TpxClient({ url: ${JSON.stringify(url)}, token: ${JSON.stringify(token)}, transport: ${JSON.stringify(transport)}, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
  const errors = [];
  let reconnects = 0;
  client.on('error', (e) => errors.push({ code: e.code, fatal: e.fatal, message: e.message }));
  client.on('reconnecting', () => reconnects++);
  const outcome = await Promise.race([client.connect().then(() => 'open', (e) => 'rejected ' + e.code), new Promise((r) => setTimeout(() => r('pending'), 2000))]);
  const state = client.state;
  await client.close();
  console.log(JSON.stringify({ outcome, state, errors, reconnects }));
`;

describe.each(['websocket', 'sse'])('SDK over TLS with a private CA (%s)', (transport) => {
  it('NODE_EXTRA_CA_CERTS (the hint of TLS_CERT_UNTRUSTED) makes https:// work', async () => {
    const r = await runTrusting(observe(`https://127.0.0.1:${tpx.port}`, transport, 'tp_live_unknown'));
    // Reaching the server is the point: it then refuses the key, as it should.
    expect(r).toMatchObject({ outcome: 'rejected AUTH_INVALID_API_KEY', errors: [{ code: 'AUTH_INVALID_API_KEY' }] });
  }, 40_000);

  it('an expired certificate: reported once on `error`, and retried', async () => {
    const r = await runTrusting(observe(`https://localhost:${expiredPort}`, transport, 'tp_live_x'));
    expect(r.outcome).toBe('pending');
    expect(['connecting', 'reconnecting']).toContain(r.state); // still trying
    expect(r.reconnects).toBeGreaterThanOrEqual(2);
    expect(r.errors).toEqual([{ code: 'TLS_CERT_EXPIRED', fatal: false, message: expect.stringMatching(/certificate of localhost:\d+ is outside its validity period \(CERT_HAS_EXPIRED.*renew/) }]);
  }, 40_000);

  it('a certificate for another name: fatal TLS_CERT_NAME_MISMATCH', async () => {
    const r = await runTrusting(observe(`https://localhost:${otherNamePort}`, transport, 'tp_live_x'));
    expect(r).toMatchObject({ outcome: 'rejected TLS_CERT_NAME_MISMATCH', state: 'closed', reconnects: 0 });
    expect(r.errors).toEqual([{ code: 'TLS_CERT_NAME_MISMATCH', fatal: true, message: expect.stringMatching(/not valid for that name \(ERR_TLS_CERT_ALTNAME_INVALID/) }]);
  }, 40_000);
});
