/**
 * The store's counters in /metrics (prom-client), read from StoreStatus at scrape time:
 * tpx_store_<name>_total, e.g. tpx_store_checkpoint_failures_total, tpx_store_wal_syncs_total,
 * tpx_store_connection_failures_total; and tpx_store_healthy (1/0, what /readyz also reports).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StoreLifecycle } from './types.js';

const HELP: Record<string, string> = {
  wal_syncs: 'WAL syncs (fdatasync) made for synced durability (SQLite)',
  checkpoint_failures: 'WAL checkpointer failures (errors or crashes of the worker) (SQLite)',
  checkpointer_restarts: 'WAL checkpointer workers restarted after a failure (SQLite)',
  connection_failures: 'Connection-level failures talking to the database (PostgreSQL)',
  commits_in_doubt: 'Appends answered 503 while their COMMIT was in flight, resolved afterwards (PostgreSQL)',
  late_commits: 'Of those, appends found committed after all and fanned out then (PostgreSQL)',
};

export function registerStoreMetrics(registry: Registry, store: Pick<StoreLifecycle, 'status'>): void {
  new Gauge({
    name: 'tpx_store_healthy',
    help: 'Whether the store reports itself healthy (see /readyz checks)',
    registers: [registry],
    collect() {
      this.set(store.status().ok ? 1 : 0);
    },
  });
  for (const name of Object.keys(store.status().counters)) {
    let seen = 0;
    new Counter({
      name: `tpx_store_${name}_total`,
      help: HELP[name] ?? name,
      registers: [registry],
      collect() {
        // Counters only move forward: add what the store counted since the last scrape.
        const now = store.status().counters[name] ?? 0;
        if (now > seen) this.inc(now - seen);
        seen = Math.max(seen, now);
      },
    });
  }
}
