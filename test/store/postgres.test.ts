/**
 * PostgreSQL store: the shared Store contract against a private PostgreSQL 15 (one fresh
 * database per test), plus what only matters with several nodes on one database: concurrent
 * migrations, seq order and idempotency under concurrent writers, and leases across claimers.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { createStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { LATEST_SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { CLAIM_BY_ENDPOINT_SQL, CLAIM_HEAD_SQL, CLAIM_SCAN_BUDGET } from '../../src/store/postgres/delivery-queue.js';
import { hashToken } from '../../src/store/keys.js';
import { startPostgres, type TestPostgres } from '../helpers/pg.js';
import { appendOne, ev, loopTurnsDuring, storeContract } from './contract.js';

let server: TestPostgres;
const opened: PostgresStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
  await server?.stop();
});

async function freshStore(url?: string): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: url ?? (await server.createDatabase()), max: 4 });
  opened.push(store);
  await store.init();
  return store;
}

storeContract('postgres', () => freshStore());

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows of `table` a statement reads (returned or filtered by any scan of it), from EXPLAIN ANALYZE: no timing involved. */
async function rowsRead(c: pg.Client, table: string, sql: string, args: unknown[]): Promise<number> {
  await c.query(`PREPARE measured AS ${sql}`);
  try {
    const { rows } = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE measured(${args.map((a) => pg.Client.prototype.escapeLiteral(String(a))).join(', ')})`);
    const walk = (n: PlanNode): number =>
      (n['Relation Name'] === table ? ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) * (n['Actual Loops'] ?? 1) : 0) +
      (n.Plans ?? []).reduce((sum, child) => sum + walk(child), 0);
    return walk((rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0].Plan);
  } finally {
    await c.query('DEALLOCATE measured');
  }
}

describe('PostgreSQL store specifics', () => {
  it('several nodes starting at once on an empty database migrate exactly once', async () => {
    const url = await server.createDatabase();
    const stores = Array.from({ length: 6 }, () => new PostgresStore({ connectionString: url, max: 2 }));
    opened.push(...stores);
    await Promise.all(stores.map((s) => s.init()));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const v = await c.query("SELECT value FROM settings WHERE key = 'schema_version'");
      expect(v.rows).toEqual([{ value: String(LATEST_SCHEMA_VERSION) }]);
    } finally {
      await c.end();
    }
    const a = await stores[0].createAccount({});
    expect(await stores[5].getAccount(a.account_id)).toEqual(a);
  });

  it('never stores the plain token, only its SHA-256', async () => {
    const url = await server.createDatabase();
    const store = await freshStore(url);
    const a = await store.createAccount({});
    const { token } = await store.createApiKey(a.account_id, {});
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query('SELECT * FROM api_keys');
      expect(JSON.stringify(rows)).not.toContain(token.slice(8));
      expect(Buffer.compare(rows[0].token_hash, hashToken(token))).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('seq stays strictly increasing per account with concurrent writers on separate pools (nodes)', async () => {
    const url = await server.createDatabase();
    const nodes = await Promise.all([1, 2, 3].map(() => freshStore(url)));
    const a = await nodes[0].createAccount({});
    const b = await nodes[0].createAccount({});
    // Mixed single appends and batches across both accounts, from three "nodes" at once.
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const node = nodes[i % 3];
      if (i % 4 === 0) jobs.push(node.appendEvents([ev([a.account_id, b.account_id]), ev([b.account_id]), ev([a.account_id])]));
      else jobs.push(appendOne(node, ev(i % 2 ? [a.account_id] : [b.account_id, a.account_id])));
    }
    await Promise.all(jobs);
    for (const acct of [a, b]) {
      const read = await nodes[1].readEvents({ account_id: acct.account_id, after_seq: 0, types: null, limit: 10_000 });
      const seqs = read.events.map((e) => e.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(read.last_seq).toBe(seqs.length);
      expect(new Set(read.events.map((e) => e.msg_id)).size).toBe(seqs.length);
    }
  });

  it('the same new msg_id posted through several nodes at once is stored once; the others answer duplicate', async () => {
    const url = await server.createDatabase();
    const nodes = await Promise.all([1, 2, 3, 4].map(() => freshStore(url)));
    const a = await nodes[0].createAccount({});
    await nodes[0].createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
    for (let round = 0; round < 10; round++) {
      const e = ev([a.account_id]);
      const results = await Promise.all(nodes.map((n, i) => (i % 2 ? n.appendEvents([ev([a.account_id]), e]).then((r) => r[1]) : appendOne(n, e))));
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      for (const r of results) expect(r.recipients).toBe(1);
    }
    const read = await nodes[0].readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 1000 });
    expect(read.events.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await nodes[0].listDeliveries({ account_id: a.account_id, limit: 1000 })).toHaveLength(30);
  });

  it('concurrent claimers never lease the same delivery and respect the per-endpoint limit together', async () => {
    const url = await server.createDatabase();
    const nodes = await Promise.all([1, 2, 3].map(() => freshStore(url)));
    const a = await nodes[0].createAccount({});
    const w1 = await nodes[0].createWebhook(a.account_id, { url: 'https://example.com/1', secret: 'whsec_1' });
    const w2 = await nodes[0].createWebhook(a.account_id, { url: 'https://example.com/2', secret: 'whsec_2' });
    await nodes[0].appendEvents(Array.from({ length: 20 }, () => ev([a.account_id])));
    const now = new Date(Date.now() + 1);
    const claims = await Promise.all(
      nodes.map((n, i) => n.claimDueDeliveries({ now, limit: 100, leaseMs: 60_000, owner: `node-${i}`, perEndpointLimit: 3 })),
    );
    const all = claims.flat();
    expect(new Set(all.map((c) => c.delivery.delivery_id)).size).toBe(all.length);
    expect(all.filter((c) => c.endpoint.webhook_id === w1.webhook_id)).toHaveLength(3);
    expect(all.filter((c) => c.endpoint.webhook_id === w2.webhook_id)).toHaveLength(3);
    // Lowest seqs first per endpoint.
    expect(all.filter((c) => c.endpoint.webhook_id === w1.webhook_id).map((c) => c.delivery.seq).sort((x, y) => x - y)).toEqual([1, 2, 3]);
    // A dead node's leases expire and another node takes them over.
    const later = new Date(now.getTime() + 60_001);
    const takeover = await nodes[2].claimDueDeliveries({ now: later, limit: 100, leaseMs: 60_000, owner: 'node-x', perEndpointLimit: 3 });
    expect(takeover.map((c) => c.delivery.seq).sort((x, y) => x - y)).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('pruning through two nodes at once removes each row once', async () => {
    const url = await server.createDatabase();
    const [n1, n2] = await Promise.all([freshStore(url), freshStore(url)]);
    const a = await n1.createAccount({});
    const old = Date.now() - 10_000;
    await n1.appendEvents(Array.from({ length: 5 }, () => ev([a.account_id], { created_at_ms: old })));
    await appendOne(n1, ev([a.account_id]));
    const removed = await Promise.all([n1.pruneEvents(Date.now() - 5000), n2.pruneEvents(Date.now() - 5000)]);
    expect(removed[0] + removed[1]).toBe(5);
    const read = await n2.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
    expect(read.pruned_through).toBe(5);
    expect(read.events.map((e) => e.seq)).toEqual([6]);
  });

  it('createStore picks PostgreSQL for postgres:// and postgresql:// URLs', async () => {
    for (const scheme of ['postgres', 'postgresql']) {
      const store = createStore(loadConfig({ TPX_DATABASE_URL: server.url.replace(/^postgres/, scheme), TPX_DATA_DIR: '/nonexistent-not-used' }));
      expect(store.kind).toBe('postgres');
      await store.init();
      await store.ping();
      await store.close();
    }
  });

  it('unknown (non-uuid) ids are simply unknown, never a database error', async () => {
    const store = await freshStore();
    expect(await store.getAccount('not-a-uuid')).toBeNull();
    await expect(appendOne(store, ev(['nope']))).rejects.toMatchObject({ name: 'UnknownAccountsError', accountIds: ['nope'] });
    expect(await store.readEvents({ account_id: randomUUID(), after_seq: 0, types: null, limit: 10 })).toEqual({ events: [], pruned_through: 0, last_seq: 0 });
  });

  it('every session commits with synchronous_commit=on (synced), even when the server default is off', async () => {
    const url = await server.createDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('off'); // the test server's default
    } finally {
      await c.end();
    }
    const synced = await freshStore(url);
    expect(synced.status().checks.durability).toBe('ok');
    const relaxed = new PostgresStore({ connectionString: url, durability: 'relaxed' });
    opened.push(relaxed);
    await relaxed.init();
    expect(relaxed.status().checks.durability).toBe('relaxed');
  });

  it('token lookups are cached: served without the database until forgotten (bus) or expired (TTL)', async () => {
    const url = await server.createDatabase();
    const node = new PostgresStore({ connectionString: url, max: 2, tokenCacheTtlMs: 60_000 });
    const short = new PostgresStore({ connectionString: url, max: 2, tokenCacheTtlMs: 150 });
    opened.push(node, short);
    await node.init();
    await short.init();
    const a = await node.createAccount({});
    const { key, token } = await node.createApiKey(a.account_id, {});
    expect((await node.lookupToken(token)).ok).toBe(true);
    expect((await short.lookupToken(token)).ok).toBe(true);
    // Deactivated behind both stores' backs (as another node would, its control message not yet here).
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query("UPDATE api_keys SET status = 'inactive' WHERE key_id = $1", [key.key_id]);
    } finally {
      await c.end();
    }
    expect((await node.lookupToken(token)).ok).toBe(true); // served from the cache
    node.forgetCachedAuth(); // what the bus's control message triggers (src/server.ts)
    expect(await node.lookupToken(token)).toEqual({ ok: false, reason: 'inactive' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await short.lookupToken(token)).toEqual({ ok: false, reason: 'inactive' }); // the TTL ran out
    // An inactive key is not cached: activating it needs no invalidation.
    await node.setApiKeyStatus(key.key_id, 'active');
    expect((await short.lookupToken(token)).ok).toBe(true);
  });

  it('last_used_at is written in batches: queued at authentication, flushed by key reads and by the timer', async () => {
    const url = await server.createDatabase();
    const store = new PostgresStore({ connectionString: url, max: 2, keyTouchBatchMs: 100 });
    opened.push(store);
    await store.init();
    const a = await store.createAccount({});
    const k1 = await store.createApiKey(a.account_id, {});
    const k2 = await store.createApiKey(a.account_id, {});
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    const stored = async (id: string) => (await raw.query('SELECT last_used_at FROM api_keys WHERE key_id = $1', [id])).rows[0].last_used_at as string | null;
    try {
      const r = await store.lookupToken(k1.token);
      expect(r.ok && r.key.last_used_at).toBeTruthy();
      expect(await stored(k1.key.key_id)).toBeNull(); // queued, not written yet
      expect((await store.getApiKey(k1.key.key_id))!.last_used_at).toBe(r.ok && r.key.last_used_at);
      expect(await stored(k1.key.key_id)).toBe(r.ok && r.key.last_used_at);
      await store.lookupToken(k2.token);
      for (let i = 0; i < 100 && (await stored(k2.key.key_id)) === null; i++) await new Promise((res) => setTimeout(res, 20));
      expect(await stored(k2.key.key_id)).not.toBeNull();
    } finally {
      await raw.end();
    }
  });

  it('retention pruning runs in chunks with the event loop running between them', async () => {
    const url = await server.createDatabase();
    const store = new PostgresStore({ connectionString: url, max: 2, pruneChunkRows: 3 });
    opened.push(store);
    await store.init();
    const a = await store.createAccount({});
    const b = await store.createAccount({});
    const old = Date.now() - 10 * 3600_000;
    await store.appendEvents(Array.from({ length: 10 }, (_, i) => ev([a.account_id, b.account_id], { created_at_ms: old + i })));
    await store.appendEvents([ev([a.account_id])]);
    const { value: removed, turns } = await loopTurnsDuring(store.pruneEvents(old + 3600_000));
    expect(removed).toBe(20);
    expect(turns).toBeGreaterThanOrEqual(8); // 2 accounts x 4 chunks of <= 3 rows
    const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
    expect(read).toMatchObject({ pruned_through: 10, last_seq: 11 });
    expect(read.events.map((e) => e.seq)).toEqual([11]);
  });

  it('an account deleted between the plan and the row locks: a broadcast drops it (202), an event naming it is UNKNOWN_ACCOUNT', async () => {
    const url = await server.createDatabase();
    const store = await freshStore(url);
    const [a, b, c] = [await store.createAccount({}), await store.createAccount({}), await store.createAccount({})];
    const deleter = new pg.Client({ connectionString: url });
    await deleter.connect();
    /** Delete `victim` while `append` has planned and waits on its row lock (the deleter holds it). */
    const race = async <T>(victim: string, append: () => Promise<T>): Promise<T> => {
      await deleter.query('BEGIN');
      await deleter.query('SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE', [victim]);
      const pending = append();
      pending.catch(() => {});
      const blocked = async () =>
        (await deleter.query("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].n > 0;
      for (let i = 0; i < 500 && !(await blocked()); i++) await new Promise((r) => setTimeout(r, 10));
      expect(await blocked()).toBe(true);
      await deleter.query('DELETE FROM accounts WHERE account_id = $1', [victim]);
      await deleter.query('COMMIT');
      return pending;
    };
    try {
      const [broadcast] = await race(b.account_id, () => store.appendEvents([ev('broadcast')]));
      expect(broadcast.recipients).toBe(2);
      expect(broadcast.events.map((e) => e.account_id).sort()).toEqual([a.account_id, c.account_id].sort());
      // The stored recipient count follows (a re-post answers it as a duplicate).
      const [again] = await store.appendEvents([ev('broadcast', { msg_id: broadcast.msg_id })]);
      expect(again).toMatchObject({ duplicate: true, recipients: 2 });

      const named = ev([a.account_id, c.account_id]);
      await expect(race(c.account_id, () => store.appendEvents([named]))).rejects.toMatchObject({ name: 'UnknownAccountsError', accountIds: [c.account_id] });
      const stored = await deleter.query('SELECT COUNT(*)::int AS n FROM events WHERE msg_id = $1', [named.msg_id]);
      expect(stored.rows[0].n).toBe(0); // refused: nothing stored, no seq consumed
      expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).last_seq).toBe(1);
    } finally {
      await deleter.end();
    }
  });

  it('a claim reads a bounded number of deliveries whatever the backlog, and a slow endpoint at its limit starves nobody', async () => {
    const url = await server.createDatabase();
    const store = await freshStore(url);
    const [a, b] = [await store.createAccount({}), await store.createAccount({})];
    const slow = await store.createWebhook(a.account_id, { url: 'https://a.example/h', secret: 'whsec_a' });
    const other = await store.createWebhook(b.account_id, { url: 'https://b.example/h', secret: 'whsec_b' });
    const [seed] = await store.appendEvents([ev([a.account_id])]);
    const theirs = await store.appendEvents(Array.from({ length: 5 }, () => ev([b.account_id])));
    const now = Date.now();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      // A backlog of 20,000 due deliveries of one endpoint, older than everything else, 10 of them
      // leased (in flight: the endpoint is at its limit of 10).
      const BACKLOG = 20_000;
      await c.query(
        `INSERT INTO deliveries (delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, created_at, lease_owner, lease_until)
         SELECT 'backlog-' || lpad(g::text, 6, '0'), $1, $2, (SELECT event_id FROM events WHERE msg_id = $3), $3, 'BID_REQUEST', 1000 + g, 'pending', 1, 1000 + g, 1000 + g,
                CASE WHEN g <= 10 THEN 'another-node' END, CASE WHEN g <= 10 THEN $4::bigint END
         FROM generate_series(1, $5::int) g`,
        [slow.webhook_id, a.account_id, seed.msg_id, now + 60_000, BACKLOG],
      );
      await c.query('ANALYZE deliveries');

      const claimed = await store.claimDueDeliveries({ now: new Date(now + 1000), limit: 5, perEndpointLimit: 10, leaseMs: 30_000, owner: 'n1' });
      expect(claimed.map((d) => d.delivery.webhook_id)).toEqual(Array(5).fill(other.webhook_id));
      expect(claimed.map((d) => d.event.msg_id)).toEqual(theirs.map((r) => r.msg_id));

      // What each statement of a claim reads, by EXPLAIN ANALYZE (before: one statement ranking every due row, > BACKLOG).
      const head = await rowsRead(c, 'deliveries', CLAIM_HEAD_SQL, [now + 1000, CLAIM_SCAN_BUDGET]);
      const byEndpoint = await rowsRead(c, 'deliveries', CLAIM_BY_ENDPOINT_SQL, [now + 1000, 10, 5]);
      expect(head).toBeLessThanOrEqual(2 * CLAIM_SCAN_BUDGET + 50); // the head, and the live leases
      expect(byEndpoint).toBeLessThanOrEqual(100); // a probe or two per endpoint, and its free slots
    } finally {
      await c.end();
    }
  });

  it('a busy database is not a hung one: an append waiting 3 s on a row lock succeeds', async () => {
    const url = await server.createDatabase();
    const store = await freshStore(url);
    const a = await store.createAccount({});
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE', [a.account_id]);
      const append = store.appendEvents([ev([a.account_id])]);
      await new Promise((r) => setTimeout(r, 3000)); // past the 1.5 s liveness check, which the server answers
      await holder.query('COMMIT');
      expect((await append)[0].events[0].seq).toBe(1);
      expect(store.status().ok).toBe(true);
    } finally {
      await holder.end();
    }
  });
});
