/**
 * The examples of examples/README.md, run as a partner runs them (environment variables as
 * documented) against a real server: the Node consumer prints typed events and checkpoints
 * them, and stops with exit code 1 and a clear message on a bad key; the WebSocket + webhooks
 * example handles each event exactly once. (They are type-checked in test/protocol/typed-payloads.test.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

let server: TestServer;
const tmp = mkdtempSync(path.join(tmpdir(), 'tpx-examples-'));
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

/** A port nothing listens on right now (the example binds it itself). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function runExample(file: string, env: Record<string, string>) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPX_')) clean[k] = v;
  const child = spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', file], {
    cwd: REPO_ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, output: () => out, exit };
}

describe('examples', () => {
  it('node-consumer.ts: typed lines, a checkpoint file, exit 0 on Ctrl-C; a bad key exits 1 with a message', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const checkpoint = path.join(tmp, 'last-seq');
    const ex = runExample('examples/node-consumer.ts', { TPX_URL: server.url, TPX_API_KEY: token, TPX_CHECKPOINT: checkpoint });
    await waitFor(() => ex.output().includes('[state] open'), 30_000, 'the consumer to connect');
    const bid = samplePayload('BID_REQUEST');
    await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: { ...bid, partner_tier: 'gold' } });
    await waitFor(() => ex.output().includes('partner_tier=gold'), 10_000, 'the event');
    expect(ex.output()).toContain(`auction ${String(bid.conversation_id)}: 2 × Taylor Swift - The Eras Tour`);
    await waitFor(() => readFileSync(checkpoint, 'utf8') === '1', 5_000, 'the checkpoint');
    ex.child.kill('SIGINT');
    expect(await ex.exit).toBe(0);

    const bad = runExample('examples/node-consumer.ts', { TPX_URL: server.url, TPX_API_KEY: 'tp_live_not_a_key', TPX_CHECKPOINT: checkpoint });
    expect(await bad.exit).toBe(1);
    expect(bad.output()).toContain('[error] auth AUTH_INVALID_API_KEY');
    expect(bad.output()).toContain('check TPX_API_KEY: the server refused this key');
    expect(bad.output()).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  }, 90_000);

  it('ws-and-webhooks.ts: every event handled once, whichever path brings it first', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const port = await freePort();
    const wh = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `http://127.0.0.1:${port}/tpx/webhooks` });
    expect(wh.status).toBe(201);
    const checkpoint = path.join(tmp, 'checkpoint.json');
    const ex = runExample('examples/ws-and-webhooks.ts', { TPX_URL: server.url, TPX_API_KEY: token, TPX_WEBHOOK_SECRET: wh.body.secret, PORT: String(port), TPX_CHECKPOINT: checkpoint });
    await waitFor(() => ex.output().includes(`webhooks on http://127.0.0.1:${port}/tpx/webhooks`), 30_000, 'the example to listen');
    await waitFor(async () => (await api(server, 'GET', `/admin/connections?account_id=${accountId}`)).body.connections?.length > 0, 10_000, 'the WebSocket');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publish(server, { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: samplePayload('PAYMENT_SETTLED') })).msg_id);
    // Both copies of every event arrive (the webhook is acknowledged even when it is the duplicate).
    await waitFor(async () => {
      const d = await api(server, 'GET', `/admin/deliveries?account_id=${accountId}`);
      return (d.body.deliveries as Array<{ status: string }>).filter((x) => x.status === 'succeeded').length === ids.length;
    }, 30_000, 'the webhook deliveries');
    for (const id of ids) expect(ex.output().split(id).length - 1, id).toBe(1);
    ex.child.kill('SIGINT');
    await ex.exit;
    // The checkpoint it leaves: the position and every handled msg_id.
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8'));
    expect(saved.lastSeq).toBe(ids.length);
    expect([...saved.dedup.ids].sort()).toEqual([...ids].sort());
  }, 90_000);
});
