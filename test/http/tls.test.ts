/**
 * TLS on the one port (SPEC §5) against a real `tpx serve`: certificates made with `openssl`
 * (a private CA and leaves for 127.0.0.1/localhost), HTTPS and wss:// verified against that CA,
 * plain HTTP refused, rotation on SIGHUP without dropping an open WebSocket, a bad file on
 * SIGHUP keeping the old certificate, and start-up errors.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { samplePayload } from '../helpers/payloads.js';
import { makeLeaf } from '../helpers/certs.js';
import { startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tpx-tls-'));
const file = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A private CA (ca.pem/ca.key) and `count` leaves for 127.0.0.1 and localhost signed by it. */
function makeCertificates(count: number): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tpx test CA');
  writeFileSync(file('leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  for (let i = 1; i <= count; i++) {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `leaf${i}.key`, '-out', `leaf${i}.csr`, '-subj', `/CN=tpx leaf ${i}`);
    openssl('x509', '-req', '-in', `leaf${i}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `leaf${i}.pem`, '-days', '2', '-extfile', 'leaf.ext');
  }
}

let ca: Buffer;
let server: TestServer;
const httpsUrl = () => `https://127.0.0.1:${server.port}`;
const wssUrl = () => `wss://127.0.0.1:${server.port}/ws`;

/** The certificate a fresh TLS handshake is answered with (verified against our CA). */
function peerCertificate(): Promise<{ subject: string; fingerprint256: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve({ subject: cert.subject.CN as string, fingerprint256: cert.fingerprint256 });
    });
    socket.once('error', reject);
  });
}

