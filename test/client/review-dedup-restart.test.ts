/**
 * Review (issue 11 §4, README "de-duplicates by msg_id across WebSocket and webhooks", docs/sdk.md
 * "Webhooks and exactly-once across both paths"): a partner process handles events over the
 * WebSocket and persists `lastSeq` (as docs/sdk.md tells it to), then restarts before the webhook
 * copies of those events got through. After the restart the Deduplicator was empty, so the webhook
 * retries of events the application already handled were handled a second time. The fix makes the
 * Deduplicator persistable (snapshot/restore, saved with lastSeq: docs/sdk.md's restart recipe);
 * the position alone cannot say which events were handled (second test).
 * Real server, real webhooks (retried on a short schedule), real WebSocket.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import { Deduplicator } from '../../packages/client/src/dedup.js';
import { createNodeWebhookHandler } from '../../packages/client/src/webhooks.js';
import type { TpxEvent } from '../../packages/client/src/types.js';
import { eventBody } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor } from '../helpers/server.js';

const receivers: http.Server[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'tpx-dedup-restart-'));
const checkpointFile = path.join(dir, 'checkpoint.json');
afterAll(async () => {
  for (const r of receivers) r.close();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * A server retrying webhooks every second, an account with a key, and the partner's webhook
 * endpoint: down (503) until `serve` hands it to the restarted process.
 */
async function partnerSetup() {
  const server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s,1s,1s,1s', TPX_WEBHOOK_TIMEOUT_MS: '2000' } });
  const { accountId, token } = await createAccountWithKey(server);
  let route: Route = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const receiver = http.createServer((req, res) => route(req, res));
  receivers.push(receiver);
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hook = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` });
  expect(hook.status).toBe(201);
  const handled: string[] = [];
  const handle = (e: TpxEvent) => void handled.push(`${e.msg_id} via ${e.via}`);
  return { server, accountId, token, secret: hook.body.secret as string, handled, handle, serve: (r: Route) => void (route = r) };
}

type Setup = Awaited<ReturnType<typeof partnerSetup>>;

/** Process 1: handles `events` new events over the WebSocket, checkpoints as docs/sdk.md says (lastSeq and the Deduplicator's snapshot, in one file), then dies. */
async function firstProcess(p: Setup, events: number): Promise<string[]> {
  const firstDedup = new Deduplicator();
  const first = new TpxClient({ url: p.server.url, token: p.token, dedup: firstDedup });
  first.on('event', p.handle);
  await first.connect();
  const ids: string[] = [];
  for (let i = 0; i < events; i++) ids.push((await publish(p.server, eventBody('BID_REQUEST', [p.accountId]))).msg_id);
  await waitFor(() => p.handled.length === events, 5_000, `${events} event(s) over the WebSocket`);
  await first.drain();
  writeFileSync(checkpointFile, JSON.stringify({ lastSeq: first.lastSeq, dedup: firstDedup.snapshot() }));
  await first.close();
  return ids;
}

/** Process 2: restarts from the checkpoint file with the setup docs/sdk.md shows, serves the webhook endpoint, waits for three webhook answers. */
async function restartedProcess(p: Setup, check: () => void): Promise<void> {
  const saved = JSON.parse(readFileSync(checkpointFile, 'utf8'));
  expect(saved.lastSeq).toBe(3);
  const dedup = new Deduplicator();
  dedup.restore(saved.dedup);
  const second = new TpxClient({ url: p.server.url, token: p.token, dedup, afterSeq: saved.lastSeq });
  second.on('event', p.handle);
  const webhookHandler = createNodeWebhookHandler({ secret: p.secret, dedup, onEvent: p.handle });
  let webhookAnswers = 0;
  p.serve((req, res) => {
    res.on('finish', () => void webhookAnswers++);
    void webhookHandler(req, res);
  });
  try {
    await second.connect();
    await waitFor(() => webhookAnswers >= 3, 15_000, 'the three webhook retries answered');
    check();
  } finally {
    await second.close();
  }
}

describe('exactly-once across WebSocket and webhooks, across a restart of the partner process', () => {
  it('a webhook retry of an event handled over the WebSocket before the restart is not handled again', async () => {
    const p = await partnerSetup();
    const ids = await firstProcess(p, 3);
    await restartedProcess(p, () => {
      const times = ids.map((id) => p.handled.filter((h) => h.startsWith(id)).length);
      expect({ handledPerEvent: times, handled: p.handled }).toEqual({ handledPerEvent: [1, 1, 1], handled: expect.anything() });
    });
  }, 60_000);

  it('why not "seq ≤ the persisted position means handled": webhook retries of events from before the first start still run after a restart', async () => {
    const p = await partnerSetup();
    // Two events before the partner's consumer ever ran: only their (failing) webhooks carry them.
    const ids = [(await publish(p.server, eventBody('BID_REQUEST', [p.accountId]))).msg_id, (await publish(p.server, eventBody('BID_REQUEST', [p.accountId]))).msg_id];
    // Process 1, first run (no afterSeq): starts at the server's last_seq (2), handles seq 3.
    ids.push(...(await firstProcess(p, 1)));
    // Process 2: position 3, but seqs 1 and 2 were never handled: their webhook retries must run.
    await restartedProcess(p, () => {
      expect(ids.map((id) => p.handled.filter((h) => h.startsWith(id)))).toEqual([[`${ids[0]} via webhook`], [`${ids[1]} via webhook`], [`${ids[2]} via websocket`]]);
    });
  }, 60_000);
});
