/**
 * kill -9 of the server (embedded SQLite) under concurrent publish load, at seeded random moments
 * (SPEC §3.1: once 202 is returned the event and its webhook deliveries are durable; §4: a crash
 * loses no delivery). After each restart and at the end:
 * - every event that got a 202 is in `GET /v1/events` exactly once;
 * - each account's seqs are 1..n: no hole, no repeat (also across the crashes);
 * - re-posting a 202'd msg_id (single or batch) answers the same result and stores nothing new;
 * - an event whose publish got no answer (in flight at the kill) is stored at most once, and
 *   re-posting it completes it exactly once;
 * - every stored event's webhook reaches a real HTTP receiver at least once;
 * - WebSocket clients connected throughout (resuming with after_seq after each restart) hold
 *   exactly the stored stream: no event they saw before a crash vanished or had its seq reused.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody, EVENT_TYPES } from '../helpers/payloads.js';
import { between, checkResumingClients, expectContiguous, figures, prng, readLog, SEED, WebhookReceiver, type LogEntry } from './helpers.js';
import { ResumingClient } from './resuming-client.js';

const ROUNDS = 3;
const SINGLE_PUBLISHERS = 4;
const BATCH_PUBLISHERS = 2;
const BATCH_SIZE = 20;
const ACCOUNTS = 3;

interface Sent {
  body: Record<string, unknown>;
  accounts: string[];
  /** The 202 answer (single: { msg_id, recipients }; batch: this event's result), or null if none came. */
  answer: Record<string, unknown> | null;
  batch: Sent[] | null;
}

let server: TestServer;
let receiver: WebhookReceiver;
const accounts: Array<{ accountId: string; token: string }> = [];

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  server = await startTestServer({
    env: { TPX_WEBHOOK_TIMEOUT_MS: '2000', TPX_WEBHOOK_RETRY_SCHEDULE: '200ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s' },
  });
  for (let i = 0; i < ACCOUNTS; i++) {
    const a = await createAccountWithKey(server, { name: `kill9-${i}` });
    const hook = await api(server, 'POST', `/admin/accounts/${a.accountId}/webhooks`, { url: receiver.url });
    expect(hook.status, hook.text).toBe(201);
    accounts.push({ accountId: a.accountId, token: a.token });
  }
});

afterAll(async () => {
  await stopAll();
  await receiver?.close();
});