function httpsJson(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${httpsUrl()}${urlPath}`,
      { method, ca, headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.once('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

/** An authenticated wss:// connection (verified against our CA) subscribed to BID_REQUEST. */
async function openWss(token: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(wssUrl(), { wsOptions: { ca } });
  await client.authenticate(token);
  await client.subscribe(['BID_REQUEST']);
  return client;
}

beforeAll(async () => {
  makeCertificates(2);
  ca = readFileSync(file('ca.pem'));
  copyFileSync(file('leaf1.pem'), file('server.pem'));
  copyFileSync(file('leaf1.key'), file('server.key'));
  server = await startTestServer({ env: { TPX_TLS_CERT: file('server.pem'), TPX_TLS_KEY: file('server.key') } });
}, 60_000);

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS on the one port', () => {
  it('announces https:// and wss:// URLs', () => {
    const listening = server.logs().find((l) => l.msg === 'listening')!;
    expect(listening.url).toBe(httpsUrl());
    expect(listening.ws_url).toBe(wssUrl());
    expect(listening.tls).toMatchObject({ subject: 'CN=tpx leaf 1' });
  });

  it('serves HTTPS (verified against the CA) and wss:// with events flowing', async () => {
    expect((await httpsJson('GET', '/healthz')).status).toBe(200);
    const account = await httpsJson('POST', '/admin/accounts', { name: 'tls' });
    expect(account.status).toBe(201);
    const key = await httpsJson('POST', `/admin/accounts/${account.body.account_id}/api-keys`, {});
    const client = await openWss(key.body.token);
    const published = await httpsJson('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.body.account_id], payload: samplePayload('BID_REQUEST') });
    expect(published.status).toBe(202);
    expect((await client.next((f) => f.msg_type === 'BID_REQUEST')).msg_id).toBe(published.body.msg_id);
    await client.close();
  });

  it('refuses plain HTTP on the TLS port: no HTTP answer, the connection is closed', async () => {
    await expect(fetch(`http://127.0.0.1:${server.port}/healthz`)).rejects.toThrow();
    // Byte level: what a plain client gets back is never an HTTP response.
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(server.port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      socket.on('data', (c) => (got += c.toString('latin1')));
      socket.once('close', () => resolve(got));
      socket.once('error', reject);
      socket.setTimeout(5000, () => socket.destroy(new Error('server did not close the plain connection')));
    });
    expect(reply.startsWith('HTTP/')).toBe(false);
    // …and a plain ws:// upgrade fails the same way.
    const plain = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
    await new Promise<void>((resolve) => plain.once('error', () => resolve()));
    const metrics = await new Promise<string>((resolve, reject) => {
      httpsRequest(`${httpsUrl()}/metrics`, { ca }, (res) => {
        let t = '';
        res.on('data', (c) => (t += c));
        res.on('end', () => resolve(t));
      })
        .once('error', reject)
        .end();
    });
    expect(Number(/^tpx_tls_handshake_errors_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('rotates on SIGHUP: new connections get the new certificate, an open WebSocket keeps receiving', async () => {
    const account = await httpsJson('POST', '/admin/accounts', { name: 'rotation' });
    const key = await httpsJson('POST', `/admin/accounts/${account.body.account_id}/api-keys`, {});
    const before = await peerCertificate();
    expect(before.subject).toBe('tpx leaf 1');
    const old = await openWss(key.body.token);

    copyFileSync(file('leaf2.pem'), file('server.pem'));
    copyFileSync(file('leaf2.key'), file('server.key'));
    const reloadsBefore = server.logs().filter((l) => l.msg === 'TLS certificate reloaded').length;
    server.proc.kill('SIGHUP');
    await waitFor(() => server.logs().filter((l) => l.msg === 'TLS certificate reloaded').length > reloadsBefore, 5000, 'reload log line');

    const after = await peerCertificate();
    expect(after.subject).toBe('tpx leaf 2');
    expect(after.fingerprint256).not.toBe(before.fingerprint256);

    // The connection opened under the old certificate is still there and still receives.
    expect(old.isOpen).toBe(true);
    const published = await httpsJson('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.body.account_id], payload: samplePayload('BID_REQUEST') });
    expect((await old.next((f) => f.msg_type === 'BID_REQUEST')).msg_id).toBe(published.body.msg_id);
    expect(old.history.some((f) => f.msg_type === 'error')).toBe(false);
    await old.close();
    expect(server.proc.exitCode).toBeNull();
  });

  it('keeps the current certificate when the new files are bad, and says why', async () => {
    const current = await peerCertificate();
    const failedBefore = server.logs().filter((l) => l.msg === 'TLS reload failed: keeping the current certificate').length;
    const failures = () => server.logs().filter((l) => l.msg === 'TLS reload failed: keeping the current certificate');

    // 1. Not a certificate at all.
    writeFileSync(file('server.pem'), 'this is not PEM\n');
    server.proc.kill('SIGHUP');
    await waitFor(() => failures().length > failedBefore, 5000, 'failure log line');
    expect(String(failures().at(-1)!.reason)).toContain('TPX_TLS_CERT');
    expect((await peerCertificate()).fingerprint256).toBe(current.fingerprint256);

    // 2. A valid certificate with the key of another one.
    copyFileSync(file('leaf1.pem'), file('server.pem'));
    copyFileSync(file('leaf2.key'), file('server.key'));
    server.proc.kill('SIGHUP');
    await waitFor(() => failures().length > failedBefore + 1, 5000, 'second failure log line');
    expect(String(failures().at(-1)!.reason)).toMatch(/does not match/);
    expect((await peerCertificate()).fingerprint256).toBe(current.fingerprint256);

    // 3. A missing file.
    rmSync(file('server.key'));
    server.proc.kill('SIGHUP');
    await waitFor(() => failures().length > failedBefore + 2, 5000, 'third failure log line');
    expect(String(failures().at(-1)!.reason)).toMatch(/TPX_TLS_KEY .* cannot be read: ENOENT/);
    expect((await peerCertificate()).fingerprint256).toBe(current.fingerprint256);
    expect((await httpsJson('GET', '/healthz')).status).toBe(200);

    // 4. The right key, readable by every user of the machine (refused as at start).
    copyFileSync(file('leaf1.key'), file('server.key'));
    chmodSync(file('server.key'), 0o644);
    server.proc.kill('SIGHUP');
    await waitFor(() => failures().length > failedBefore + 3, 5000, 'fourth failure log line');
    expect(String(failures().at(-1)!.reason)).toMatch(/TPX_TLS_KEY .* has mode 0644/);
    expect((await peerCertificate()).fingerprint256).toBe(current.fingerprint256);

    // Fixed files are picked up by the next SIGHUP (group-read is allowed, as PostgreSQL allows it).
    chmodSync(file('server.key'), 0o640);
    server.proc.kill('SIGHUP');
    await waitFor(async () => (await peerCertificate()).subject === 'tpx leaf 1', 5000, 'leaf 1 back');
  });
});

describe('TLS configuration errors stop the start with a clear message', () => {
  it('only one of TPX_TLS_CERT / TPX_TLS_KEY set', async () => {
    await expect(startTestServer({ env: { TPX_TLS_CERT: file('leaf1.pem') } })).rejects.toThrow(
      /TPX_TLS_CERT is set but TPX_TLS_KEY is not/,
    );
    await expect(startTestServer({ env: { TPX_TLS_KEY: file('leaf1.key') } })).rejects.toThrow(/TPX_TLS_KEY is set but TPX_TLS_CERT is not/);
  });

  it('an expired certificate: the start is refused naming the file, as a reload would refuse it', async () => {
    const old = makeLeaf(dir, 'expired', { expired: true }); // signed by the CA made in beforeAll
    await expect(startTestServer({ env: { TPX_TLS_CERT: old.cert, TPX_TLS_KEY: old.key } })).rejects.toThrow(
      /TPX_TLS_CERT \(.*expired\.pem\) expired at 2020-02-01T00:00:00\.000Z/,
    );
  });

  it('an unreadable or mismatched pair', async () => {
    await expect(startTestServer({ env: { TPX_TLS_CERT: file('nope.pem'), TPX_TLS_KEY: file('leaf1.key') } })).rejects.toThrow(
      /TPX_TLS_CERT \(.*nope\.pem\) cannot be read: ENOENT/,
    );
    await expect(startTestServer({ env: { TPX_TLS_CERT: file('leaf1.pem'), TPX_TLS_KEY: file('leaf2.key') } })).rejects.toThrow(/does not match/);
  });
});
