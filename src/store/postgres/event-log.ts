/**
 * The event log on PostgreSQL (the EventLog aggregate). Semantics are the shared ones
 * (shared/append.ts, read.ts, prune.ts); what PostgreSQL adds is how they hold with several
 * nodes writing at once:
 *
 * - Per-account seq: the recipient account rows are locked (`SELECT … ORDER BY account_id FOR
 *   UPDATE`, a fixed order so two batches never deadlock on each other) and `last_seq` is bumped
 *   in the same transaction as the event rows. The lock is held until COMMIT, so seq follows the
 *   order in which publishes were accepted for that account, across nodes.
 * - Idempotency: `events.msg_id` is UNIQUE. A msg_id already stored is a duplicate (the plan);
 *   two nodes inserting the same new msg_id at once are resolved by `ON CONFLICT DO NOTHING`: the
 *   loser waits for the winner's commit, gets no row back and answers "duplicate" with the
 *   winner's recipients, before any seq is consumed.
 * - Throughput: a batch costs a fixed number of round trips whatever its size (multi-row
 *   INSERT … SELECT FROM unnest(…) for events, account_events and deliveries).
 * - Durability: COMMIT returns once the WAL is flushed (synchronous_commit=on, database.ts), and
 *   readers of other sessions only see committed rows, so nothing is shown before it is durable.
 * - Pruning: one node at a time (a session advisory lock), in chunks, each its own transaction.
 * - A COMMIT whose answer never came (the call failed: 503) is resolved afterwards: if it did
 *   commit, the late-commit listeners get its results to fan out (in-doubt.ts).
 */
import type pg from 'pg';
import type { AccountEvent, AppendResult, EventLog, NewEvent, ReadEventsQuery, ReadEventsResult } from '../types.js';
import { accountCopy, accountsToLock, appendResult, newDeliveries, planAppend, settleRecipients, type PlannedEvent } from '../shared/append.js';
import { pruneInChunks, PRUNE_CHUNK_ROWS } from '../shared/prune.js';
import { planRead, takeWithinBudget } from '../shared/read.js';
import { toAccountEvent, type EventRow } from '../shared/rows.js';
import { CommitInDoubtError, oneOn, type PgDatabase } from './database.js';
import { InDoubtAppends, type LateCommitListener } from './in-doubt.js';
import { PRUNE_LOCK_KEY } from './schema.js';

export class PgEventLog implements EventLog {
  private readonly pruneChunkRows: number;
  readonly inDoubt: InDoubtAppends;

  constructor(private readonly d: PgDatabase) {
    this.pruneChunkRows = Math.max(1, Math.floor(d.opts.pruneChunkRows ?? PRUNE_CHUNK_ROWS));
    this.inDoubt = new InDoubtAppends(d, d.opts.logger);
  }

  async appendEvents(events: NewEvent[]): Promise<AppendResult[]> {
    this.d.check();
    if (events.length === 0) return [];
    // What the last attempt would have answered, and its transaction id (for an in-doubt COMMIT).
    const attempt: { xid: string | null; results: AppendResult[] } = { xid: null, results: [] };
    try {
      return await this.d.tx(async (c) => {
        attempt.xid = null;
        attempt.results = await this.appendInTx(c, events, attempt);
        return attempt.results;
      });
    } catch (err) {
      if (err instanceof CommitInDoubtError && attempt.xid !== null) this.inDoubt.add(attempt.xid, err.backendPid, attempt.results);
      throw err;
    }
  }

  onLateCommit(listener: LateCommitListener): void {
    this.inDoubt.onLateCommit(listener);
  }

