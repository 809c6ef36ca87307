/**
 * The event log on the embedded store (the EventLog aggregate): group-committed appends, synced
 * before they are acknowledged, reads that never show an append before then, chunked pruning.
 *
 * Group commit: appends requested during one event-loop turn (concurrent publish requests)
 * share one IMMEDIATE transaction, each in its own savepoint (a request whose events are refused
 * rolls back alone), so the WAL write is paid once per turn. In synced mode the appenders are
 * answered when the WAL sync that covers the commit resolves (wal-sync.ts); meanwhile the loop
 * keeps serving and committing.
 *
 * Durable reads: between its commit and that sync an append is visible to this connection but
 * not yet durable. A reader must not see it then (SPEC §3.1: a client never sees a seq that a
 * crash could take back; the gateway also uses `last_seq` as its fan-out baseline, and a seq
 * counted there before the bus carried it would be skipped). So each commit registers the first
 * seq it gave every account, and readEvents caps both the rows and `last_seq` below the first
 * unsynced seq of the account until the sync resolves. Claims of deliveries wait for the sync
 * in delivery-queue.ts.
 */
import type { AccountEvent, AppendResult, EventLog, NewEvent, ReadEventsQuery, ReadEventsResult } from '../types.js';
import { accountCopy, appendResult, newDeliveries, planAppend, type PlannedEvent } from '../shared/append.js';
import { pruneInChunks, PRUNE_CHUNK_ROWS } from '../shared/prune.js';
import { planRead, takeWithinBudget } from '../shared/read.js';
import { toAccountEvent, type EventRow } from '../shared/rows.js';
import type { SqliteDatabase, Stmt } from './database.js';
import { StreamIndex } from './stream-index.js';

/**
 * Pruning reads only what expired. Left to itself the planner answered the GROUP BY by walking
 * the whole stream in primary-key order (a 10-minute soak: a 2.6 s event-loop stall at the first
 * prune), and the delivery prune walked every succeeded delivery through deliveries_due.
 */
export const PRUNE_MAX_SEQ_SQL =
  'SELECT account_id, MAX(seq) AS max_seq FROM account_events INDEXED BY account_events_created WHERE created_at_ms < ? GROUP BY account_id';
export const PRUNE_SUCCEEDED_DELIVERIES_SQL = `DELETE FROM deliveries WHERE rowid IN (
  SELECT rowid FROM deliveries INDEXED BY deliveries_succeeded_created WHERE status = 'succeeded' AND created_at < ? LIMIT ?)`;

/** Per-account data needed while appending. */
interface Recipient {
  rooms: ReadonlySet<string>;
  webhooks: string[];
}

type GroupOutcome = { ok: true; value: AppendResult[] } | { ok: false; error: unknown };

interface PendingAppend {
  events: NewEvent[];
  resolve: (r: AppendResult[]) => void;
  reject: (e: unknown) => void;
}

export class SqliteEventLog implements EventLog {
  readonly stream: StreamIndex;
  /**
   * Routing view used by every append: each account's accessible rooms and enabled webhook ids,
   * in creation order. Loaded once and dropped by writes to accounts or to endpoints' enabled
   * state (here or, via data_version, by another connection), so a publish does not re-read and
   * re-parse them per event.
   */
  private routing: { accounts: Map<string, Recipient>; all: string[] } | null = null;
  private readonly appendTx: (events: NewEvent[]) => AppendResult[];
  private readonly groupAppendTx: (groups: NewEvent[][]) => GroupOutcome[];
  private pending: PendingAppend[] = [];
  private flushScheduled = false;
  /** Per commit not yet synced: its number and the first seq it gave each account. */
  private unsynced: Array<{ commit: number; firstSeq: Map<string, number> }> = [];
  private readonly s: Record<'eventByMsgId' | 'insertEvent' | 'bumpSeq' | 'bumpSeqMany' | 'insertDelivery' | 'seqState' | 'read' | 'allRooms' | 'allHooks', Stmt>;
  private readonly pruneChunkRows: number;

