/**
 * PostgreSQL implementation of the Store seam: the shared store of a multi-node deployment
 * (SPEC §7). The three aggregates live in accounts.ts, event-log.ts and delivery-queue.ts over
 * one pool (database.ts); their semantics are the shared ones (src/store/shared, the same
 * contract suite as SQLite), and each file says what PostgreSQL adds for several nodes.
 *
 * BIGINT columns are parsed to JS numbers (seq and epoch ms stay far below 2^53).
 */
import type { AccessChangeLog, AccountStore, DeliveryQueue, EventLog, StoreLifecycle, StoreStatus } from '../types.js';
import { ACCESS_CHANGE_LOG_MEMBERS } from '../shared/access-changes.js';
import { expose, exposeAggregates } from '../shared/compose.js';
import { PgAccessChanges } from './access-changes.js';
import { PgAccounts } from './accounts.js';
import { PgDatabase, type PostgresStoreOptions } from './database.js';
import { PgDeliveryQueue } from './delivery-queue.js';
import { PgEventLog } from './event-log.js';

export type { PostgresStoreOptions } from './database.js';

// The aggregates' methods are defined on each instance by exposeAggregates (shared/compose.ts).
export interface PostgresStore extends AccountStore, EventLog, DeliveryQueue, AccessChangeLog {}

export class PostgresStore implements StoreLifecycle {
  readonly kind = 'postgres' as const;
  private readonly d: PgDatabase;
  private readonly accounts: PgAccounts;
  private readonly log: PgEventLog;

  constructor(opts: PostgresStoreOptions | string) {
    this.d = new PgDatabase(typeof opts === 'string' ? { connectionString: opts } : opts);
    this.accounts = new PgAccounts(this.d);
    this.log = new PgEventLog(this.d);
    exposeAggregates(this, { accounts: this.accounts, log: this.log, deliveries: new PgDeliveryQueue(this.d) });
    expose(this, new PgAccessChanges(this.d), ACCESS_CHANGE_LOG_MEMBERS);
  }

  async init(): Promise<void> {
    if (this.d.ready) return;
    await this.d.migrate();
  }

  async close(): Promise<void> {
    if (this.d.closed) return;
    if (this.d.ready) await this.accounts.touches.stop().catch(() => {}); // bookkeeping only
    this.log.inDoubt.close();
    await this.d.close();
  }

  async ping(): Promise<void> {
    await this.d.query('SELECT 1');
  }

  status(): StoreStatus {
    const unreachable = this.d.unreachable;
    return {
      ok: unreachable === null,
      checks: {
        database: unreachable ?? 'ok',
        // 'synced': every COMMIT waited for the WAL flush (synchronous_commit=on, verified at init).
        durability: this.d.synchronousCommit === 'off' ? 'relaxed' : 'ok',
      },
      counters: { connection_failures: this.d.failures, commits_in_doubt: this.log.inDoubt.seen, late_commits: this.log.inDoubt.committedLate },
    };
  }
}