  /**
   * One transaction, a fixed number of round trips:
   *   1. stored msg_ids (duplicates) and the rooms of the addressed accounts → plan, or throw
   *   2. INSERT events … ON CONFLICT DO NOTHING (a msg_id another node committed meanwhile → duplicate)
   *   3. lock recipient (and named) accounts in account_id order; accounts deleted since step 1
   *      leave broadcasts and make a naming event UNKNOWN_ACCOUNT (shared settleRecipients); bump last_seq
   *   4. INSERT account_events, read enabled webhooks, INSERT deliveries
   */
  private async appendInTx(c: pg.PoolClient, events: NewEvent[], attempt: { xid: string | null }): Promise<AppendResult[]> {
    // ---- 1. what the plan needs, fetched in bulk
    const stored = new Map<string, number>();
    const msgIds = [...new Set(events.map((e) => e.msg_id))];
    for (const r of (await c.query<{ msg_id: string; recipients: number }>('SELECT msg_id, recipients FROM events WHERE msg_id = ANY($1::text[])', [msgIds])).rows) {
      stored.set(r.msg_id, r.recipients);
    }
    const rooms = new Map<string, ReadonlySet<string>>();
    let all: string[] = [];
    if (events.some((e) => e.target === 'broadcast' && !stored.has(e.msg_id))) {
      const { rows } = await c.query<{ account_id: string; rooms: string[] }>('SELECT account_id, rooms FROM accounts ORDER BY row_no');
      all = rows.map((r) => (rooms.set(r.account_id, new Set(r.rooms)), r.account_id));
    }
    const addressed = new Set<string>();
    for (const e of events) if (e.target !== 'broadcast' && !stored.has(e.msg_id)) for (const id of e.target) if (!rooms.has(id)) addressed.add(id);
    if (addressed.size > 0) {
      const { rows } = await c.query<{ account_id: string; rooms: string[] }>('SELECT account_id, rooms FROM accounts WHERE account_id = ANY($1::text[])', [[...addressed]]);
      for (const r of rows) rooms.set(r.account_id, new Set(r.rooms));
    }
    const plans = planAppend(events, { storedRecipients: (id) => stored.get(id), rooms: (id) => rooms.get(id), allAccounts: () => all });

    // ---- 2. event rows (the idempotency race is resolved here, before any seq is consumed)
    const fresh = plans.filter((p) => p.duplicateOf === null);
    const eventIds = new Map<string, number>();
    if (fresh.length > 0) {
      // The transaction id comes back with the rows (in-doubt.ts resolves a COMMIT left unanswered).
      const { rows } = await c.query<{ event_id: number; msg_id: string; xid: string }>(
        `INSERT INTO events (msg_id, msg_type, payload_json, source_id, created_at_ms, recipients)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[])
         ON CONFLICT (msg_id) DO NOTHING RETURNING event_id, msg_id, pg_current_xact_id()::text AS xid`,
        [
          fresh.map((p) => p.event.msg_id),
          fresh.map((p) => p.event.msg_type),
          fresh.map((p) => p.event.payload_json),
          fresh.map((p) => p.event.source_id),
          fresh.map((p) => p.event.created_at_ms),
          fresh.map((p) => p.recipients.length),
        ],
      );
      for (const r of rows) eventIds.set(r.msg_id, r.event_id);
      if (rows.length > 0) attempt.xid = rows[0].xid;
      const raced = fresh.filter((p) => !eventIds.has(p.event.msg_id));
      if (raced.length > 0) {
        // Another transaction committed these msg_ids after step 1: they are duplicates, and every
        // occurrence of them in this batch answers the winner's result.
        const won = await c.query<{ msg_id: string; recipients: number }>('SELECT msg_id, recipients FROM events WHERE msg_id = ANY($1::text[])', [
          raced.map((p) => p.event.msg_id),
        ]);
        const byId = new Map(won.rows.map((r) => [r.msg_id, r.recipients]));
        for (const p of plans) {
          const winner = byId.get(p.event.msg_id);
          if (winner !== undefined) p.duplicateOf = { recipients: winner };
        }
      }
    }

    // ---- 3. per-account seq under row locks taken in a fixed order
    const live = plans.filter((p) => p.duplicateOf === null);
    const nextSeq = new Map<string, number>();
    const toLock = accountsToLock(live);
    if (toLock.length > 0) {
      const locked = await c.query<{ account_id: string; last_seq: number }>('SELECT account_id, last_seq FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE', [
        toLock,
      ]);
      for (const r of locked.rows) nextSeq.set(r.account_id, r.last_seq + 1);
      if (locked.rows.length !== toLock.length) {
        // Accounts deleted since the plan's snapshot: broadcasts drop them, named ones are unknown (shared/append.ts).
        const changed = settleRecipients(live, (id) => nextSeq.has(id));
        if (changed.length > 0) {
          await c.query('UPDATE events e SET recipients = v.n FROM unnest($1::bigint[], $2::int[]) AS v(id, n) WHERE e.event_id = v.id', [
            changed.map((p) => eventIds.get(p.event.msg_id)!),
            changed.map((p) => p.recipients.length),
          ]);
        }
      }
    }
    const perAccount = new Map<string, number>();
    for (const p of live) for (const id of p.recipients) perAccount.set(id, (perAccount.get(id) ?? 0) + 1);
    if (perAccount.size > 0) {
      const ids = [...perAccount.keys()];
      await c.query('UPDATE accounts a SET last_seq = a.last_seq + v.n FROM unnest($1::text[], $2::bigint[]) AS v(id, n) WHERE a.account_id = v.id', [
        ids,
        ids.map((id) => perAccount.get(id)!),
      ]);
    }

    // ---- 4. stream rows and deliveries
    const copiesOf = new Map<PlannedEvent, AccountEvent[]>();
    const stream = { account: [] as string[], seq: [] as number[], event: [] as number[], at: [] as number[] };
    for (const p of live) {
      const eventId = eventIds.get(p.event.msg_id)!;
      const copies = p.recipients.map((accountId) => {
        const seq = nextSeq.get(accountId)!;
        nextSeq.set(accountId, seq + 1);
        stream.account.push(accountId);
        stream.seq.push(seq);
        stream.event.push(eventId);
        stream.at.push(p.event.created_at_ms);
        return accountCopy(p.event, accountId, seq);
      });
      copiesOf.set(p, copies);
    }
    const deliveriesOf = new Map<PlannedEvent, number>();
    if (stream.account.length > 0) {
      await c.query('INSERT INTO account_events (account_id, seq, event_id, created_at_ms) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])', [
        stream.account,
        stream.seq,
        stream.event,
        stream.at,
      ]);
      const hooks = await c.query<{ webhook_id: string; account_id: string }>('SELECT webhook_id, account_id FROM webhooks WHERE account_id = ANY($1::text[]) AND enabled ORDER BY row_no', [
        [...perAccount.keys()],
      ]);
      const hooksOf = new Map<string, string[]>();
      for (const h of hooks.rows) hooksOf.set(h.account_id, [...(hooksOf.get(h.account_id) ?? []), h.webhook_id]);
      const rows = live.flatMap((p) => {
        const made = newDeliveries(eventIds.get(p.event.msg_id)!, copiesOf.get(p)!, (id) => hooksOf.get(id) ?? []);
        deliveriesOf.set(p, made.length);
        return made;
      });
      if (rows.length > 0) {
        await c.query(
          `INSERT INTO deliveries (delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, created_at)
           SELECT v.id, v.webhook, v.account, v.event, v.msg, v.type, v.seq, 'pending', 0, v.at, v.at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
                AS v(id, webhook, account, event, msg, type, seq, at)`,
          [
            rows.map((r) => r.delivery_id),
            rows.map((r) => r.webhook_id),
            rows.map((r) => r.account_id),
            rows.map((r) => r.event_id),
            rows.map((r) => r.msg_id),
            rows.map((r) => r.msg_type),
            rows.map((r) => r.seq),
            rows.map((r) => r.created_at),
          ],
        );
      }
    }
    return plans.map((p) => appendResult(p, copiesOf.get(p) ?? [], deliveriesOf.get(p) ?? 0));
  }

