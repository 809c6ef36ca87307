/**
 * The PostgreSQL store's pool and what every aggregate shares: connection settings (durability,
 * timeouts), transactions with deadlock retries, migrations under an advisory lock, and how an
 * unreachable database is reported.
 *
 * Durability: every session runs with synchronous_commit=on (TPX_DURABILITY=synced, the
 * default), set as a connection option so a server-wide `off` cannot weaken it: COMMIT returns
 * only once the commit's WAL record is flushed to disk, which is SPEC §3.1's 202. 'relaxed'
 * sets synchronous_commit=off: commits return before the flush, and a crash of the database
 * server (not of a node) can lose the last few hundred milliseconds of accepted events.
 *
 * Outages (SPEC §7: the store is the truth; without it there is nothing to accept): every wait
 * is bounded, so requests fail with StoreUnavailableError (HTTP 503) instead of hanging.
 *  - A slow database and a hung one look the same to a waiting query (a SIGSTOPped server still
 *    accepts TCP and buffers what it is sent). So when a call has waited LIVENESS_AFTER_MS, a
 *    fresh connection asks the server for `SELECT 1` (LIVENESS_TIMEOUT_MS). If that fails the
 *    server is hung or gone: every waiting call fails at once and the store is marked
 *    unreachable. If it answers, the server is alive and merely busy (e.g. 45 publishes queued
 *    on one account's row lock), and calls may run until the statement timeout.
 *  - Connecting (including waiting for a free pooled connection): CONNECT_TIMEOUT_MS.
 *  - A statement, server side (lock waits included): STATEMENT_TIMEOUT_MS; a reply, client side
 *    (the only bound a stopped server cannot ignore): QUERY_TIMEOUT_MS, after which the
 *    connection is discarded rather than reused.
 *  - A session idle inside a transaction (a node stalled mid-transaction holds row locks):
 *    IDLE_IN_TX_TIMEOUT_MS.
 * While unreachable, further calls fail at once, except one probe every PROBE_INTERVAL_MS; the
 * first call that succeeds (probe, /readyz ping or request) marks it reachable again. Nothing
 * needs a restart: the pool drops broken connections and opens new ones.
 *
 * A call given up on is really given up (the caller hears 503, so nothing may commit later
 * behind its back): its pooled connections are cut (the socket destroyed, never returned to the
 * pool), and a call still waiting for a pooled connection sends nothing once it gets one. A
 * PostgreSQL backend whose client is gone aborts its open transaction as soon as it reads again
 * (a stopped server does so when it resumes; a partitioned one at the idle-in-transaction
 * timeout). The one remaining window is a statement that already went out and commits by itself:
 * a COMMIT (the call then fails with CommitInDoubtError, and appends resolve it: in-doubt.ts) or
 * a single-statement write, which may still take effect (docs/operations.md).
 */
import { createRequire } from 'node:module';
import type * as pg from 'pg';
import type { StoreLogger } from '../logger.js';
import { StoreUnavailableError, type Durability } from '../types.js';
import type { ConstraintErrors } from '../shared/accounts.js';
import { pendingMigrations } from '../shared/migrations.js';
import { MIGRATIONS, MIGRATION_LOCK_KEY } from './schema.js';

export const CONNECT_TIMEOUT_MS = 2_000;
export const STATEMENT_TIMEOUT_MS = 10_000;
export const QUERY_TIMEOUT_MS = 12_000;
export const IDLE_IN_TX_TIMEOUT_MS = 15_000;
export const PROBE_INTERVAL_MS = 250;
export const LIVENESS_AFTER_MS = 1_500;
export const LIVENESS_TIMEOUT_MS = 2_000;
const MAX_TX_RETRIES = 5;

/**
 * `pg` is loaded when the first PostgreSQL store is built, not when this module is: the module
 * is reachable from the store factory, and a node on the embedded store would otherwise load
 * pg's module graph at start-up for nothing (≈ 0.4 MiB of heap, a few MiB of RSS).
 */
let pgModule: typeof pg | null = null;
const pgLib = (): typeof pg => (pgModule ??= createRequire(import.meta.url)('pg') as typeof pg);

