/**
 * A PostgreSQL call the store gives up on is really given up (SPEC §3.1, §7: a 503 means not
 * accepted): its connection is cut, so the transaction the server was holding rolls back when it
 * resumes instead of committing behind the caller's back. Real processes: a private PostgreSQL
 * (its own server: these tests stop it, and change its replication settings).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { CommitInDoubtError } from '../../src/store/postgres/database.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import type { AppendResult } from '../../src/store/types.js';
import { waitFor } from '../helpers/server.js';
import { startPostgres, type TestPostgres } from '../helpers/pg.js';
import { ev } from './contract.js';

let server: TestPostgres;
const opened: PostgresStore[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
  await server?.stop();
});

function signalAll(signal: NodeJS.Signals): void {
  for (const pid of server.pids()) {
    try {
      process.kill(pid, signal);
    } catch {
      /* exited */
    }
  }
}

async function count(url: string, sql: string, args: unknown[]): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ n: number }>(sql, args)).rows[0].n;
  } finally {
    await c.end();
  }
}

/** A store on a fresh database with short waits (liveness check after 0.3 s, replies 1.5 s), recording late commits and log lines. */
async function shortWaitStore(max: number): Promise<{ url: string; store: PostgresStore; late: AppendResult[][]; logged: string[] }> {
  const url = await server.createDatabase();
  const logged: string[] = [];
  const log = (_obj: object, msg: string) => void logged.push(msg);
  const store = new PostgresStore({ connectionString: url, max, timeouts: { livenessAfterMs: 300, queryMs: 1500 }, logger: { info: log, warn: log, error: log } });
  opened.push(store);
  await store.init();
  const late: AppendResult[][] = [];
  store.onLateCommit((results) => late.push(results));
  return { url, store, late, logged };
}