  constructor(private readonly d: SqliteDatabase) {
    const p = (sql: string) => d.db.prepare(sql);
    this.s = {
      eventByMsgId: p('SELECT recipients FROM events WHERE msg_id = ?').pluck(),
      insertEvent: p('INSERT INTO events (msg_id, msg_type, payload_json, source_id, created_at_ms, recipients) VALUES (?, ?, ?, ?, ?, ?)'),
      bumpSeq: p('UPDATE accounts SET last_seq = last_seq + 1 WHERE account_id = ? RETURNING last_seq').pluck(),
      // For events with many recipients (broadcast): one statement instead of one per account;
      // the account list travels as one JSON array.
      bumpSeqMany: p('UPDATE accounts SET last_seq = last_seq + 1 WHERE account_id IN (SELECT value FROM json_each(?)) RETURNING account_id, last_seq'),
      insertDelivery: p(
        `INSERT INTO deliveries (delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
      ),
      seqState: p('SELECT last_seq, pruned_through FROM accounts WHERE account_id = ?'),
      // The stream is account_events plus the rows still staged (stream-index.ts): one snapshot,
      // so a row is in exactly one of them. SQLite merges the two arms in seq order (the indexed
      // one stops at LIMIT; the staged one is one batch window of rows, scanned). Types as ',A,B,'
      // (or NULL for all) so one statement serves every filter; :below caps unsynced appends.
      read: p(
        `SELECT x.seq, x.created_at_ms, e.msg_id, e.msg_type, e.payload_json, e.source_id
         FROM (SELECT seq, event_id, created_at_ms FROM account_events WHERE account_id = :account AND seq > :after AND seq < :below
               UNION ALL
               SELECT seq, event_id, created_at_ms FROM account_events_pending WHERE account_id = :account AND seq > :after AND seq < :below) x
         JOIN events e ON e.event_id = x.event_id
         WHERE :types IS NULL OR instr(:types, ',' || e.msg_type || ',') > 0
         ORDER BY x.seq LIMIT :limit`,
      ),
      allRooms: p('SELECT account_id, rooms FROM accounts ORDER BY rowid'),
      allHooks: p('SELECT account_id, webhook_id FROM webhooks WHERE enabled = 1 ORDER BY rowid'),
    };
    this.stream = new StreamIndex(d.db, d.opts.streamBatchMs, () => d.fatal === null);
    this.pruneChunkRows = Math.max(1, Math.floor(d.opts.pruneChunkRows ?? PRUNE_CHUNK_ROWS));
    const tx = d.db.transaction((events: NewEvent[]) => this.appendInTx(events));
    this.appendTx = (events) => tx.immediate(events);
    // Inside a transaction, calling `tx` again runs it as a SAVEPOINT.
    const group = d.db.transaction((groups: NewEvent[][]) =>
      groups.map((events): GroupOutcome => {
        try {
          return { ok: true, value: tx(events) };
        } catch (error) {
          return { ok: false, error };
        }
      }),
    );
    this.groupAppendTx = (groups) => group.immediate(groups);
    d.onExternalWrite(() => this.dropRouting());
  }

  dropRouting(): void {
    this.routing = null;
  }

  // ---------------------------------------------------------------- append

  appendEvents(events: NewEvent[]): Promise<AppendResult[]> {
    try {
      this.d.checkWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ events, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Commit what is queued now (close() calls it so accepted work is committed, not dropped). */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    if (!this.d.ready) {
      for (const item of batch) item.reject(new Error('Store is closed'));
      return;
    }
    let outcomes: GroupOutcome[];
    try {
      if (batch.length === 1) {
        try {
          outcomes = [{ ok: true, value: this.appendTx(batch[0].events) }];
        } catch (error) {
          outcomes = [{ ok: false, error }];
        }
      } else {
        outcomes = this.groupAppendTx(batch.map((item) => item.events));
      }
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    this.acknowledge(batch, outcomes);
    this.stream.afterCommit();
  };

  /** Answer the appenders of one commit: at once (relaxed), or once the WAL sync covering it resolved. */
  private acknowledge(batch: PendingAppend[], outcomes: GroupOutcome[]): void {
    const settle = () => outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.error)));
    const wal = this.d.wal;
    if (!wal) return settle();
    const firstSeq = new Map<string, number>();
    for (const o of outcomes) {
      if (!o.ok) continue;
      for (const r of o.value) for (const e of r.events) if (!firstSeq.has(e.account_id)) firstSeq.set(e.account_id, e.seq);
    }
    const commit = wal.committed();
    const entry = { commit, firstSeq };
    if (firstSeq.size > 0) this.unsynced.push(entry);
    wal.durable(commit).then(
      () => {
        this.unsynced = this.unsynced.filter((u) => u.commit > wal.syncedThrough);
        settle();
      },
      (err: unknown) => {
        // Durability unknown: the rows stay hidden from readers (entry kept) and nobody is told they were accepted.
        for (const item of batch) item.reject(err);
      },
    );
  }

  /** Reads show nothing at or above the first seq of an account's unsynced commits. */
  private firstUnsyncedSeq(accountId: string): number {
    let below = Number.MAX_SAFE_INTEGER;
    for (const u of this.unsynced) {
      const s = u.firstSeq.get(accountId);
      if (s !== undefined && s < below) below = s;
    }
    return below;
  }

  private routingView(): { accounts: Map<string, Recipient>; all: string[] } {
    this.d.noticeExternalWrites();
    if (this.routing) return this.routing;
    const accounts = new Map<string, Recipient>();
    for (const row of this.s.allRooms.all() as { account_id: string; rooms: string }[]) {
      accounts.set(row.account_id, { rooms: new Set(JSON.parse(row.rooms) as string[]), webhooks: [] });
    }
    for (const row of this.s.allHooks.all() as { account_id: string; webhook_id: string }[]) accounts.get(row.account_id)?.webhooks.push(row.webhook_id);
    this.routing = { accounts, all: [...accounts.keys()] };
    return this.routing;
  }

  /** Runs inside one IMMEDIATE transaction (or savepoint): plan (validate everything) first, then write. */
  private appendInTx(events: NewEvent[]): AppendResult[] {
    const s = this.s;
    const routing = this.routingView();
    const plans = planAppend(events, {
      storedRecipients: (msgId) => s.eventByMsgId.get(msgId) as number | undefined,
      rooms: (id) => routing.accounts.get(id)?.rooms,
      allAccounts: () => routing.all,
    });
    return plans.map((plan) => (plan.duplicateOf ? appendResult(plan, [], 0) : this.write(plan, routing.accounts)));
  }

  private write(plan: PlannedEvent, accounts: Map<string, Recipient>): AppendResult {
    const { event } = plan;
    const s = this.s;
    const eventId = Number(s.insertEvent.run(event.msg_id, event.msg_type, event.payload_json, event.source_id, event.created_at_ms, plan.recipients.length).lastInsertRowid);
    const copies: AccountEvent[] = [];
    if (plan.recipients.length === 1) {
      const accountId = plan.recipients[0];
      const seq = s.bumpSeq.get(accountId) as number;
      this.stream.add(accountId, seq, eventId, event.created_at_ms);
      copies.push(accountCopy(event, accountId, seq));
    } else if (plan.recipients.length > 1) {
      const ids = JSON.stringify(plan.recipients);
      const seqOf = new Map<string, number>();
      for (const row of s.bumpSeqMany.all(ids) as { account_id: string; last_seq: number }[]) seqOf.set(row.account_id, row.last_seq);
      this.stream.addMany(ids, eventId, event.created_at_ms);
      for (const accountId of plan.recipients) copies.push(accountCopy(event, accountId, seqOf.get(accountId)!));
    }
    const deliveries = newDeliveries(eventId, copies, (id) => accounts.get(id)!.webhooks);
    for (const d of deliveries) s.insertDelivery.run(d.delivery_id, d.webhook_id, d.account_id, d.event_id, d.msg_id, d.msg_type, d.seq, d.created_at, d.created_at);
    return appendResult(plan, copies, deliveries.length);
  }

  // ---------------------------------------------------------------- read

  async readEvents(query: ReadEventsQuery): Promise<ReadEventsResult> {
    this.d.check();
    const state = this.s.seqState.get(query.account_id) as { last_seq: number; pruned_through: number } | undefined;
    if (!state) return { events: [], pruned_through: 0, last_seq: 0 };
    const plan = planRead(query);
    const below = this.firstUnsyncedSeq(plan.account_id);
    const last_seq = Math.min(state.last_seq, below - 1);
    if (plan.countersOnly) return { events: [], pruned_through: state.pruned_through, last_seq };
    const types = plan.types === null ? null : `,${plan.types.join(',')},`;
    // Rows are stepped lazily, so a byte budget stops reading (and holding payloads) early.
    const rows = this.s.read.iterate({ account: plan.account_id, after: plan.after, below, limit: plan.limit, types }) as Iterable<EventRow>;
    const events = takeWithinBudget(rows, (r) => r.payload_json, plan.maxBytes).map((r) => toAccountEvent(plan.account_id, r));
    return { events, pruned_through: state.pruned_through, last_seq };
  }

  // ---------------------------------------------------------------- prune

  async pruneEvents(olderThanMs: number): Promise<number> {
    this.d.checkWritable();
    this.stream.materialize();
    const db = this.d.db;
    const chunkEnd = db.prepare('SELECT seq FROM account_events WHERE account_id = ? AND seq <= ? ORDER BY seq LIMIT 1 OFFSET ?').pluck();
    const setPruned = db.prepare('UPDATE accounts SET pruned_through = MAX(pruned_through, ?) WHERE account_id = ?');
    const deleteThrough = db.prepare('DELETE FROM account_events WHERE account_id = ? AND seq <= ?');
    const pruneAccount = db.transaction((accountId: string, through: number, chunk: number): number => {
      const end = (chunkEnd.get(accountId, through, chunk - 1) as number | undefined) ?? through;
      setPruned.run(end, accountId);
      return deleteThrough.run(accountId, end).changes;
    });
    // Account-event rows share their event's created_at_ms, so once every row older than the
    // cutoff is gone no stream references an older event; only unfinished deliveries can still need one.
    const pruneEventsStmt = db.prepare(
      `DELETE FROM events WHERE event_id IN (
         SELECT event_id FROM events WHERE created_at_ms < ?
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.event_id AND d.status <> 'succeeded')
         LIMIT ?)`,
    );
    return pruneInChunks(
      {
        expired: async (cutoff) => db.prepare(PRUNE_MAX_SEQ_SQL).all(cutoff) as Array<{ account_id: string; max_seq: number }>,
        pruneAccount: async (id, through, chunk) => pruneAccount.immediate(id, through, chunk),
        pruneSucceededDeliveries: async (cutoff, chunk) => db.prepare(PRUNE_SUCCEEDED_DELIVERIES_SQL).run(cutoff, chunk).changes,
        pruneEvents: async (cutoff, chunk) => pruneEventsStmt.run(cutoff, chunk).changes,
        alive: () => this.d.ready && this.d.fatal === null,
      },
      olderThanMs,
      this.pruneChunkRows,
    );
  }

  /** Never called here: a commit is in-process, and a sync failure is fatal (database.ts). */
  onLateCommit(_listener: (results: AppendResult[]) => void): void {}

  /** Before close: commit what is queued. */
  drain(): void {
    if (this.pending.length > 0) this.flush();
  }
}