// BIGINT (20) and NUMERIC-free counts → JS numbers, without touching pg's global parsers.
const INT8_OID = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: string): any {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return (pgLib().types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
};

export interface PostgresStoreOptions {
  connectionString: string;
  /** Pool size per node (default 10). */
  max?: number;
  /** Passed to pg as `application_name`. */
  applicationName?: string;
  durability?: Durability;
  /** How long cached token lookups may be served (default 1 s; the bus invalidates sooner). */
  tokenCacheTtlMs?: number;
  /** How long api_keys.last_used_at updates wait to be written in one batch. */
  keyTouchBatchMs?: number;
  /** Rows per retention-pruning transaction. */
  pruneChunkRows?: number;
  /** Override the bounded waits. */
  timeouts?: Partial<{ connectMs: number; statementMs: number; queryMs: number; livenessAfterMs: number }>;
  logger?: StoreLogger;
}

export type Queryable = pg.Pool | pg.PoolClient;

const pgCode = (err: unknown): string | undefined => (err as { code?: string })?.code;

/**
 * The call failed while its COMMIT was on the wire: the server may yet commit it, or already
 * has. Still a 503 for the caller; appends resolve the outcome afterwards (in-doubt.ts).
 */
export class CommitInDoubtError extends StoreUnavailableError {
  constructor(
    message: string,
    /** The backend that received the COMMIT (its BackendKeyData pid), to end it if it still holds the transaction. */
    readonly backendPid: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * One guarded call: the pooled connections it holds right now, so that a call given up on can
 * cut them, and whether its COMMIT is on the wire.
 */
export class Call {
  readonly clients = new Set<pg.PoolClient>();
  abandoned: Error | null = null;
  /** Set while COMMIT is sent and not answered: a failure then leaves the outcome unknown. */
  committing = false;
  /** The backend the COMMIT went to. */
  committingPid: number | null = null;

  abandon(err: Error): void {
    this.abandoned ??= err;
    for (const client of this.clients) cut(client);
  }
}

const ignoreClientError = (): void => {};

/**
 * Destroy a client's socket now. Not a graceful end: a stopped server never answers the goodbye,
 * and the backend must find its client gone (so it aborts the open transaction) when it reads.
 */
function cut(client: pg.PoolClient): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** PostgreSQL's constraint violations (SQLSTATE 23505 unique, 23503 foreign key). */
export const PG_CONSTRAINTS: ConstraintErrors = {
  isUnique: (err, column) => pgCode(err) === '23505' && String((err as { constraint?: string }).constraint ?? '').includes(column),
  isForeignKey: (err) => pgCode(err) === '23503',
};
/** Deadlock detected / serialization failure: the whole transaction may simply be retried. */
const isRetryable = (err: unknown): boolean => pgCode(err) === '40P01' || pgCode(err) === '40001';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = /Connection terminated|timeout expired|Query read timeout|timeout exceeded when trying to connect|not queryable|Connection ended/i;

/** The database cannot be reached or did not answer: a connection-level failure. */
export function isConnectionFailure(err: unknown): boolean {
  const code = pgCode(err);
  if (code !== undefined && (NETWORK_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')) return true;
  return CONNECTION_MESSAGES.test(String((err as Error)?.message ?? ''));
}

/** Statement or lock timeout: the server is alive but did not finish in time. */
const isTimeout = (err: unknown): boolean => pgCode(err) === '57014' || pgCode(err) === '55P03';

export class PgDatabase {
  readonly pool: pg.Pool;
  ready = false;
  closed = false;
  private unreachableSince: number | null = null;
  private lastProbeAt = 0;
  private lastFailure = '';
  /** Calls waiting on the database: failed at once when a liveness check finds it hung. */
  private readonly waiting = new Set<(err: Error) => void>();
  private liveness: Promise<void> | null = null;
  /** Connection-level failures seen (for /metrics). */
  failures = 0;
  /** synchronous_commit as seen by this node's sessions (checked at init). */
  synchronousCommit = '';

  constructor(readonly opts: PostgresStoreOptions) {
    const t = opts.timeouts ?? {};
    this.pool = new (pgLib().Pool)({
      connectionString: opts.connectionString,
      max: opts.max ?? 10,
      application_name: opts.applicationName ?? 'tpx-realtime',
      connectionTimeoutMillis: t.connectMs ?? CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      statement_timeout: t.statementMs ?? STATEMENT_TIMEOUT_MS,
      query_timeout: t.queryMs ?? QUERY_TIMEOUT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TX_TIMEOUT_MS,
      options: `-c synchronous_commit=${(opts.durability ?? 'synced') === 'synced' ? 'on' : 'off'}`,
      keepAlive: true,
      types: typeParsers,
    });
    // An idle client losing its connection (database restart) must not crash the process;
    // the pool discards it and the next query opens a fresh one.
    this.pool.on('error', () => {});
  }

  check(): void {
    if (!this.ready) throw new Error(this.closed ? 'Store is closed' : 'Store not initialized: call init() first');
  }

  /** Null while reachable; otherwise since when and why not. */
  get unreachable(): string | null {
    return this.unreachableSince === null ? null : `unreachable since ${new Date(this.unreachableSince).toISOString()}: ${this.lastFailure}`;
  }

  /**
   * Run `fn` against the database, or fail fast while it is known unreachable (letting one probe
   * through per PROBE_INTERVAL_MS). Connection failures and timeouts become StoreUnavailableError
   * (CommitInDoubtError when the COMMIT was on the wire). `fn` runs its statements through
   * `session(…, call)`, so a call failed early (the liveness check) cuts the connections it holds.
   */
  async guard<T>(fn: (call: Call) => Promise<T>): Promise<T> {
    this.check();
    if (this.unreachableSince !== null) {
      const now = Date.now();
      if (now - this.lastProbeAt < PROBE_INTERVAL_MS) throw new StoreUnavailableError(`PostgreSQL ${this.unreachable}`);
      this.lastProbeAt = now;
    }
    const call = new Call();
    let failEarly!: (err: Error) => void;
    const early = new Promise<never>((_, reject) => (failEarly = reject));
    const giveUp = (err: Error) => {
      call.abandon(err); // cut first: the transaction must not go on behind the caller's back
      failEarly(err);
    };
    this.waiting.add(giveUp);
    const timer = setTimeout(() => void this.checkLiveness(), this.opts.timeouts?.livenessAfterMs ?? LIVENESS_AFTER_MS);
    try {
      const result = await Promise.race([fn(call), early]);
      this.unreachableSince = null;
      return result;
    } catch (err) {
      const failed = isConnectionFailure(err) || err === call.abandoned;
      if (failed) call.abandon(err as Error);
      if (failed && call.committing) {
        if (isConnectionFailure(err)) this.markUnreachable(err);
        throw new CommitInDoubtError(`PostgreSQL failed while committing; the transaction may have committed: ${(err as Error).message}`, call.committingPid, { cause: err });
      }
      if (isConnectionFailure(err)) {
        this.markUnreachable(err);
        throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`PostgreSQL ${this.unreachable}`, { cause: err });
      }
      if (isTimeout(err)) throw new StoreUnavailableError(`PostgreSQL did not answer in time: ${(err as Error).message}`, { cause: err });
      if (/^[0-9A-Z]{5}$/.test(pgCode(err) ?? '')) this.unreachableSince = null; // the server answered (a SQLSTATE): it is reachable
      throw err;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(giveUp);
    }
  }

  private markUnreachable(err: unknown): void {
    this.failures++;
    this.lastFailure = (err as Error)?.message ?? String(err);
    if (this.unreachableSince === null) {
      this.unreachableSince = Date.now();
      this.lastProbeAt = this.unreachableSince;
    }
  }

  /** A call has waited long: is the server alive (just busy) or hung? One check at a time. */
  private checkLiveness(): Promise<void> {
    this.liveness ??= (async () => {
      const probe = new (pgLib().Client)({
        connectionString: this.opts.connectionString,
        application_name: `${this.opts.applicationName ?? 'tpx-realtime'} liveness`,
        connectionTimeoutMillis: LIVENESS_TIMEOUT_MS,
        query_timeout: LIVENESS_TIMEOUT_MS,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.query('SELECT 1');
      } catch (err) {
        this.markUnreachable(err);
        const failure = new StoreUnavailableError(`PostgreSQL ${this.unreachable} (no answer to a liveness check)`, { cause: err });
        for (const fail of this.waiting) fail(failure);
        this.waiting.clear();
      } finally {
        // Never wait for a hung server to acknowledge the goodbye.
        void probe.end().catch(() => {});
        (probe as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      }
    })().finally(() => {
      this.liveness = null;
    });
    return this.liveness;
  }

  query<T extends pg.QueryResultRow>(sql: string, args: unknown[] = []): Promise<pg.QueryResult<T>> {
    return this.guard((call) => this.session((c) => c.query<T>(sql, args), call));
  }

  async one<T extends pg.QueryResultRow>(sql: string, args: unknown[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, args)).rows[0];
  }

  /** Run fn in one transaction; deadlocks and serialization failures retry the whole thing. */
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.guard((call) => this.session((c) => inTransaction(c, fn, call), call));
  }

  /**
   * Run fn on one pooled connection (a session: e.g. a session advisory lock), as part of `call`:
   * nothing is sent if the call was given up on while it waited for the connection, and a
   * connection the call gives up on meanwhile is cut and never returned to the pool.
   */
  async session<T>(fn: (c: pg.PoolClient) => Promise<T>, call: Call = new Call()): Promise<T> {
    const client = await this.pool.connect();
    if (call.abandoned) {
      client.release();
      throw call.abandoned;
    }
    call.clients.add(client);
    // A connection lost while checked out (cut here, or the server went away) also fails the
    // statement in flight, which is what the call sees; the client's 'error' event, which the pool
    // only listens to while the client is idle, must not crash the process.
    client.on('error', ignoreClientError);
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      // A connection that failed or timed out may still be busy with the statement: never reuse it.
      if (isConnectionFailure(err) || call.abandoned) {
        broken = err as Error;
        cut(client);
      }
      throw err;
    } finally {
      call.clients.delete(client);
      client.removeListener('error', ignoreClientError);
      client.release(broken ?? call.abandoned ?? undefined);
    }
  }

  async migrate(): Promise<void> {
    await this.pool.connect().then(async (client) => {
      try {
        // Session lock: concurrent starters queue here; the first migrates, the others find it done.
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        try {
          await client.query('CREATE TABLE IF NOT EXISTS settings (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)');
          const { rows } = await client.query<{ value: string }>("SELECT value FROM settings WHERE key = 'schema_version'");
          for (const m of pendingMigrations(rows.length ? Number(rows[0].value) : 0, MIGRATIONS)) {
            await inTransaction(client, async (c) => {
              await c.query(m.sql);
              await c.query("INSERT INTO settings (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(m.version)]);
            });
          }
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
        }
        // What a COMMIT waits for in this node's sessions (set per connection, see above).
        this.synchronousCommit = (await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0].synchronous_commit;
        if ((this.opts.durability ?? 'synced') === 'synced' && this.synchronousCommit === 'off') {
          throw new Error('synchronous_commit is off in this session although TPX_DURABILITY=synced');
        }
      } finally {
        client.release();
      }
    });
    this.ready = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    await this.pool.end();
  }
}

/** BEGIN … COMMIT on `c`, retrying deadlocks; a broken connection is not rolled back (it is discarded). */
async function inTransaction<T>(c: pg.PoolClient, fn: (c: pg.PoolClient) => Promise<T>, call?: Call): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      if (call) {
        call.committing = true;
        call.committingPid = (c as unknown as { processID?: number | null }).processID ?? null;
      }
      await c.query('COMMIT');
      if (call) call.committing = false;
      return result;
    } catch (err) {
      if (isConnectionFailure(err) || call?.abandoned) throw err;
      if (call) call.committing = false; // the server answered: the transaction did not commit
      await c.query('ROLLBACK').catch(() => {});
      if (attempt < MAX_TX_RETRIES && isRetryable(err)) {
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
        continue;
      }
      throw err;
    }
  }
}

export async function oneOn<T extends pg.QueryResultRow>(q: Queryable, sql: string, args: unknown[] = []): Promise<T | undefined> {
  return (await q.query<T>(sql, args)).rows[0];
}