describe('PostgreSQL: calls given up on', () => {
  it('an append answered 503 while the server is stopped is rolled back when it resumes, and its connection is never reused', async () => {
    const url = await server.createDatabase();
    const store = new PostgresStore({ connectionString: url, max: 2, timeouts: { livenessAfterMs: 300 } });
    opened.push(store);
    await store.init();
    const account = await store.createAccount({});
    await store.appendEvents([ev([account.account_id])]); // the pool holds a warm connection

    const event = ev([account.account_id]);
    signalAll('SIGSTOP');
    let error: unknown;
    try {
      error = await store.appendEvents([event]).then(
        () => null,
        (err: unknown) => err,
      );
    } finally {
      signalAll('SIGCONT');
    }
    expect(error).toMatchObject({ name: 'StoreUnavailableError' });

    // Back: the store recovers by itself, and the abandoned transaction did not commit.
    for (let i = 0; i < 100; i++) {
      if (await store.ping().then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000)); // time for the resumed backend to do whatever it would do
    expect(await count(url, 'SELECT COUNT(*)::int AS n FROM events WHERE msg_id = $1', [event.msg_id])).toBe(0);
    const [next] = await store.appendEvents([ev([account.account_id])]);
    expect(next.events[0].seq).toBe(2); // no seq was consumed by the abandoned append
    expect(await count(url, "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'", [])).toBe(0);
  }, 60_000);

  it('an append whose COMMIT was in flight when it failed, and committed after all, is handed to the late-commit listeners', async () => {
    const { url, store, late } = await shortWaitStore(2);
    const account = await store.createAccount({});
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const event = ev([account.account_id]);
    try {
      // Every COMMIT now waits for a synchronous standby that does not exist: the server is alive
      // (the liveness check's SELECT 1 answers) but never answers the COMMIT, which is already
      // recorded locally. The client gives up after its 1.5 s read timeout: 503.
      await admin.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
      await admin.query('SELECT pg_reload_conf()');
      const failed = store.appendEvents([event]);
      await expect(failed).rejects.toMatchObject({ name: 'StoreUnavailableError' }); // a 503 for the caller
      await expect(failed).rejects.toBeInstanceOf(CommitInDoubtError);
    } finally {
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names');
      await admin.query('SELECT pg_reload_conf()');
      await admin.end();
    }
    // The store asks PostgreSQL how that transaction ended (ending the backend still waiting on it)
    // and hands the committed append over, to be fanned out.
    await waitFor(() => late.length === 1, 30_000, 'the late commit to be reported');
    expect(late[0]).toEqual([expect.objectContaining({ msg_id: event.msg_id, duplicate: false, events: [expect.objectContaining({ account_id: account.account_id, seq: 1 })] })]);
    expect(await count(url, 'SELECT COUNT(*)::int AS n FROM events WHERE msg_id = $1', [event.msg_id])).toBe(1);
    expect(store.status().counters).toMatchObject({ commits_in_doubt: 1, late_commits: 1 });
  }, 60_000);

  // The server crashes before the backend reads the COMMIT. Either the transaction's WAL reached
  // the disk first (the crash aborts it: 'aborted'), or it was still in the WAL buffers and is lost
  // with them (its id was never durable: 'in the future', and may be handed out again).
  for (const walFlushed of [true, false]) {
    it(`an in-doubt append that did not commit (the server crashed before running the COMMIT, its WAL ${walFlushed ? 'flushed' : 'lost'}) is forgotten, not fanned out`, async () => {
      const { url, store, late, logged } = await shortWaitStore(1);
      const inDoubt = () => (store as unknown as { log: { inDoubt: { pending: number } } }).log.inDoubt.pending;
      const account = await store.createAccount({});
      await store.appendEvents([ev([account.account_id])]); // the pool's one connection, warm
      const dbName = new URL(url).pathname.slice(1);
      const backend = await count(url, "SELECT pid AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tpx-realtime'", [dbName]);
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      // The WAL writer would flush the transaction's records within 200 ms: stopped, they stay in the buffers.
      const walWriter = (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")).rows[0].pid;
      if (!walFlushed) process.kill(walWriter, 'SIGSTOP');

      // Stop that backend just as the COMMIT goes out: the server stays alive (the liveness check
      // answers) but this COMMIT is never answered; the client gives up after its 1.5 s read timeout.
      const original = pg.Client.prototype.query;
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        if (args[0] === 'COMMIT') process.kill(backend, 'SIGSTOP');
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original;
      const event = ev([account.account_id]);
      try {
        await expect(store.appendEvents([event])).rejects.toBeInstanceOf(CommitInDoubtError);
        if (walFlushed) await admin.query('SELECT pg_switch_wal()'); // writes and flushes the WAL, the append's records included
      } finally {
        pg.Client.prototype.query = original;
        // The backend dies before it reads the COMMIT (PostgreSQL restarts all backends and recovers).
        process.kill(backend, 'SIGKILL');
        if (!walFlushed) process.kill(walWriter, 'SIGCONT'); // to be stopped by the postmaster with the rest
        await admin.end().catch(() => {});
      }
      expect(inDoubt()).toBe(1);
      // Crash recovery first (slow on a loaded machine), then one resolution round.
      await waitFor(() => inDoubt() === 0, 60_000, 'the in-doubt append to be resolved');
      // With its WAL lost the id is usually unknown to the recovered server ('in the future'); a
      // transaction started during recovery (autovacuum) may take it first: either way not fanned out.
      expect(logged.filter((m) => m.startsWith('in-doubt append'))).toEqual([
        walFlushed ? 'in-doubt append did not commit' : expect.stringMatching(/^in-doubt append (did not commit|lost in a database crash before its COMMIT was durable; not fanned out)$/),
      ]);
      expect(await count(url, 'SELECT COUNT(*)::int AS n FROM events WHERE msg_id = $1', [event.msg_id])).toBe(0);
      expect(late).toEqual([]);
      expect(store.status().counters).toMatchObject({ commits_in_doubt: 1, late_commits: 0 });
      const [next] = await store.appendEvents([ev([account.account_id])]);
      expect(next.events[0].seq).toBe(2);
    }, 120_000);
  }

  it('an in-doubt transaction id the database never recorded ("in the future") is forgotten, and the store stays reachable', async () => {
    const { store, late, logged } = await shortWaitStore(1);
    const account = await store.createAccount({});
    const [result] = await store.appendEvents([ev([account.account_id])]);
    // As after a crash that lost the transaction's WAL: its id is beyond what the server handed out.
    const inDoubt = (store as unknown as { log: { inDoubt: { add(xid: string, pid: number | null, r: AppendResult[]): void; pending: number } } }).log.inDoubt;
    inDoubt.add('9000000000', null, [result]);
    await waitFor(() => inDoubt.pending === 0, 10_000, 'the in-doubt append to be resolved');
    expect(logged).toContain('in-doubt append lost in a database crash before its COMMIT was durable; not fanned out');
    expect(late).toEqual([]);
    expect(store.status().ok).toBe(true);
    expect((await store.appendEvents([ev([account.account_id])]))[0].events[0].seq).toBe(2);
  });
});
