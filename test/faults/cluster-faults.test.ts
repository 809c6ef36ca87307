/**
 * Scale-out faults on a real 2-node cluster (PostgreSQL + Redis, SPEC §7):
 * - Redis hung (SIGSTOP, sockets stay open) then killed (SIGKILL) and restarted EMPTY while
 *   both nodes publish: publishing keeps answering 202, connections on both nodes stay open and,
 *   after catch-up, hold every event exactly once and in order.
 * - A node killed (kill -9) in the middle of fan-out: its clients resume (after_seq) on the
 *   other node, publishes that failed on it are retried on the other node with the same msg_id;
 *   nothing lost, nothing duplicated, seqs contiguous.
 * - The same msg_id posted at once through both nodes (singles and batches) is stored once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, sleep, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody, EVENT_TYPES } from '../helpers/payloads.js';
import { closeAllClients } from '../helpers/ws-client.js';
import { startCluster, type Cluster } from '../scale/cluster.js';
import { between, checkResumingClients, expectContiguous, figures, prng, readLog, SEED } from './helpers.js';
import { ResumingClient } from './resuming-client.js';

let cluster: Cluster;
let A: TestServer;
let B: TestServer;

beforeAll(async () => {
  cluster = await startCluster(['node-a', 'node-b']);
  [A, B] = cluster.nodes as [TestServer, TestServer];
}, 120_000);

afterAll(async () => {
  await closeAllClients();
  await cluster?.stop();
});

type Phase = 'normal' | 'redis-stopped' | 'redis-down' | 'node-down';

interface Publisher {
  seed: number;
  via: () => TestServer;
  /** Node kill: a failed request is re-sent with the same msg_ids here, so its outcome is known. */
  retry?: () => TestServer;
  /** Events per batch, min and max. */
  batch?: [number, number];
}

