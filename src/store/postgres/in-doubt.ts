/**
 * Appends whose outcome is unknown: the call failed while its COMMIT was on the wire
 * (CommitInDoubtError: the server hung or the connection broke before it answered). The caller
 * heard 503, yet the server may have committed, or may still commit when it resumes. If it did,
 * the event is in the log and its webhook deliveries are queued (the dispatcher finds them), but
 * no node fanned it out to WebSocket clients: they would only see it when a later event of the
 * account exposes the gap, or on resume, and maybe never if no later event comes.
 *
 * So the store keeps each such append's transaction id (recorded in the transaction itself, free:
 * RETURNING pg_current_xact_id()) and its results, and, once the database answers again, asks
 * PostgreSQL how it ended (pg_xact_status, made for exactly this). 'in progress' means the
 * abandoned backend still holds it (stopped before reading the COMMIT, or waiting for its WAL
 * flush or a synchronous standby): it is terminated, which makes the outcome final (an abort,
 * unless the commit record was already written), and asked again at the next round. A committed
 * append is handed to the late-commit listeners (the publisher fans it out as if just accepted;
 * gateways drop seqs they already delivered); an aborted one is forgotten.
 */
import type { StoreLogger } from '../logger.js';
import type { AppendResult } from '../types.js';
import type { PgDatabase } from './database.js';

/** How often unresolved appends are looked at (each round is one query per append). */
export const IN_DOUBT_RESOLVE_INTERVAL_MS = 500;
/** After this long an unresolved append is given up on (logged). */
export const IN_DOUBT_GIVE_UP_MS = 10 * 60_000;

interface Entry {
  /** The transaction id (xid8, as text). */
  xid: string;
  results: AppendResult[];
  since: number;
}

export type LateCommitListener = (results: AppendResult[]) => void;

export class InDoubtAppends {
  private entries: Entry[] = [];
  private readonly listeners: LateCommitListener[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Appends whose COMMIT was in flight when their call failed (for /metrics). */
  seen = 0;
  /** Of those, the ones found committed and handed to the listeners. */
  committedLate = 0;

  constructor(
    private readonly d: PgDatabase,
    private readonly logger?: StoreLogger,
  ) {}

  get pending(): number {
    return this.entries.length;
  }

  onLateCommit(listener: LateCommitListener): void {
    this.listeners.push(listener);
  }

  add(xid: string, results: AppendResult[]): void {
    this.seen++;
    this.entries.push({ xid, results, since: Date.now() });
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.entries.length === 0 || this.d.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.resolve().finally(() => this.arm());
    }, IN_DOUBT_RESOLVE_INTERVAL_MS);
    this.timer.unref();
  }

  /** One round: settle what can be settled now (one at a time). */
  resolve(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    for (const entry of [...this.entries]) {
      if (this.d.closed) return;
      if (Date.now() - entry.since > IN_DOUBT_GIVE_UP_MS) {
        this.drop(entry, `unresolved after ${IN_DOUBT_GIVE_UP_MS / 60_000} minutes; not fanned out`);
        continue;
      }
      let status: string | null;
      try {
        status = (await this.d.one<{ status: string | null }>('SELECT pg_xact_status($1::xid8) AS status', [entry.xid]))?.status ?? null;
        if (status === 'in progress') {
          await this.d.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_xid = $1::xid8::xid', [entry.xid]);
          continue;
        }
      } catch {
        continue; // still unreachable (or busy): the next round asks again
      }
      this.entries = this.entries.filter((e) => e !== entry);
      const msgIds = entry.results.map((r) => r.msg_id);
      if (status === 'committed') {
        this.committedLate++;
        this.logger?.warn({ msg_ids: msgIds }, 'an append answered 503 (its COMMIT was in flight) committed after all: fanning it out now');
        for (const listener of this.listeners) {
          try {
            listener(entry.results);
          } catch (err) {
            this.logger?.error({ err: (err as Error).message, msg_ids: msgIds }, 'late-commit listener failed');
          }
        }
      } else if (status === null) {
        // Too old for the commit log (never within minutes) or not a transaction of this cluster.
        this.logger?.warn({ msg_ids: msgIds, xid: entry.xid }, 'outcome of an append answered 503 is unknown to the database; not fanned out');
      }
    }
  }

  private drop(entry: Entry, why: string): void {
    this.entries = this.entries.filter((e) => e !== entry);
    this.logger?.warn({ msg_ids: entry.results.map((r) => r.msg_id), xid: entry.xid }, `in-doubt append ${why}`);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
