/**
 * Appends whose outcome is unknown: the call failed while its COMMIT was on the wire
 * (CommitInDoubtError: the server hung or the connection broke before it answered). The caller
 * heard 503, yet the server may have committed, or may still commit when it resumes. If it did,
 * the event is in the log and its webhook deliveries are queued (the dispatcher finds them), but
 * no node fanned it out to WebSocket clients: they would only see it when a later event of the
 * account exposes the gap, or on resume, and maybe never if no later event comes.
 *
 * So the store keeps each such append's transaction id (recorded in the transaction itself, free:
 * RETURNING pg_current_xact_id()), the backend it ran on and its results, and, once the database
 * answers again, asks PostgreSQL how it ended (pg_xact_status, made for exactly this):
 *  - 'in progress': the abandoned backend still holds it (stopped before reading the COMMIT, or
 *    waiting for its WAL flush or a synchronous standby). It is terminated (matched by pid AND
 *    backend_xid, so never another session), which makes the outcome final (an abort, unless the
 *    commit record was already written), and asked again at the next round.
 *  - 'committed': what the log really holds for those msg_ids is read back, and exactly the
 *    stored (account, seq, msg_id) copies are handed to the late-commit listeners (the publisher
 *    fans them out; gateways drop seqs they already delivered). Checking the rows, not only the
 *    status, matters after a crash of the database: a transaction id whose WAL never reached the
 *    disk can be handed out again, and then names someone else's transaction.
 *  - 'aborted', or "in the future" (the id was lost with unflushed WAL in a crash, so its commit
 *    cannot have been durable either): forgotten.
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
  /** The backend that received the COMMIT. */
  pid: number | null;
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

  add(xid: string, pid: number | null, results: AppendResult[]): void {
    this.seen++;
    this.entries.push({ xid, pid, results, since: Date.now() });
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

  /** One round: settle what can be settled now (one append at a time). */
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
        this.forget(entry, `unresolved after ${IN_DOUBT_GIVE_UP_MS / 60_000} minutes; not fanned out`);
        continue;
      }
      try {
        await this.settle(entry);
      } catch {
        // Still unreachable (or busy): the next round asks again.
      }
    }
  }

  private async settle(entry: Entry): Promise<void> {
    const msgIds = entry.results.map((r) => r.msg_id);
    let status: string | null;
    try {
      status = (await this.d.one<{ status: string | null }>('SELECT pg_xact_status($1::xid8) AS status', [entry.xid]))?.status ?? null;
    } catch (err) {
      if (!/in the future/i.test((err as Error)?.message ?? '')) throw err;
      return this.forget(entry, 'lost in a database crash before its COMMIT was durable; not fanned out', 'info');
    }
    if (status === 'in progress') {
      if (entry.pid !== null) {
        await this.d.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_xid = $2::xid8::xid', [entry.pid, entry.xid]);
      }
      return; // asked again next round
    }
    if (status !== 'committed') {
      return this.forget(entry, status === 'aborted' ? 'did not commit' : 'has an outcome the database no longer knows; not fanned out', status === 'aborted' ? 'info' : 'warn');
    }
    // Exactly what the log holds for these msg_ids.
    const { rows } = await this.d.query<{ account_id: string; seq: number; msg_id: string }>(
      'SELECT ae.account_id, ae.seq, e.msg_id FROM events e JOIN account_events ae ON ae.event_id = e.event_id WHERE e.msg_id = ANY($1::text[])',
      [msgIds],
    );
    const stored = new Set(rows.map((r) => `${r.msg_id}\u0000${r.account_id}\u0000${r.seq}`));
    const late = entry.results
      .map((r) => ({ ...r, events: r.events.filter((e) => stored.has(`${e.msg_id}\u0000${e.account_id}\u0000${e.seq}`)) }))
      .filter((r) => r.events.length > 0);
    this.entries = this.entries.filter((e) => e !== entry);
    if (late.length === 0) return;
    this.committedLate++;
    this.logger?.warn({ msg_ids: late.map((r) => r.msg_id) }, 'an append answered 503 (its COMMIT was in flight) committed after all: fanning it out now');
    for (const listener of this.listeners) {
      try {
        listener(late);
      } catch (err) {
        this.logger?.error({ err: (err as Error).message, msg_ids: msgIds }, 'late-commit listener failed');
      }
    }
  }

  private forget(entry: Entry, why: string, level: 'info' | 'warn' = 'warn'): void {
    this.entries = this.entries.filter((e) => e !== entry);
    this.logger?.[level]({ msg_ids: entry.results.map((r) => r.msg_id), xid: entry.xid }, `in-doubt append ${why}`);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
