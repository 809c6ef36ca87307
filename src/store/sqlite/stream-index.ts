/**
 * Write-behind maintenance of the per-account stream (account_events).
 *
 * Every accepted event gets one (account_id, seq) row per recipient so a partner can replay by
 * seq. account_events is clustered by (account_id, seq), so inserting an event's rows straight
 * into it dirties one B-tree leaf per recipient account: measured at 100 recipients, a commit
 * wrote ~145 WAL pages (~290 pwrite calls) and took ~1.4 ms, more than the rest of the publish
 * path. That is paid on the event loop, per event, exactly when latency matters.
 *
 * Instead a commit appends the rows of an event with several recipients to account_events_pending (a rowid table without indexes:
 * the rows land on its last page or two) in the same transaction as the event, so they are
 * exactly as durable. `materialize()` later moves everything pending into account_events in
 * one transaction, sorted, so each account's leaf is written once per batch rather than once
 * per event (≈3× less CPU per event at 100 recipients, see docs/performance.md). It runs
 *  - once a batching window has passed, right after the next commit (afterCommit), or on a
 *    fallback timer when no commit follows,
 *  - before pruning, at open (rows left by a crash are simply moved then) and at close.
 * Reads do not wait for it: they read account_events and the staged rows together in one
 * statement (the staged rows are one window's worth). An earlier version moved the rows before
 * every read instead, which under continuous replays (slow consumers resuming) turned into
 * many small moves and gave the batching back.
 * Whether anything is staged is asked of the database (MAX(rowid) of a small table: its
 * rightmost page, microseconds), which also covers rows staged by another handle on the file.
 */
import type Database from 'better-sqlite3';

/** Default batching window: at 100 events/s that is ~10 events per account leaf write. */
export const MATERIALIZE_INTERVAL_MS = 100;

export class StreamIndex {
  /** When the oldest row this handle staged (and has not moved yet) was staged; 0 when none. */
  private oldestStagedAt = 0;
  private moveScheduled = false;
  /** Moves rows of a quiet store, where no later commit comes to trigger afterCommit(). */
  private fallback: NodeJS.Timeout | null = null;
  private readonly direct: Database.Statement;
  private readonly stageMany: Database.Statement;
  private readonly move: () => number;
  private readonly last: Database.Statement;

  constructor(
    db: Database.Database,
    private readonly intervalMs = MATERIALIZE_INTERVAL_MS,
    /** False once the storage failed (database.ts fail()): then nothing more is moved. */
    private readonly writable: () => boolean = () => true,
  ) {
    this.direct = db.prepare('INSERT INTO account_events (account_id, seq, event_id, created_at_ms) VALUES (?, ?, ?, ?)');
    // The seqs were just bumped in the same transaction: read them back from accounts.
    this.stageMany = db.prepare(
      `INSERT INTO account_events_pending (account_id, seq, event_id, created_at_ms)
       SELECT account_id, last_seq, ?, ? FROM accounts WHERE account_id IN (SELECT value FROM json_each(?))`,
    );
    // Inside the IMMEDIATE transaction nobody can stage more, so "all rows" is exact.
    const copy = db.prepare(
      `INSERT INTO account_events (account_id, seq, event_id, created_at_ms)
       SELECT account_id, seq, event_id, created_at_ms FROM account_events_pending ORDER BY account_id, seq`,
    );
    const clear = db.prepare('DELETE FROM account_events_pending');
    this.last = db.prepare('SELECT MAX(rowid) FROM account_events_pending').pluck();
    const tx = db.transaction((): number => {
      const moved = copy.run().changes;
      clear.run();
      return moved;
    });
    this.move = () => tx.immediate();
  }

  /**
   * The row of an event for ONE account goes straight into account_events (inside the caller's
   * append transaction): it dirties that account's rightmost leaf, one page, which is what
   * staging it would cost, minus the later move. Staging pays off only when an event dirties
   * many accounts' leaves; for a single account at a low rate it doubled the commits (each event
   * staged, then moved alone: ≈ 15 WAL writes and 11 lock calls per event instead of ≈ 8 and 6).
   */
  add(accountId: string, seq: number, eventId: number, createdAtMs: number): void {
    this.direct.run(accountId, seq, eventId, createdAtMs);
  }

  /** Stage the rows of every account in `accountIdsJson` at its current last_seq. */
  addMany(accountIdsJson: string, eventId: number, createdAtMs: number): void {
    this.staged();
    this.stageMany.run(eventId, createdAtMs, accountIdsJson);
  }

  /**
   * The store calls this after a commit's results were handed out, i.e. after that commit's
   * fan-out was queued. Once the batching window is over, the move runs in the next loop turn:
   * right after a burst of work rather than at a random point of a timer, so on a steady
   * stream it lands in the idle gap between publishes instead of in front of one.
   */
  afterCommit(): void {
    if (this.moveScheduled || this.oldestStagedAt === 0) return;
    if (performance.now() - this.oldestStagedAt < this.intervalMs) return;
    this.moveScheduled = true;
    setImmediate(this.scheduledMove);
  }

  /**
   * Move every pending row into account_events; a no-op when nothing is pending. Must not be
   * called inside another transaction (it opens its own).
   */
  materialize(): number {
    if (!this.writable() || this.last.get() === null) {
      this.reset();
      return 0;
    }
    const moved = this.move();
    this.reset();
    return moved;
  }

  private readonly scheduledMove = (): void => {
    this.moveScheduled = false;
    try {
      this.materialize();
    } catch {
      // Busy or closing: the rows stay staged (durable, and read like moved ones); the next
      // commit, prune or close moves them.
    }
  };

  private staged(): void {
    if (this.oldestStagedAt === 0) this.oldestStagedAt = performance.now();
    if (this.fallback) return;
    this.fallback = setTimeout(() => {
      this.fallback = null;
      this.scheduledMove();
    }, this.intervalMs * 2);
    this.fallback.unref();
  }

  private reset(): void {
    this.oldestStagedAt = 0;
    if (this.fallback) clearTimeout(this.fallback);
    this.fallback = null;
  }
}
