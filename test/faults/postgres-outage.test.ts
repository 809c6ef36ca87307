/**
 * PostgreSQL outages with real processes (SPEC §7: the store is the truth): two nodes on one
 * private PostgreSQL and Redis. While the database is stopped (SIGSTOP of every PostgreSQL
 * process: it accepts TCP but answers nothing) or restarting (refuses connections), publishes
 * answer 503 instead of hanging, /readyz answers 503, WebSocket connections stay open, and once
 * the database is back everything recovers by itself: no node is restarted. Also: cached token
 * lookups are invalidated across nodes by the bus, long before their time-to-live.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, sleep, waitFor, type TestServer } from '../helpers/server.js';
import { closeAllClients, connectAuthed, WsTestClient } from '../helpers/ws-client.js';
import { closeAllSse, SseTestClient } from '../helpers/sse-client.js';
import { eventBody } from '../helpers/payloads.js';
import { startCluster, type Cluster } from '../scale/cluster.js';

let cluster: Cluster;
let A: TestServer;
let B: TestServer;

beforeAll(async () => {
  cluster = await startCluster(['node-a', 'node-b']);
  [A, B] = cluster.nodes;
}, 120_000);

afterAll(async () => {
  closeAllSse();
  await closeAllClients();
  await cluster?.stop();
});

const listen = (node: TestServer, token: string): Promise<WsTestClient> => connectAuthed(node.wsUrl, token, ['ALL']);

/** A request that must be answered (whatever the status) instead of hanging: fails the test after 15 s. */
async function answered(node: TestServer, method: string, urlPath: string, body?: unknown) {
  const res = await Promise.race([
    api(node, method, urlPath, body, urlPath === '/readyz' ? { token: null } : {}),
    sleep(15_000).then(() => {
      throw new Error(`${method} ${urlPath} hung while the database was down`);
    }),
  ]);
  return res;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      /* exited */
    }
  }
}

/** Everything works again, by itself: both nodes ready, a publish reaches both nodes' connections. */
async function expectRecovered(accountId: string, clients: WsTestClient[]): Promise<void> {
  for (const node of [A, B]) {
    await waitFor(async () => (await answered(node, 'GET', '/readyz')).status === 200, 30_000, `${node.url} ready again`, 100);
  }
  const { msg_id } = await publish(A, eventBody('BID_REQUEST', [accountId]));
  for (const c of clients) expect((await c.next((f) => f.msg_id === msg_id, 10_000)).msg_type).toBe('BID_REQUEST');
}