/** Concurrent publishers of small batches to one account, counting what was accepted in each phase. */
class Load {
  phase: Phase = 'normal';
  published = 0;
  readonly byPhase: Record<string, number> = {};
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(private readonly accountId: string, publishers: Publisher[]) {
    this.loops = publishers.map((p) => this.loop(p));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop({ seed, via, retry, batch = [1, 6] }: Publisher): Promise<void> {
    const random = prng(seed);
    while (this.running) {
      const events = Array.from({ length: between(random, batch[0], batch[1]) }, () =>
        eventBody(EVENT_TYPES[between(random, 0, EVENT_TYPES.length - 1)]!, [this.accountId], { msg_id: crypto.randomUUID() }),
      );
      const phase = this.phase;
      let res;
      try {
        res = await api(via(), 'POST', '/v1/events/batch', { events });
      } catch (err) {
        if (!retry) throw err;
        res = await api(retry(), 'POST', '/v1/events/batch', { events });
      }
      if (res.status !== 202) {
        this.failures.push(`${phase}: ${res.status} ${res.text.slice(0, 200)}`);
        continue;
      }
      this.published += events.length;
      this.byPhase[phase] = (this.byPhase[phase] ?? 0) + events.length;
      await sleep(between(random, 0, 10));
    }
  }
}

describe('Redis hung and restarted empty during publishing', () => {
  it('publishing keeps answering 202; clients on both nodes stay open and get every event exactly once, in order', { timeout: 90_000 }, async () => {
    const random = prng(SEED + 2);
    const { accountId, token } = await createAccountWithKey(A, { name: 'redis-faults' });
    const clients = [A, A, B, B].map((node) => new ResumingClient(() => node.wsUrl, token, ['ALL']));
    await Promise.all(clients.map((c) => c.start()));
    await cluster.waitSubscribers(accountId, 2);

    const load = new Load(accountId, [
      { seed: SEED + 21, via: () => A },
      { seed: SEED + 22, via: () => B },
    ]);
    await sleep(between(random, 300, 700));
    load.phase = 'redis-stopped';
    cluster.redis.pause();
    await sleep(between(random, 1500, 2500));
    cluster.redis.resume();
    load.phase = 'normal';
    await sleep(between(random, 300, 700));
    load.phase = 'redis-down';
    await cluster.redis.down(); // SIGKILL
    await sleep(between(random, 800, 1500));
    await cluster.redis.up(); // same port, empty
    load.phase = 'normal';
    await sleep(between(random, 500, 1000));
    await load.stop();
    expect(load.failures, 'every publish answered 202').toEqual([]);

    const log = await readLog(A, token);
    expectContiguous(log, 'account stream');
    expect(log.length).toBe(load.published);
    const { lost, duplicates } = await checkResumingClients(clients, clients.map(() => log), 'after Redis returned (clients 0-1 on a, 2-3 on b)');
    // SPEC §7: connections stay open through a bus outage (none had to reconnect).
    expect(clients.map((c) => c.connections), 'connections per client (1 = never dropped)').toEqual([1, 1, 1, 1]);
    figures('redis-faults', {
      events_published: load.published,
      during_sigstop: load.byPhase['redis-stopped'] ?? 0,
      during_sigkill: load.byPhase['redis-down'] ?? 0,
      clients: clients.length,
      lost,
      duplicates,
    });
  });
});

describe('a node killed mid-fan-out', () => {
  it('its clients resume on the other node: nothing lost, nothing duplicated', { timeout: 90_000 }, async () => {
    const random = prng(SEED + 3);
    // Redis was restarted by the previous test: wait until both nodes are back on the bus.
    await waitFor(async () => (await api(B, 'GET', '/readyz', undefined, { token: null })).status === 200, 15_000, 'node b ready');
    const { accountId, token } = await createAccountWithKey(A, { name: 'node-kill' });
    let bDead = false;
    const onB = () => (bDead ? A : B);
    const clients = [
      ...[0, 1, 2].map(() => new ResumingClient(() => onB().wsUrl, token, ['ALL'])),
      new ResumingClient(() => A.wsUrl, token, ['ALL']),
      new ResumingClient(() => onB().wsUrl, token, ['BID_REQUEST', 'PAYMENT_CHARGED']),
    ];
    await Promise.all(clients.map((c) => c.start()));
    await cluster.waitSubscribers(accountId, 2);

    // Larger batches: node b is busy fanning out when it dies.
    const load = new Load(accountId, [
      { seed: SEED + 31, via: () => A, batch: [5, 25] },
      { seed: SEED + 32, via: onB, retry: () => A, batch: [5, 25] },
      { seed: SEED + 33, via: onB, retry: () => A, batch: [5, 25] },
    ]);
    await sleep(between(random, 400, 1200));
    load.phase = 'node-down';
    await B.kill9();
    bDead = true;
    await sleep(between(random, 500, 1000));
    await load.stop();
    expect(load.failures, 'every publish answered 202 (through A when B was gone)').toEqual([]);

    const log = await readLog(A, token);
    expectContiguous(log, 'account stream');
    expect(log.length, 'each published event stored once (retries carried the same msg_id)').toBe(load.published);
    const subset = ['BID_REQUEST', 'PAYMENT_CHARGED'];
    const expected = clients.map((_, i) => (i === 4 ? log.filter((e) => subset.includes(e.msg_type)) : log));
    const { lost, duplicates } = await checkResumingClients(clients, expected, 'after node b was killed');
    // The clients of B did move (a second connection each); A's client never dropped.
    expect(clients.map((c) => c.connections >= 2)).toEqual([true, true, true, false, true]);
    figures('node-kill', {
      events_published: load.published,
      after_kill: load.byPhase['node-down'] ?? 0,
      clients_moved: 4,
      lost,
      duplicates,
    });
  });
});

describe('the same msg_id published at once through both nodes', () => {
  it('is stored once with one seq; every answer is the same 202', { timeout: 60_000 }, async () => {
    if (B.proc.exitCode !== null || B.proc.signalCode !== null) await B.restart(); // killed by the previous test
    const { accountId, token } = await createAccountWithKey(A, { name: 'idempotency-race' });
    const ids = Array.from({ length: 30 }, () => crypto.randomUUID());
    const answers = await Promise.all(
      ids.flatMap((id, i) => {
        const body = eventBody(EVENT_TYPES[i % EVENT_TYPES.length]!, [accountId], { msg_id: id });
        // Four copies of each: two per node, singles and one-event batches mixed.
        return [A, B, A, B].map(async (node, k) => {
          const res = k < 2 ? await api(node, 'POST', '/v1/events', body) : await api(node, 'POST', '/v1/events/batch', { events: [body] });
          expect(res.status, res.text).toBe(202);
          const r = k < 2 ? res.body : res.body.results[0];
          return { id, msg_id: r.msg_id as string, recipients: r.recipients as number };
        });
      }),
    );
    for (const a of answers) expect({ msg_id: a.msg_id, recipients: a.recipients }).toEqual({ msg_id: a.id, recipients: 1 });
    const log = await readLog(A, token);
    expectContiguous(log, 'racing publishes');
    expect(log.map((e) => e.msg_id).sort()).toEqual([...ids].sort());
    figures('idempotency-race', { msg_ids: ids.length, concurrent_posts: answers.length, stored: log.length, duplicates: log.length - ids.length });
  });
});
