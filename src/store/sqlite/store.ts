/**
 * Embedded SQLite implementation of the Store seam (better-sqlite3): the three aggregates, each
 * in its own file (accounts.ts, event-log.ts, delivery-queue.ts), over one connection
 * (database.ts), exposed together under the seam's names.
 *
 * Durability (SPEC §3.1, TPX_DURABILITY): 'synced' by default, i.e. an append is acknowledged
 * only after the WAL holding it was fdatasynced on libuv's thread pool (wal-sync.ts), so an
 * accepted event survives a crash of the machine, not only of the process. 'relaxed' answers
 * once the WAL write returned: it survives kill -9 and crashes of the process, but an operating
 * system crash or power loss can lose the last ~second of accepted events (the database stays
 * consistent).
 */
import type { AccessChangeLog, AccountStore, DeliveryQueue, EventLog, StoreLifecycle, StoreStatus } from '../types.js';
import { ACCESS_CHANGE_LOG_MEMBERS } from '../shared/access-changes.js';
import { expose, exposeAggregates } from '../shared/compose.js';
import { SqliteAccessChanges } from './access-changes.js';
import { SqliteAccounts } from './accounts.js';
import { SqliteDatabase, type SqliteStoreOptions } from './database.js';
import { SqliteDeliveryQueue } from './delivery-queue.js';
import { SqliteEventLog } from './event-log.js';

export type { SqliteStoreOptions } from './database.js';
export { PRUNE_MAX_SEQ_SQL, PRUNE_SUCCEEDED_DELIVERIES_SQL } from './event-log.js';

// The aggregates' methods are defined on each instance by exposeAggregates (shared/compose.ts).
export interface SqliteStore extends AccountStore, EventLog, DeliveryQueue, AccessChangeLog {}

export class SqliteStore implements StoreLifecycle {
  readonly kind = 'sqlite' as const;
  readonly filename: string;
  private readonly d: SqliteDatabase;
  private parts: { accounts: SqliteAccounts; log: SqliteEventLog; deliveries: SqliteDeliveryQueue } | null = null;

  constructor(opts: SqliteStoreOptions) {
    this.filename = opts.filename;
    this.d = new SqliteDatabase(opts);
    // Until init() the methods exist but refuse clearly (check() names the missing init).
    exposeAggregates(this, { accounts: this.refuse(), log: this.refuse(), deliveries: this.refuse() });
    expose(this, this.refuse<AccessChangeLog>(), ACCESS_CHANGE_LOG_MEMBERS);
  }

  /** Stand-in before init: every call rejects with the reason (forgetting a cache, or a listener that never fires here, is a no-op). */
  private refuse<T extends object>(): T {
    return new Proxy({} as T, {
      get: (_target, name) =>
        name === 'forgetCachedAuth' || name === 'onLateCommit'
          ? () => {}
          : () => Promise.reject(new Error(this.d.db.open ? 'Store not initialized: call init() first' : 'Store is closed')),
    });
  }

  async init(): Promise<void> {
    if (this.parts) return;
    this.d.open();
    const log = new SqliteEventLog(this.d);
    log.stream.materialize(); // rows a crash left staged
    const accounts = new SqliteAccounts(this.d, () => log.dropRouting());
    const deliveries = new SqliteDeliveryQueue(this.d, () => log.dropRouting());
    this.parts = { accounts, log, deliveries };
    exposeAggregates(this, this.parts);
    expose(this, new SqliteAccessChanges(this.d), ACCESS_CHANGE_LOG_MEMBERS);
  }

  async close(): Promise<void> {
    if (!this.d.db.open) return;
    const parts = this.parts;
    if (parts) {
      parts.log.drain(); // accepted work is committed, not dropped
      await this.d.durable().catch(() => {}); // and answered once synced
      if (!this.d.fatal) {
        parts.log.stream.materialize(); // leaves nothing staged, stops its timer
        await parts.accounts.touches.stop();
      }
    }
    await this.d.close();
  }

  async ping(): Promise<void> {
    this.d.check();
    this.d.db.prepare('SELECT 1').get();
  }

  /**
   * The storage failed (a WAL sync, or a checkpoint with an I/O error): the store writes nothing
   * more and must be restarted (database.ts fail()). Called at once if it already happened.
   */
  onFatal(listener: (err: Error) => void): void {
    this.d.onFatal(listener);
  }

  status(): StoreStatus {
    const checks: Record<string, string> = {};
    const wal = this.d.wal;
    const fatal = this.d.fatal;
    checks.durability = fatal ? fatal.message : this.d.durability === 'synced' && this.filename !== ':memory:' ? 'ok' : 'relaxed';
    const cp = this.d.checkpointer;
    if (cp) checks.checkpointer = cp.problem ?? 'ok';
    return {
      ok: !fatal && (cp?.problem ?? null) === null,
      checks,
      counters: {
        wal_syncs: wal?.syncs ?? 0,
        checkpoint_failures: cp?.failures ?? 0,
        checkpointer_restarts: cp?.restarts ?? 0,
      },
    };
  }
}