describe('PostgreSQL outages', () => {
  it('a key deactivated on one node is refused by the other at once (bus invalidation, not the TTL)', async () => {
    const { accountId, key, token } = await createAccountWithKey(A);
    const read = (node: TestServer) => api(node, 'GET', '/v1/events?after_seq=0', undefined, { token: null, headers: { 'x-api-key': token } });
    expect((await read(B)).status).toBe(200); // B now serves this token from its cache (TTL 1 s)
    expect((await read(B)).status).toBe(200);
    expect((await api(A, 'POST', `/admin/api-keys/${key.key_id}/deactivate`)).status).toBe(200);
    const started = Date.now();
    await waitFor(async () => (await read(B)).status === 403, 5000, 'B to refuse the deactivated key (403: deactivated, docs/decisions.md)', 10);
    expect(Date.now() - started).toBeLessThan(900); // well inside the cache's 1 s time-to-live
    expect(accountId).toBeTruthy();
  });

  it('SIGSTOPped database: publishes answer 503, /readyz 503, connections stay open; SIGCONT: all recovers', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onA = await listen(A, token);
    const onB = await listen(B, token);
    await cluster.waitSubscribers(accountId, 2);
    await publish(A, eventBody('BID_REQUEST', [accountId]));
    await onA.nextOfType('BID_REQUEST');
    await onB.nextOfType('BID_REQUEST');

    const pids = cluster.pg.pids();
    signalAll(pids, 'SIGSTOP');
    try {
      for (let i = 0; i < 4; i++) {
        const res = await answered(A, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId]));
        expect(res.status).toBe(503);
        expect(res.body).toMatchObject({ code: 'STORE_UNAVAILABLE' });
        // The first waits for the liveness check to find the server hung (not for the 12 s reply
        // timeout); the others fail at once while the database is known unreachable.
        expect(res.body.error).toMatch(i === 0 ? /no answer to a liveness check/ : /PostgreSQL unreachable since/);
      }
      for (const node of [A, B]) {
        const ready = await answered(node, 'GET', '/readyz');
        expect(ready.status).toBe(503);
        expect(ready.body.checks.store).not.toBe('ok');
      }
      // Connections live on: keepalive answers, nothing closed.
      expect((await onA.ping()).msg_type).toBe('pong');
      expect((await onB.ping()).msg_type).toBe('pong');
      expect(onA.closeInfo).toBeNull();
      expect(onB.closeInfo).toBeNull();
    } finally {
      signalAll(pids, 'SIGCONT');
    }
    await expectRecovered(accountId, [onA, onB]);
    expect(onA.closeInfo).toBeNull();
    expect(onB.closeInfo).toBeNull();
  }, 120_000);

  it('restarted database: publishes answer 503 while it is down, connections stay open, all recovers', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onA = await listen(A, token);
    const onB = await listen(B, token);
    await cluster.waitSubscribers(accountId, 2);

    const restarting = cluster.pg.restart({ downMs: 3000 });
    // While it is down (fast shutdown done, not yet started again): refused connections, 503s.
    await waitFor(async () => (await answered(A, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId]))).status === 503, 10_000, 'a 503 while the database restarts', 50);
    expect((await answered(B, 'GET', '/readyz')).status).toBe(503);
    await restarting;
    expect(onA.closeInfo).toBeNull();
    expect(onB.closeInfo).toBeNull();
    await expectRecovered(accountId, [onA, onB]);
    // Nothing published while the database was down was accepted, so nothing is owed: the next
    // seqs continue from the last accepted one on both nodes.
    const page = await api(A, 'GET', '/v1/events?after_seq=0', undefined, { token: null, headers: { 'x-api-key': token } });
    expect(page.body.events.map((e: { seq: number }) => e.seq)).toEqual([1]);
  }, 120_000);

  it('a publish answered 503 while its COMMIT was in flight, that committed after all, reaches the WebSocket clients of both nodes anyway', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onA = await listen(A, token);
    const onB = await listen(B, token);
    await cluster.waitSubscribers(accountId, 2);
    const admin = new pg.Client({ connectionString: cluster.pg.url });
    await admin.connect();
    const pids = cluster.pg.pids();
    const msgId = randomUUID();
    try {
      // Hold COMMITs (a synchronous standby that never comes), then stop the database while the
      // publish's COMMIT waits: the liveness check finds it hung and the publish answers 503.
      await admin.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
      await admin.query('SELECT pg_reload_conf()');
      const publishing = answered(A, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId], { msg_id: msgId }));
      await waitFor(
        async () => (await admin.query("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rows[0].n > 0,
        5000,
        'the COMMIT to wait',
        20,
      );
      signalAll(pids, 'SIGSTOP');
      try {
        const res = await publishing;
        expect(res.status).toBe(503);
      } finally {
        signalAll(pids, 'SIGCONT');
      }
    } finally {
      // Release the held COMMIT: it completes (it was already recorded locally).
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names');
      await admin.query('SELECT pg_reload_conf()');
      await admin.end();
    }
    // Stored after all: the node that gave up on it finds out and fans it out, in bounded time,
    // with no later event of the account to expose the gap.
    for (const c of [onA, onB]) expect((await c.next((f) => f.msg_id === msgId, 15_000)).seq).toBe(1);
    const page = await api(A, 'GET', '/v1/events?after_seq=0', undefined, { token: null, headers: { 'x-api-key': token } });
    expect(page.body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([msgId]);
    // A retry with the same msg_id (what a publisher does after a 503) answers 202 and stores nothing twice.
    expect((await publish(A, eventBody('BID_REQUEST', [accountId], { msg_id: msgId }))).recipients).toBe(1);
    const again = await api(B, 'GET', '/v1/events?after_seq=0', undefined, { token: null, headers: { 'x-api-key': token } });
    expect(again.body.events).toHaveLength(1);
  }, 120_000);

  it('authenticating while the database is stopped: an UNAVAILABLE error and close 1013 (retry later), on SSE too (a 200 stream with retry:, never a 503 that stops an EventSource), never 1011; afterwards the key works', async () => {
    const { token } = await createAccountWithKey(A); // never looked up yet: nothing cached
    const pids = cluster.pg.pids();
    signalAll(pids, 'SIGSTOP');
    const outcomes: Array<{ error: unknown; close: number }> = [];
    let sse: SseTestClient;
    try {
      for (const node of [A, B, A]) {
        const c = await WsTestClient.connect(node.wsUrl);
        const answer = await c.authenticateRaw(token, 10_000);
        outcomes.push({ error: answer.msg_type === 'error' ? answer.payload?.code : answer.msg_type, close: (await c.waitClosed(5000)).code });
      }
      sse = await SseTestClient.open(B, { token });
    } finally {
      signalAll(pids, 'SIGCONT');
    }
    expect(outcomes).toEqual(Array.from({ length: 3 }, () => ({ error: 'UNAVAILABLE', close: 1013 })));
    // SSE: not a 503 (a browser's EventSource gives up for good on one) but a stream that ends at
    // once: a jittered retry:, the UNAVAILABLE error, and close 1013 (try again later).
    await sse.ended(5000);
    expect({ status: sse.status, errors: sse.messages.map((m) => [m.event, JSON.parse(m.data).payload.code]) }).toEqual({ status: 200, errors: [['error', 'UNAVAILABLE']] });
    expect(sse.raw).toMatch(/^retry: \d+\n\n[^]*: close 1013/);
    await waitFor(async () => (await answered(A, 'GET', '/readyz')).status === 200, 30_000, 'A ready again', 100);
    const again = await listen(A, token);
    expect(again.closeInfo).toBeNull();
  }, 120_000);
});
