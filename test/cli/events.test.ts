/**
 * `tpx publish`, `tpx listen` and `tpx webhooks forward` against a real server.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCa, makeLeaf } from '../helpers/certs.js';
import { createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { runCli, spawnCli, stopAllCli, type CliResult } from './run-cli.js';

// Each step spawns a CLI process; on a loaded 2-core machine that can take seconds.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let env: Record<string, string>;
const tmp = mkdtempSync(path.join(tmpdir(), 'tpx-cli-'));

beforeAll(async () => {
  server = await startTestServer();
  env = { TPX_URL: server.url, TPX_ADMIN_TOKEN: server.adminToken };
});
afterAll(async () => {
  await stopAllCli();
  await stopAll();
});

/** A loopback port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function ok(r: CliResult): CliResult {
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r;
}

describe('tpx publish', () => {
  it('--sample publishes a valid event that reaches the account', async () => {
    const { accountId } = await createAccountWithKey(server);
    const r = ok(await runCli(['publish', 'BID_REQUEST', '--account', accountId, '--sample', '--json'], { env }));
    const res = JSON.parse(r.stdout);
    expect(res.msg_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.recipients).toBe(1);
  });

  it('--payload <file> with --msg-id, readable output', async () => {
    const { accountId } = await createAccountWithKey(server);
    const file = path.join(tmp, 'cb.json');
    writeFileSync(file, JSON.stringify({ conditional_bid_id: 'cb_42', status: 'FILLED' }));
    const msgId = '0b8c2a5e-6f1d-4c3b-9a7e-1d2c3b4a5f60';
    const r = ok(await runCli(['publish', 'CONDITIONAL_BID_STATUS_CHANGE', '--account', accountId, '--payload', file, '--msg-id', msgId], { env }));
    expect(r.stdout).toBe(`published CONDITIONAL_BID_STATUS_CHANGE msg_id=${msgId} recipients=1\n`);
  });

  it('an unknown account is the server’s UNKNOWN_ACCOUNT error on one line', async () => {
    const r = await runCli(['publish', 'BID_REQUEST', '--account', '00000000-0000-4000-8000-000000000000', '--sample'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: UNKNOWN_ACCOUNT: .*00000000-0000-4000-8000-000000000000.*\[HTTP 400\]\n$/);
  });
});

describe('tpx listen', () => {
  it('prints a published event (readable line and --json frame)', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const human = spawnCli(['listen', '--token', token, '--rooms', 'ALL'], { env });
    const raw = spawnCli(['listen', '--token', token, '--rooms', 'PAYMENT_SETTLED', '--json'], { env });
    await human.waitFor(/subscribed to ALL/, 'stderr');
    await raw.waitFor(/subscribed to PAYMENT_SETTLED/, 'stderr');

    const conns = JSON.parse(ok(await runCli(['connections', '--account', accountId, '--json'], { env })).stdout);
    const list = Array.isArray(conns) ? conns : conns.connections;
    expect(list.map((c: { rooms: string[] }) => c.rooms.join(',')).sort()).toEqual(['ALL', 'PAYMENT_SETTLED']);

    ok(await runCli(['publish', 'PAYMENT_SETTLED', '--account', accountId, '--sample', '--payload', '{"total_charged_cents": 46800}'], { env }));
    const line = await human.waitFor(/PAYMENT_SETTLED/);
    expect(line).toMatch(/#\s+1\s+PAYMENT_SETTLED\s+conv=.*total=\$468\.00/);
    const frame = JSON.parse(await raw.waitFor(/PAYMENT_SETTLED/));
    expect(frame).toMatchObject({ msg_type: 'PAYMENT_SETTLED', seq: 1, payload: { total_charged_cents: 46800 } });

    expect(await human.stop('SIGINT')).toBe(0);
    expect(await raw.stop('SIGINT')).toBe(0);
  });

  it('--after-seq replays stored events', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publish(server, { msg_type: 'CONDITIONAL_BID_STATUS_CHANGE', account_ids: [accountId], payload: { conditional_bid_id: 'cb_1', status: 'FILLED' } });
    await publish(server, { msg_type: 'CONDITIONAL_BID_STATUS_CHANGE', account_ids: [accountId], payload: { conditional_bid_id: 'cb_2', status: 'EXPIRED' } });
    const l = spawnCli(['listen', '--token', token, '--after-seq', '1', '--json'], { env });
    const frame = JSON.parse(await l.waitFor(/CONDITIONAL_BID_STATUS_CHANGE/));
    expect(frame.seq).toBe(2);
    expect(frame.payload.conditional_bid_id).toBe('cb_2');
    await l.stop();
    expect(l.stdout()).not.toContain('"cb_1"');
  });

  it('takes the key from TPX_API_KEY; the old names still work, with a deprecation warning', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const viaEnv = spawnCli(['listen', '--json'], { env: { ...env, TPX_API_KEY: token } });
    const viaOld = spawnCli(['listen', '--json'], { env: { ...env, TPX_TOKEN: token } });
    await viaEnv.waitFor(/subscribed to ALL/, 'stderr');
    await viaOld.waitFor(/subscribed to ALL/, 'stderr');
    expect(viaOld.stderr()).toContain('warning: TPX_TOKEN is deprecated; set TPX_API_KEY instead');
    expect(viaEnv.stderr()).not.toContain('deprecated');
    const published = await publish(server, { msg_type: 'CONDITIONAL_BID_STATUS_CHANGE', account_ids: [accountId], payload: { conditional_bid_id: 'cb_9', status: 'FILLED' } });
    for (const l of [viaEnv, viaOld]) expect(JSON.parse(await l.waitFor(/CONDITIONAL_BID_STATUS_CHANGE/)).msg_id).toBe(published.msg_id);
    expect(await viaEnv.stop('SIGINT')).toBe(0);
    expect(await viaOld.stop('SIGINT')).toBe(0);
  });

  it('a URL with no WebSocket endpoint exits 1 at once with a hint (no silent retry loop)', async () => {
    const { token } = await createAccountWithKey(server);
    const l = spawnCli(['listen', '--token', token, '--url', `${server.url}/api`], { env });
    expect(await l.exited()).toBe(1);
    expect(l.stderr()).toContain(`error HANDSHAKE_REJECTED: no WebSocket endpoint at ws://127.0.0.1:${server.port}/api (HTTP 404); did you mean ws://127.0.0.1:${server.port}/ws?`);
    expect(l.stderr()).not.toMatch(/reconnecting/);
  });

  it('a port where nothing listens: retried, and each status line says why (not just "connection lost")', async () => {
    const { token } = await createAccountWithKey(server);
    const closedPort = await freePort();
    const l = spawnCli(['listen', '--token', token, '--url', `http://127.0.0.1:${closedPort}`], { env });
    const line = await l.waitFor(/reconnecting in/, 'stderr');
    expect(line).toContain(`cannot connect to ws://127.0.0.1:${closedPort}/ws: connect ECONNREFUSED 127.0.0.1:${closedPort} (is the server running, and is this its port?)`);
    expect(await l.stop('SIGINT')).toBe(0);
  });

  it('http:// against a TLS port exits 1 with a hint to use https:// (fatal, not retried)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tpx-cli-tls-'));
    makeCa(dir);
    const leaf = makeLeaf(dir, 'leaf');
    const tls = await startTestServer({ env: { TPX_TLS_CERT: leaf.cert, TPX_TLS_KEY: leaf.key } });
    const l = spawnCli(['listen', '--token', 'tp_live_x', '--url', `http://127.0.0.1:${tls.port}`], { env });
    expect(await l.exited()).toBe(1);
    expect(l.stderr()).toContain(`error TLS_REQUIRED: ws://127.0.0.1:${tls.port}/ws closed the connection without an answer and speaks TLS on that port: use wss://127.0.0.1:${tls.port}/ws`);
    expect(l.stderr()).not.toMatch(/reconnecting/);
    await tls.stop();
  });

  it('an invalid key prints the error code and exits 2 (close 4001)', async () => {
    const l = spawnCli(['listen', '--token', 'tp_live_not_a_real_key'], { env });
    expect(await l.exited()).toBe(2);
    expect(l.stderr()).toMatch(/error AUTH_INVALID_API_KEY/);
    expect(l.stderr()).toMatch(/4001/);
  });
});

describe('tpx webhooks forward', () => {
  let hookServer: Server;
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];

  beforeAll(async () => {
    hookServer = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => hookServer.close(() => r())));

  it('re-posts each event as a Standard-Webhooks-signed POST that standardwebhooks verifies', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const port = (hookServer.address() as { port: number }).port;
    const fwd = spawnCli(['webhooks', 'forward', '--token', token, '--to', `http://127.0.0.1:${port}/hook`], { env });
    const ready = await fwd.waitFor(/signing secret is/);
    const secret = /(whsec_\S+)/.exec(ready)![1];
    await fwd.waitFor(/subscribed to ALL/, 'stderr');

    const published = await publish(server, {
      msg_type: 'BID_OUTBID',
      account_ids: [accountId],
      payload: (await import('../../packages/protocol/src/samples.js')).samplePayload('BID_OUTBID'),
    });
    const line = await fwd.waitFor(/BID_OUTBID/);
    expect(line).toContain(published.msg_id);
    expect(line).toMatch(/\[200 OK\]/);

    const req = await waitFor(() => received.find((r) => r.headers['webhook-id'] === published.msg_id), 10_000, 'forwarded request');
    const verified = new Webhook(secret).verify(req.body, {
      'webhook-id': String(req.headers['webhook-id']),
      'webhook-timestamp': String(req.headers['webhook-timestamp']),
      'webhook-signature': String(req.headers['webhook-signature']),
    }) as Record<string, unknown>;
    expect(verified).toMatchObject({ msg_type: 'BID_OUTBID', msg_id: published.msg_id, destination_id: accountId });
    expect(Number.isInteger(verified.sent_at)).toBe(true);
    expect(String(verified.sent_at)).toHaveLength(10); // seconds, not milliseconds
    expect(Object.keys(verified)).toEqual(['msg_type', 'msg_id', 'seq', 'sent_at', 'source_id', 'destination_id', 'payload']);
    expect(verified.seq).toBe(1);
    expect(req.headers['content-type']).toBe('application/json');

    expect(await fwd.stop('SIGINT')).toBe(0);
  });

  // SPEC §4: destination_id is the account's partner_id, else its account_id; the forwarded body
  // must be the one the dispatcher sends, or a receiver that routes on destination_id breaks.
  async function forwardOne(accountId: string, token: string, extraEnv: Record<string, string | undefined>): Promise<{ body: Record<string, unknown>; stderr: string }> {
    const port = (hookServer.address() as { port: number }).port;
    const fwd = spawnCli(['webhooks', 'forward', '--token', token, '--to', `http://127.0.0.1:${port}/hook`], { env: { ...env, ...extraEnv } });
    await fwd.waitFor(/subscribed to ALL/, 'stderr');
    const published = await publish(server, { msg_type: 'BID_OUTBID', account_ids: [accountId], payload: (await import('../../packages/protocol/src/samples.js')).samplePayload('BID_OUTBID') });
    const req = await waitFor(() => received.find((r) => r.headers['webhook-id'] === published.msg_id), 10_000, 'forwarded request');
    const stderr = fwd.stderr();
    expect(await fwd.stop('SIGINT')).toBe(0);
    return { body: JSON.parse(req.body) as Record<string, unknown>, stderr };
  }

  it("destination_id is the account's partner_id (looked up with the admin token), source_id the server default", async () => {
    const { accountId, token } = await createAccountWithKey(server, { partner_id: 'partner_forwarded' });
    const { body, stderr } = await forwardOne(accountId, token, { TPX_SOURCE_ID: 'tpx_staging' });
    expect(body).toMatchObject({ destination_id: 'partner_forwarded', source_id: 'tpx_staging' });
    expect(stderr).toContain("destination_id: partner_forwarded (the account's partner_id)");
  });

  it('without an admin token: the account id, and the way to set the partner_id is printed', async () => {
    const { accountId, token } = await createAccountWithKey(server, { partner_id: 'partner_no_admin' });
    const { body, stderr } = await forwardOne(accountId, token, { TPX_ADMIN_TOKEN: undefined });
    expect(body.destination_id).toBe(accountId);
    expect(stderr).toContain('pass --destination-id <partner_id>');
  });
});