  async readEvents(query: ReadEventsQuery): Promise<ReadEventsResult> {
    this.d.check();
    const plan = planRead(query);
    // One statement, one snapshot: the stream page and the account's counters agree. With a byte
    // budget, rows whose preceding payload bytes already reach it are not sent (the first always is).
    const { rows } = await this.d.query<EventRow & { last_seq: number; pruned_through: number; seq: number | null }>(
      `SELECT a.last_seq, a.pruned_through, x.seq, x.created_at_ms, x.msg_id, x.msg_type, x.payload_json, x.source_id
       FROM accounts a
       LEFT JOIN LATERAL (
         SELECT * FROM (
           SELECT ae.seq, ae.created_at_ms, e.msg_id, e.msg_type, e.payload_json, e.source_id,
                  SUM(octet_length(e.payload_json)) OVER (ORDER BY ae.seq) - octet_length(e.payload_json) AS bytes_before
           FROM account_events ae JOIN events e ON e.event_id = ae.event_id
           WHERE ae.account_id = a.account_id AND ae.seq > $2 AND ($3::text[] IS NULL OR e.msg_type = ANY($3::text[]))
           ORDER BY ae.seq LIMIT $4
         ) page WHERE $6::bigint IS NULL OR page.bytes_before < $6::bigint
       ) x ON NOT $5
       WHERE a.account_id = $1
       ORDER BY x.seq`,
      [plan.account_id, plan.after, plan.types, plan.limit, plan.countersOnly, plan.maxBytes],
    );
    if (rows.length === 0) return { events: [], pruned_through: 0, last_seq: 0 };
    const page = rows.filter((r) => r.seq !== null) as Array<EventRow & { seq: number }>;
    const events = takeWithinBudget(page, (r) => r.payload_json, plan.maxBytes).map((r) => toAccountEvent(plan.account_id, r));
    return { events, pruned_through: rows[0].pruned_through, last_seq: rows[0].last_seq };
  }

