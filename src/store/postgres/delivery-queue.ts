/**
 * Webhook endpoints and the delivery queue on PostgreSQL (the DeliveryQueue aggregate).
 *
 * - Claims are serialized by a transaction advisory lock (exact per-endpoint in-flight limits
 *   across nodes) and take rows with `FOR UPDATE SKIP LOCKED` (never wait on a row an attempt is
 *   being recorded on). A lease whose holder died expires and the delivery is claimable again.
 * - A claim reads a bounded number of rows whatever the backlog, as on SQLite: first the oldest
 *   due rows, at most CLAIM_SCAN_BUDGET of them (the common case ends there); when those all
 *   belong to endpoints at their in-flight limit (one slow endpoint with a large backlog in
 *   front), one index probe per endpoint with pending deliveries and at most its free slots each
 *   (CLAIM_BY_ENDPOINT_SQL), which picks exactly what an unbounded scan would.
 * - Attempts are recorded in bulk: one transaction and a fixed number of statements per batch
 *   (lock the deliveries, lock the endpoints whose health may change, insert the attempts,
 *   resolve the deliveries, write the endpoints whose health did change). Row locks are taken in
 *   id order, deliveries before endpoints, so two nodes' batches never deadlock.
 */
import {
  type ClaimedDelivery,
  type ClaimOptions,
  type Delivery,
  type DeliveryDetail,
  type DeliveryFilter,
  type DeliveryQueue,
  type RecordAttemptItem,
  type RecordAttemptOutcome,
  type WebhookEndpoint,
  type WebhookPatch,
} from '../types.js';
import { rethrowConstraint } from '../shared/accounts.js';
import { deliveryConditions, prepareAttempts, retryRange } from '../shared/deliveries.js';
import { uuidv7 } from '../ids.js';
import {
  ATTEMPT_COLS,
  DELIVERY_JOIN_SELECT,
  DELIVERY_LIST_SELECT,
  toClaimed,
  toDelivery,
  toDeliveryDetail,
  toWebhook,
  WEBHOOK_COLS,
  type AttemptRow,
  type DeliveryJoinRow,
  type DeliveryRow,
  type WebhookRow,
} from '../shared/rows.js';
import { applyEndpointEffect, applyWebhookPatch, newWebhookEndpoint, sameHealth, type EndpointHealth } from '../shared/webhooks.js';
import { PG_CONSTRAINTS, type PgDatabase } from './database.js';
import { CLAIM_LOCK_KEY } from './schema.js';

/** Due rows read by a claim before it switches to per-endpoint probes (at least the claim's limit). */
export const CLAIM_SCAN_BUDGET = 256;

/** Live leases per endpoint (the in-flight counts of the per-endpoint limit). */
const INFLIGHT_CTE = `inflight AS (
  SELECT webhook_id, COUNT(*) AS n FROM deliveries WHERE lease_owner IS NOT NULL AND lease_until > $1 GROUP BY webhook_id)`;

/**
 * The oldest due, unleased deliveries ($1 = now), at most $2 of them, through the partial index
 * deliveries_due in (next_attempt_at, seq) order, with their endpoint's enabled flag and live
 * leases. The claim picks from these in order.
 */
export const CLAIM_HEAD_SQL = `WITH ${INFLIGHT_CTE}, head AS (
  SELECT d.delivery_id, d.webhook_id, d.next_attempt_at, d.seq FROM deliveries d
  WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.lease_owner IS NULL OR d.lease_until <= $1)
  ORDER BY d.next_attempt_at, d.seq LIMIT $2)
SELECT h.delivery_id, h.webhook_id, h.next_attempt_at, h.seq, w.enabled, COALESCE(i.n, 0)::int AS inflight
FROM head h JOIN webhooks w ON w.webhook_id = h.webhook_id LEFT JOIN inflight i ON i.webhook_id = h.webhook_id
ORDER BY h.next_attempt_at, h.seq, h.delivery_id`;

/**
 * Per endpoint ($1 = now, $2 = per-endpoint limit, $3 = claim limit): a loose index scan over
 * deliveries_pending_endpoint visits each endpoint with pending deliveries once, and reads at most
 * its free slots of due, unleased rows in its (next_attempt_at, seq) order (seq is unique within
 * an endpoint); the first $3 of those, oldest due first.
 */