/** Publishes until `running()` turns false or the server stops answering; records every attempt. */
async function publisher(random: () => number, batch: boolean, running: () => boolean, sent: Sent[]): Promise<void> {
  while (running()) {
    const n = batch ? BATCH_SIZE : 1;
    const items: Sent[] = [];
    for (let i = 0; i < n; i++) {
      // Some events go to two accounts: one msg_id, one seq in each stream.
      const a = accounts[between(random, 0, ACCOUNTS - 1)]!.accountId;
      const b = accounts[between(random, 0, ACCOUNTS - 1)]!.accountId;
      const targets = random() < 0.25 && a !== b ? [a, b] : [a];
      const type = EVENT_TYPES[between(random, 0, EVENT_TYPES.length - 1)]!;
      items.push({ body: eventBody(type, targets, { msg_id: randomUUID() }), accounts: targets, answer: null, batch: null });
    }
    for (const item of items) item.batch = batch ? items : null;
    sent.push(...items);
    try {
      const res = batch
        ? await api(server, 'POST', '/v1/events/batch', { events: items.map((i) => i.body) })
        : await api(server, 'POST', '/v1/events', items[0]!.body);
      if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${res.text.slice(0, 300)}`);
      if (batch) items.forEach((item, i) => (item.answer = res.body.results[i]));
      else items[0]!.answer = res.body;
    } catch (err) {
      if ((err as Error).message.startsWith('publish answered')) throw err;
      return; // the server died under us: this request's outcome is unknown
    }
  }
}

/** Expected log per account: every 202'd event, plus what exists of the unanswered ones. */
function checkLogs(logs: Map<string, LogEntry[]>, sent: Sent[], round: string): { lost: number; duplicates: number } {
  let lost = 0;
  let duplicates = 0;
  const sentIds = new Set(sent.map((s) => s.body.msg_id as string));
  for (const { accountId } of accounts) {
    const log = logs.get(accountId)!;
    expectContiguous(log, `${round}, account ${accountId}`);
    const count = new Map<string, number>();
    for (const e of log) count.set(e.msg_id, (count.get(e.msg_id) ?? 0) + 1);
    for (const s of sent) {
      if (!s.accounts.includes(accountId)) continue;
      const c = count.get(s.body.msg_id as string) ?? 0;
      if (s.answer && c === 0) lost++;
      if (c > 1) duplicates += c - 1;
    }
    expect(log.filter((e) => !sentIds.has(e.msg_id)).length, `${round}: events nobody sent`).toBe(0);
  }
  expect(lost, `${round}: 202'd events missing after the kill`).toBe(0);
  expect(duplicates, `${round}: events stored twice`).toBe(0);
  return { lost, duplicates };
}

async function readAll(): Promise<Map<string, LogEntry[]>> {
  const logs = new Map<string, LogEntry[]>();
  for (const a of accounts) logs.set(a.accountId, await readLog(server, a.token));
  return logs;
}

describe('kill -9 under concurrent publish load (SQLite)', () => {
  it(`${ROUNDS} kills at seeded random moments: nothing 202'd lost, seqs contiguous, re-posts idempotent, webhooks at least once`, { timeout: 120_000 }, async () => {
    const random = prng(SEED);
    const sent: Sent[] = [];
    const subset = ['BID_REQUEST', 'PAYMENT_CHARGED', 'PAYMENT_SETTLED'];
    const listeners = [
      new ResumingClient(() => server.wsUrl, accounts[0]!.token, ['ALL']),
      new ResumingClient(() => server.wsUrl, accounts[1]!.token, subset),
    ];
    await Promise.all(listeners.map((l) => l.start()));
    const killedAt: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      let running = true;
      const load = [
        ...Array.from({ length: SINGLE_PUBLISHERS }, (_, i) => publisher(prng(SEED + round * 100 + i), false, () => running, sent)),
        ...Array.from({ length: BATCH_PUBLISHERS }, (_, i) => publisher(prng(SEED + round * 100 + 50 + i), true, () => running, sent)),
      ];
      const wait = between(random, 150, 900);
      await new Promise((r) => setTimeout(r, wait));
      await server.kill9();
      killedAt.push(wait);
      running = false;
      await Promise.all(load);
      await server.restart();
      checkLogs(await readAll(), sent, `after kill ${round} (at ${wait} ms)`);
    }

    // Re-post everything that was answered: same result, nothing new stored.
    const before = await readAll();
    const answered = sent.filter((s) => s.answer);
    const singles = answered.filter((s) => !s.batch);
    for (const s of singles.filter((_, i) => i % Math.max(1, Math.floor(singles.length / 60)) === 0)) {
      const res = await api(server, 'POST', '/v1/events', s.body);
      expect(res.status, res.text).toBe(202);
      expect(res.body, `re-post of ${s.body.msg_id as string}`).toEqual(s.answer);
    }
    const batches = [...new Set(answered.filter((s) => s.batch && s.batch.every((b) => b.answer)).map((s) => s.batch!))];
    for (const b of batches.slice(0, 20)) {
      const res = await api(server, 'POST', '/v1/events/batch', { events: b.map((i) => i.body) });
      expect(res.status, res.text).toBe(202);
      res.body.results.forEach((r: Record<string, unknown>, i: number) => {
        expect(r.msg_id).toBe(b[i]!.answer!.msg_id);
        expect(r.recipients).toBe(b[i]!.answer!.recipients);
        expect(r.duplicate).toBe(true);
      });
    }
    const afterRepost = await readAll();
    for (const { accountId } of accounts) expect(afterRepost.get(accountId)!.length, 're-posts stored nothing new').toBe(before.get(accountId)!.length);

    // Complete the unanswered ones by re-posting them: each ends up stored exactly once.
    const unanswered = sent.filter((s) => !s.answer);
    const storedIds = new Set([...afterRepost.values()].flatMap((l) => l.map((e) => e.msg_id)));
    const unansweredButStored = unanswered.filter((s) => storedIds.has(s.body.msg_id as string)).length;
    for (const s of unanswered) {
      const res = await api(server, 'POST', '/v1/events', s.body);
      expect(res.status, res.text).toBe(202);
      // Stored before the crash or not, the answer is the event's: its id, its recipients.
      expect(res.body).toEqual({ msg_id: s.body.msg_id, recipients: s.accounts.length });
      s.answer = res.body;
    }
    const final = await readAll();
    const { lost, duplicates } = checkLogs(final, sent, 'after completing the unanswered');
    for (const { accountId } of accounts) {
      expect(final.get(accountId)!.length).toBe(sent.filter((s) => s.accounts.includes(accountId)).length);
    }

    // The listeners, through every crash: exactly the stored stream, once, in order.
    await checkResumingClients(
      listeners,
      [final.get(accounts[0]!.accountId)!, final.get(accounts[1]!.accountId)!.filter((e) => subset.includes(e.msg_type))],
      'WebSocket listeners across the kills',
    );

    // Webhooks: every stored event of every account reached the receiver at least once.
    await waitFor(
      () => accounts.every(({ accountId }) => receiver.missing(accountId, final.get(accountId)!.map((e) => e.msg_id)).length === 0),
      30_000,
      'every webhook delivered at least once',
      100,
    ).catch((err: Error) => {
      const missing = accounts.map(({ accountId }) => receiver.missing(accountId, final.get(accountId)!.map((e) => e.msg_id)).length);
      throw new Error(`${err.message}; missing per account: ${missing.join(', ')}`);
    });

    const stored = [...final.values()].reduce((n, l) => n + l.length, 0);
    figures('kill9', {
      kills: ROUNDS,
      killed_at_ms: killedAt.join('/'),
      requests_answered_202: answered.length,
      in_flight_at_kill: unanswered.length,
      in_flight_committed: unansweredButStored,
      account_events_stored: stored,
      lost,
      duplicates,
      listener_connections: listeners.map((l) => l.connections).join('/'),
      webhooks_received: receiver.total,
      webhook_redeliveries: receiver.redeliveries(),
    });
  });
});