  async pruneEvents(olderThanMs: number): Promise<number> {
    this.d.check();
    return this.d.guard((call) =>
      this.d.session(async (c) => {
        // One pruner at a time across nodes (released with the session if this node dies).
        if (!(await oneOn<{ ok: boolean }>(c, 'SELECT pg_try_advisory_lock($1) AS ok', [PRUNE_LOCK_KEY]))?.ok) return 0;
        const inTx = async <T>(fn: () => Promise<T>): Promise<T> => {
          await c.query('BEGIN');
          try {
            const result = await fn();
            await c.query('COMMIT');
            return result;
          } catch (err) {
            await c.query('ROLLBACK').catch(() => {});
            throw err;
          }
        };
        try {
          return await pruneInChunks(
            {
              expired: async (cutoff) =>
                (
                  await c.query<{ account_id: string; max_seq: number }>(
                    'SELECT account_id, MAX(seq) AS max_seq FROM account_events WHERE created_at_ms < $1 GROUP BY account_id ORDER BY account_id',
                    [cutoff],
                  )
                ).rows,
              pruneAccount: (id, through, chunk) =>
                inTx(async () => {
                  // Same lock as appends take, so seq bumps and pruned_through never interleave badly.
                  await c.query('SELECT 1 FROM accounts WHERE account_id = $1 FOR UPDATE', [id]);
                  const end =
                    (await oneOn<{ seq: number }>(c, 'SELECT seq FROM account_events WHERE account_id = $1 AND seq <= $2 ORDER BY seq LIMIT 1 OFFSET $3', [id, through, chunk - 1]))?.seq ??
                    through;
                  await c.query('UPDATE accounts SET pruned_through = GREATEST(pruned_through, $2) WHERE account_id = $1', [id, end]);
                  return (await c.query('DELETE FROM account_events WHERE account_id = $1 AND seq <= $2', [id, end])).rowCount ?? 0;
                }),
              pruneSucceededDeliveries: async (cutoff, chunk) =>
                (
                  await c.query(
                    `DELETE FROM deliveries WHERE delivery_id IN (
                       SELECT delivery_id FROM deliveries WHERE status = 'succeeded' AND created_at < $1 LIMIT $2)`,
                    [cutoff, chunk],
                  )
                ).rowCount ?? 0,
              pruneEvents: async (cutoff, chunk) =>
                (
                  await c.query(
                    `DELETE FROM events WHERE event_id IN (
                       SELECT event_id FROM events WHERE created_at_ms < $1
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.event_id AND d.status <> 'succeeded')
                       LIMIT $2)`,
                    [cutoff, chunk],
                  )
                ).rowCount ?? 0,
              alive: () => this.d.ready,
            },
            olderThanMs,
            this.pruneChunkRows,
          );
        } finally {
          await c.query('SELECT pg_advisory_unlock($1)', [PRUNE_LOCK_KEY]).catch(() => {});
        }
      }, call),
    );
  }
}