export const CLAIM_BY_ENDPOINT_SQL = `WITH RECURSIVE ep(id) AS (
  SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending')
  UNION ALL
  SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending' AND webhook_id > ep.id) FROM ep WHERE ep.id IS NOT NULL
), ${INFLIGHT_CTE}
SELECT x.delivery_id FROM ep
JOIN webhooks w ON w.webhook_id = ep.id AND w.enabled
LEFT JOIN inflight i ON i.webhook_id = ep.id
CROSS JOIN LATERAL (
  SELECT d.delivery_id, d.next_attempt_at, d.seq FROM deliveries d
  WHERE d.status = 'pending' AND d.webhook_id = ep.id AND d.next_attempt_at <= $1 AND (d.lease_owner IS NULL OR d.lease_until <= $1)
  ORDER BY d.next_attempt_at, d.seq LIMIT GREATEST(0, LEAST($3, $2 - COALESCE(i.n, 0)))
) x
ORDER BY x.next_attempt_at, x.seq, x.delivery_id LIMIT $3`;

export class PgDeliveryQueue implements DeliveryQueue {
  constructor(private readonly d: PgDatabase) {}

  // ---------------------------------------------------------------- endpoints

  async createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint> {
    this.d.check();
    const w = newWebhookEndpoint(accountId, input);
    try {
      await this.d.query(
        `INSERT INTO webhooks (webhook_id, account_id, url, secret, enabled, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, TRUE, $5, $6, $7)`,
        [w.webhook_id, accountId, w.url, w.secret, w.description, w.created_at, w.updated_at],
      );
    } catch (err) {
      rethrowConstraint(err, PG_CONSTRAINTS, { accountId });
    }
    return w;
  }

  async listWebhooks(accountId: string): Promise<WebhookEndpoint[]> {
    const { rows } = await this.d.query<WebhookRow>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE account_id = $1 ORDER BY row_no`, [accountId]);
    return rows.map(toWebhook);
  }

  async getWebhook(webhookId: string): Promise<WebhookEndpoint | null> {
    const row = await this.d.one<WebhookRow>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE webhook_id = $1`, [webhookId]);
    return row ? toWebhook(row) : null;
  }

  async updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null> {
    this.d.check();
    return this.d.tx(async (c) => {
      const { rows } = await c.query<WebhookRow>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE webhook_id = $1 FOR UPDATE`, [webhookId]);
      if (rows.length === 0) return null;
      const next = applyWebhookPatch(toWebhook(rows[0]), patch);
      await c.query(
        `UPDATE webhooks SET url = $1, secret = $2, previous_secret = $3, previous_secret_expires_at = $4, enabled = $5,
         disabled_reason = $6, description = $7, failing_since = $8, updated_at = $9 WHERE webhook_id = $10`,
        [next.url, next.secret, next.previous_secret, next.previous_secret_expires_at, next.enabled, next.disabled_reason, next.description, next.failing_since, next.updated_at, webhookId],
      );
      return next;
    });
  }

  async deleteWebhook(webhookId: string): Promise<boolean> {
    return ((await this.d.query('DELETE FROM webhooks WHERE webhook_id = $1', [webhookId])).rowCount ?? 0) > 0;
  }

  // ---------------------------------------------------------------- deliveries (admin)

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    const args: unknown[] = [];
    const { where, limit } = deliveryConditions(filter, (v) => `$${args.push(v)}`);
    args.push(limit);
    const { rows } = await this.d.query<DeliveryRow>(`${DELIVERY_LIST_SELECT} ${where} ORDER BY d.created_at DESC, d.row_no DESC LIMIT $${args.length}`, args);
    return rows.map(toDelivery);
  }

  async getDelivery(deliveryId: string): Promise<DeliveryDetail | null> {
    const row = await this.d.one<DeliveryJoinRow>(`${DELIVERY_JOIN_SELECT} WHERE d.delivery_id = $1`, [deliveryId]);
    if (!row) return null;
    const { rows } = await this.d.query<AttemptRow>(`SELECT ${ATTEMPT_COLS} FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt_no`, [deliveryId]);
    return toDeliveryDetail(row, rows);
  }

  // ---------------------------------------------------------------- deliveries (dispatcher)

  async claimDueDeliveries(opts: ClaimOptions): Promise<ClaimedDelivery[]> {
    this.d.check();
    const limit = Math.floor(opts.limit);
    const perEndpoint = Math.floor(opts.perEndpointLimit);
    if (limit <= 0 || perEndpoint <= 0) return [];
    const now = opts.now.getTime();
    const leaseUntil = now + Math.max(0, opts.leaseMs);
    return this.d.tx(async (c) => {
      // Claims are short; serializing them makes per-endpoint in-flight counts exact across nodes.
      await c.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK_KEY]);
      // Oldest due first, seq order within an endpoint, at most perEndpoint in flight per endpoint
      // (live leases count), enabled endpoints only; a bounded read (see the top of this file).
      const budget = Math.max(CLAIM_SCAN_BUDGET, limit);
      const { rows: head } = await c.query<{ delivery_id: string; webhook_id: string; enabled: boolean; inflight: number }>(CLAIM_HEAD_SQL, [now, budget]);
      let chosen: string[] = [];
      const taken = new Map<string, number>();
      for (const r of head) {
        const used = r.inflight + (taken.get(r.webhook_id) ?? 0);
        if (!r.enabled || used >= perEndpoint) continue;
        taken.set(r.webhook_id, (taken.get(r.webhook_id) ?? 0) + 1);
        chosen.push(r.delivery_id);
        if (chosen.length >= limit) break;
      }
      if (chosen.length < limit && head.length >= budget) {
        // A full head that did not fill the claim: endpoints at their limit crowd the front.
        chosen = (await c.query<{ delivery_id: string }>(CLAIM_BY_ENDPOINT_SQL, [now, perEndpoint, limit])).rows.map((r) => r.delivery_id);
      }
      if (chosen.length === 0) return [];
      // SKIP LOCKED: never wait on a row whose attempt is being recorded.
      const { rows: picked } = await c.query<{ delivery_id: string }>(
        `SELECT d.delivery_id FROM deliveries d WHERE d.delivery_id = ANY($1::text[])
           AND d.status = 'pending' AND (d.lease_owner IS NULL OR d.lease_until <= $2)
         ORDER BY d.next_attempt_at, d.seq, d.delivery_id
         FOR UPDATE SKIP LOCKED`,
        [chosen, now],
      );
      if (picked.length === 0) return [];
      const { rows } = await c.query<DeliveryJoinRow>(`${DELIVERY_JOIN_SELECT} WHERE d.delivery_id = ANY($1::text[]) ORDER BY d.next_attempt_at, d.seq, d.delivery_id`, [
        picked.map((r) => r.delivery_id),
      ]);
      const orphans: string[] = [];
      const out: ClaimedDelivery[] = [];
      for (const row of rows) {
        const claimed = toClaimed(row);
        if (claimed === null) orphans.push(row.delivery_id);
        else out.push(claimed);
      }
      if (orphans.length > 0) {
        // Cannot happen through this store's own pruning; guard so a lost event never blocks the queue.
        await c.query(
          `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, last_error = 'event no longer stored', completed_at = $2
           WHERE delivery_id = ANY($1::text[])`,
          [orphans, now],
        );
      }
      if (out.length > 0) {
        await c.query('UPDATE deliveries SET lease_owner = $2, lease_until = $3 WHERE delivery_id = ANY($1::text[])', [out.map((x) => x.delivery.delivery_id), opts.owner, leaseUntil]);
      }
      return out;
    });
  }

  async recordAttempts(items: RecordAttemptItem[]): Promise<RecordAttemptOutcome[]> {
    this.d.check();
    if (items.length === 0) return [];
    const prepared = prepareAttempts(items); // a bad item rejects the call before anything is written
    return this.d.tx(async (c) => {
      const completedAt = Date.now();
      const nowIso = new Date(completedAt).toISOString();
      const ids = [...new Set(prepared.map((p) => p.deliveryId))].sort();
      const { rows: locked } = await c.query<{ delivery_id: string; lease_owner: string | null; attempt_count: number; webhook_id: string }>(
        'SELECT delivery_id, lease_owner, attempt_count, webhook_id FROM deliveries WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id FOR UPDATE',
        [ids],
      );
      const lease = new Map(locked.map((r) => [r.delivery_id, r]));
      const hooks = [...new Set(prepared.filter((p) => p.effect && lease.get(p.deliveryId)?.lease_owner === p.owner).map((p) => lease.get(p.deliveryId)!.webhook_id))].sort();
      const health = new Map<string, { stored: EndpointHealth; next: EndpointHealth }>();
      if (hooks.length > 0) {
        const { rows } = await c.query<EndpointHealth & { webhook_id: string }>(
          'SELECT webhook_id, enabled, disabled_reason, failing_since, updated_at FROM webhooks WHERE webhook_id = ANY($1::text[]) ORDER BY webhook_id FOR UPDATE',
          [hooks],
        );
        for (const { webhook_id, ...stored } of rows) health.set(webhook_id, { stored, next: stored });
      }

      const attempts = { id: [] as string[], delivery: [] as string[], no: [] as number[], at: [] as string[], code: [] as (number | null)[], ms: [] as number[], error: [] as (string | null)[], outcome: [] as string[], excerpt: [] as (string | null)[] };
      const resolved = { id: [] as string[], status: [] as string[], next: [] as (number | null)[], code: [] as (number | null)[], error: [] as (string | null)[], completed: [] as (number | null)[] };
      const out = prepared.map((it): RecordAttemptOutcome => {
        // Only the current lease owner records; recording releases the lease, so a delivery listed twice records once.
        const cur = lease.get(it.deliveryId);
        if (!cur || cur.lease_owner !== it.owner) return { recorded: false, disabled: null };
        cur.lease_owner = null;
        const a = it.attempt;
        attempts.id.push(uuidv7());
        attempts.delivery.push(it.deliveryId);
        attempts.no.push(cur.attempt_count + 1);
        attempts.at.push(it.attemptedAt);
        attempts.code.push(a.status_code);
        attempts.ms.push(a.latency_ms);
        attempts.error.push(a.error);
        attempts.outcome.push(a.outcome);
        attempts.excerpt.push(it.excerpt);
        resolved.id.push(it.deliveryId);
        resolved.status.push(it.resolution.status);
        resolved.next.push(it.nextAt);
        resolved.code.push(a.status_code);
        resolved.error.push(a.error);
        resolved.completed.push(it.resolution.status === 'pending' ? null : completedAt);
        const h = health.get(cur.webhook_id);
        if (!h) return { recorded: true, disabled: null };
        const { next, disabled } = applyEndpointEffect(h.next, it.effect, nowIso);
        h.next = next;
        return { recorded: true, disabled };
      });
      if (attempts.id.length > 0) {
        await c.query(
          `INSERT INTO delivery_attempts (attempt_id, delivery_id, attempt_no, attempted_at, status_code, latency_ms, error, outcome, response_excerpt)
           SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::float8[], $7::text[], $8::text[], $9::text[])`,
          [attempts.id, attempts.delivery, attempts.no, attempts.at, attempts.code, attempts.ms, attempts.error, attempts.outcome, attempts.excerpt],
        );
        await c.query(
          `UPDATE deliveries d SET attempt_count = d.attempt_count + 1, status = v.status, next_attempt_at = v.next, last_status_code = v.code,
             last_error = v.error, completed_at = v.completed, lease_owner = NULL, lease_until = NULL
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::text[], $6::bigint[]) AS v(id, status, next, code, error, completed)
           WHERE d.delivery_id = v.id`,
          [resolved.id, resolved.status, resolved.next, resolved.code, resolved.error, resolved.completed],
        );
      }
      const changed = [...health].filter(([, h]) => !sameHealth(h.stored, h.next));
      if (changed.length > 0) {
        await c.query(
          `UPDATE webhooks w SET enabled = v.enabled, disabled_reason = v.reason, failing_since = v.since, updated_at = v.updated
           FROM unnest($1::text[], $2::boolean[], $3::text[], $4::text[], $5::text[]) AS v(id, enabled, reason, since, updated)
           WHERE w.webhook_id = v.id`,
          [changed.map(([id]) => id), changed.map(([, h]) => h.next.enabled), changed.map(([, h]) => h.next.disabled_reason), changed.map(([, h]) => h.next.failing_since), changed.map(([, h]) => h.next.updated_at)],
        );
      }
      return out;
    });
  }

  async retryDelivery(deliveryId: string, now: Date = new Date()): Promise<Delivery | null> {
    // A live lease is kept: an attempt in flight finishes and records normally, never two at once.
    const row = await this.d.one<DeliveryRow>(
      `WITH u AS (UPDATE deliveries SET status = 'pending', next_attempt_at = $1, completed_at = NULL WHERE delivery_id = $2 RETURNING *)
       ${DELIVERY_LIST_SELECT.replace('FROM deliveries d', 'FROM u d')}`,
      [now.getTime(), deliveryId],
    );
    return row ? toDelivery(row) : null;
  }

  async retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now: Date = new Date()): Promise<number> {
    const { since, until } = retryRange(filter);
    const res = await this.d.query(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, completed_at = NULL
       WHERE account_id = $2 AND status = 'failed' AND created_at >= $3 AND created_at <= $4`,
      [now.getTime(), filter.account_id, since, until],
    );
    return res.rowCount ?? 0;
  }

  async nextDueAt(): Promise<Date | null> {
    const row = await this.d.one<{ next_attempt_at: number }>(
      `SELECT d.next_attempt_at FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
       WHERE d.status = 'pending' AND w.enabled AND (d.lease_owner IS NULL OR d.lease_until <= $1)
       ORDER BY d.next_attempt_at LIMIT 1`,
      [Date.now()],
    );
    return row ? new Date(row.next_attempt_at) : null;
  }

  async deliveryCounts(): Promise<{ pending: number; failed: number }> {
    const out = { pending: 0, failed: 0 };
    const { rows } = await this.d.query<{ status: 'pending' | 'failed'; n: number }>("SELECT status, COUNT(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status");
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}
