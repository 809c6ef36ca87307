/**
 * Webhook endpoints and the delivery queue on the embedded store (the DeliveryQueue aggregate).
 * Admin writes (endpoints, manual retries) answer once synced, like appends (database.ts
 * written()); the dispatcher's leases and attempt records are not waited for (a crash re-sends at
 * most what was in flight, which any at-least-once delivery allows).
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
import { SQLITE_CONSTRAINTS } from './accounts.js';
import type { SqliteDatabase, Stmt } from './database.js';

/** Claims: due rows read per keyset page, and rows read before switching to per-endpoint probes. */
const CLAIM_SCAN_CHUNK = 128;
const CLAIM_SCAN_BUDGET = 256;

type Due = { delivery_id: string; webhook_id: string; next_attempt_at: number; seq: number };

export class SqliteDeliveryQueue implements DeliveryQueue {
  private readonly s: Record<
    | 'getWebhook'
    | 'liveLeases'
    | 'dueChunk'
    | 'dueEndpoints'
    | 'dueOfEndpoint'
    | 'lease'
    | 'joined'
    | 'failOrphan'
    | 'leaseOf'
    | 'insertAttempt'
    | 'resolveDelivery'
    | 'health'
    | 'setHealth'
    | 'listed',
    Stmt
  >;

  constructor(
    private readonly d: SqliteDatabase,
    /** Called when endpoints appear, disappear or change their enabled state (the append routing view). */
    private readonly onRoutingChange: () => void,
  ) {
    const p = (sql: string) => d.db.prepare(sql);
    this.s = {
      getWebhook: p(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE webhook_id = ?`),
      // INDEXED BY: left alone the planner walks deliveries_webhook (every delivery) to avoid a sort of a few rows.
      liveLeases: p(
        'SELECT webhook_id, COUNT(*) AS n FROM deliveries INDEXED BY deliveries_leased WHERE lease_owner IS NOT NULL AND lease_until > ? GROUP BY webhook_id',
      ),
      // Keyset page over due, unleased deliveries of enabled endpoints, oldest due first (seq within).
      dueChunk: p(
        `SELECT d.delivery_id, d.webhook_id, d.next_attempt_at, d.seq FROM deliveries d INDEXED BY deliveries_due
         JOIN webhooks w ON w.webhook_id = d.webhook_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.next_attempt_at >= ?
           AND (d.next_attempt_at > ? OR (d.next_attempt_at = ? AND (d.seq > ? OR (d.seq = ? AND d.delivery_id > ?))))
           AND (d.lease_owner IS NULL OR d.lease_until <= ?)
           AND w.enabled = 1
         ORDER BY d.next_attempt_at, d.seq, d.delivery_id LIMIT ?`,
      ),
      // Loose index scan over deliveries_pending_endpoint: one probe per endpoint that has pending
      // deliveries (not one row read per pending delivery), keeping enabled endpoints with a due row.
      dueEndpoints: p(
        `WITH RECURSIVE ep(id) AS (
           SELECT (SELECT MIN(webhook_id) FROM deliveries INDEXED BY deliveries_pending_endpoint WHERE status = 'pending')
           UNION ALL
           SELECT (SELECT MIN(webhook_id) FROM deliveries INDEXED BY deliveries_pending_endpoint WHERE status = 'pending' AND webhook_id > ep.id)
           FROM ep WHERE ep.id IS NOT NULL
         )
         SELECT w.webhook_id FROM ep JOIN webhooks w ON w.webhook_id = ep.id
         WHERE w.enabled = 1
           AND EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_pending_endpoint
                       WHERE status = 'pending' AND webhook_id = ep.id AND next_attempt_at <= ?)`,
      ),
      // One endpoint's due, unleased deliveries in (next_attempt_at, seq) order (seq is unique within an
      // endpoint: one webhook belongs to one account). Reads at most its live leases + LIMIT rows.
      dueOfEndpoint: p(
        `SELECT delivery_id, webhook_id, next_attempt_at, seq FROM deliveries INDEXED BY deliveries_pending_endpoint
         WHERE status = 'pending' AND webhook_id = ? AND next_attempt_at <= ?
           AND (lease_owner IS NULL OR lease_until <= ?)
         ORDER BY next_attempt_at, seq LIMIT ?`,
      ),
      lease: p('UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE delivery_id = ?'),
      joined: p(`${DELIVERY_JOIN_SELECT} WHERE d.delivery_id = ?`),
      failOrphan: p(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, last_error = ?, completed_at = ? WHERE delivery_id = ?",
      ),
      leaseOf: p('SELECT lease_owner, attempt_count, webhook_id FROM deliveries WHERE delivery_id = ?'),
      insertAttempt: p(
        `INSERT INTO delivery_attempts (attempt_id, delivery_id, attempt_no, attempted_at, status_code, latency_ms, error, outcome, response_excerpt)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      resolveDelivery: p(
        `UPDATE deliveries SET attempt_count = attempt_count + 1, status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?,
         completed_at = ?, lease_owner = NULL, lease_until = NULL WHERE delivery_id = ?`,
      ),
      health: p('SELECT enabled, disabled_reason, failing_since, updated_at FROM webhooks WHERE webhook_id = ?'),
      setHealth: p('UPDATE webhooks SET enabled = ?, disabled_reason = ?, failing_since = ?, updated_at = ? WHERE webhook_id = ?'),
      listed: p(`${DELIVERY_LIST_SELECT} WHERE d.delivery_id = ?`),
    };
  }

  // ---------------------------------------------------------------- endpoints

  async createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint> {
    this.d.checkWritable();
    const w = newWebhookEndpoint(accountId, input);
    try {
      this.d
        .prepare(
          `INSERT INTO webhooks (webhook_id, account_id, url, secret, enabled, description, created_at, updated_at)
           VALUES (?, ?, ?, ?, 1, ?, ?, ?)`,
        )
        .run(w.webhook_id, accountId, w.url, w.secret, w.description, w.created_at, w.updated_at);
    } catch (err) {
      rethrowConstraint(err, SQLITE_CONSTRAINTS, { accountId });
    }
    this.onRoutingChange();
    await this.d.written();
    return w;
  }

  async listWebhooks(accountId: string): Promise<WebhookEndpoint[]> {
    this.d.check();
    return (this.d.prepare(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE account_id = ? ORDER BY rowid`).all(accountId) as WebhookRow[]).map(toWebhook);
  }

  async getWebhook(webhookId: string): Promise<WebhookEndpoint | null> {
    this.d.check();
    const row = this.s.getWebhook.get(webhookId) as WebhookRow | undefined;
    return row ? toWebhook(row) : null;
  }

  async updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null> {
    this.d.checkWritable();
    const cur = await this.getWebhook(webhookId);
    if (!cur) return null;
    const next = applyWebhookPatch(cur, patch);
    this.d
      .prepare(
        `UPDATE webhooks SET url = ?, secret = ?, previous_secret = ?, previous_secret_expires_at = ?, enabled = ?,
         disabled_reason = ?, description = ?, failing_since = ?, updated_at = ? WHERE webhook_id = ?`,
      )
      .run(next.url, next.secret, next.previous_secret, next.previous_secret_expires_at, next.enabled ? 1 : 0, next.disabled_reason, next.description, next.failing_since, next.updated_at, webhookId);
    if (next.enabled !== cur.enabled) this.onRoutingChange();
    await this.d.written();
    return next;
  }

  async deleteWebhook(webhookId: string): Promise<boolean> {
    this.d.checkWritable();
    const deleted = this.d.prepare('DELETE FROM webhooks WHERE webhook_id = ?').run(webhookId).changes > 0;
    if (!deleted) return false;
    this.onRoutingChange();
    await this.d.written();
    return true;
  }

  // ---------------------------------------------------------------- deliveries (admin)

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    this.d.check();
    const args: unknown[] = [];
    const { where, limit } = deliveryConditions(filter, (v) => (args.push(v), '?'));
    // Newest first: rowid is insertion order, which the table can be walked backwards in.
    return (this.d.prepare(`${DELIVERY_LIST_SELECT} ${where} ORDER BY d.rowid DESC LIMIT ?`).all(...args, limit) as DeliveryRow[]).map(toDelivery);
  }

  async getDelivery(deliveryId: string): Promise<DeliveryDetail | null> {
    this.d.check();
    const row = this.s.joined.get(deliveryId) as DeliveryJoinRow | undefined;
    if (!row) return null;
    const attempts = this.d.prepare(`SELECT ${ATTEMPT_COLS} FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt_no`).all(deliveryId) as AttemptRow[];
    return toDeliveryDetail(row, attempts);
  }

  // ---------------------------------------------------------------- deliveries (dispatcher)

  async claimDueDeliveries(opts: ClaimOptions): Promise<ClaimedDelivery[]> {
    this.d.check();
    const limit = Math.floor(opts.limit);
    const perEndpoint = Math.floor(opts.perEndpointLimit);
    if (limit <= 0 || perEndpoint <= 0) return [];
    // Never send what a crash could still take back: deliveries of appends not yet synced wait.
    await this.d.durable();
    this.d.check();
    const s = this.s;
    const now = opts.now.getTime();
    const leaseUntil = now + Math.max(0, opts.leaseMs);
    const tx = this.d.db.transaction((): ClaimedDelivery[] => {
      const inFlight = new Map<string, number>();
      for (const r of s.liveLeases.all(now) as { webhook_id: string; n: number }[]) inFlight.set(r.webhook_id, r.n);
      const room = (webhookId: string, taken: Map<string, number>) => perEndpoint - (inFlight.get(webhookId) ?? 0) - (taken.get(webhookId) ?? 0);

      // 1. The common case: walk due rows oldest first, skipping endpoints at their limit, within a
      //    row budget. Ending because the limit filled or the due rows ran out gives the exact answer.
      let picked: Due[] | null = [];
      const taken = new Map<string, number>();
      let cur = { at: -1e15, seq: -1, id: '' };
      let scanned = 0;
      const budget = Math.max(CLAIM_SCAN_BUDGET, limit);
      for (;;) {
        const rows = s.dueChunk.all(now, cur.at, cur.at, cur.at, cur.seq, cur.seq, cur.id, now, CLAIM_SCAN_CHUNK) as Due[];
        for (const r of rows) {
          cur = { at: r.next_attempt_at, seq: r.seq, id: r.delivery_id };
          if (room(r.webhook_id, taken) <= 0) continue;
          taken.set(r.webhook_id, (taken.get(r.webhook_id) ?? 0) + 1);
          picked.push(r);
          if (picked.length >= limit) break;
        }
        scanned += rows.length;
        if (picked.length >= limit || rows.length < CLAIM_SCAN_CHUNK) break;
        if (scanned >= budget) {
          picked = null; // a backlog of endpoints at their limit: do not read it row by row
          break;
        }
      }

      // 2. Many due rows belong to endpoints at their limit. Each endpoint can only contribute its free
      //    slots, in its own (next_attempt_at, seq) order (seq is unique within an endpoint); merging
      //    those candidates and keeping the first `limit` picks exactly what the scan above would,
      //    reading one index probe per endpoint with due work instead of every blocked row.
      if (picked === null) {
        picked = [];
        for (const { webhook_id } of s.dueEndpoints.all(now) as { webhook_id: string }[]) {
          const free = Math.min(limit, room(webhook_id, new Map()));
          if (free <= 0) continue;
          for (const r of s.dueOfEndpoint.all(webhook_id, now, now, free) as Due[]) picked.push(r);
        }
        picked.sort((x, y) => x.next_attempt_at - y.next_attempt_at || x.seq - y.seq || (x.delivery_id < y.delivery_id ? -1 : x.delivery_id > y.delivery_id ? 1 : 0));
        if (picked.length > limit) picked.length = limit;
      }

      const out: ClaimedDelivery[] = [];
      for (const { delivery_id: id } of picked) {
        const row = s.joined.get(id) as DeliveryJoinRow | undefined;
        if (!row) continue;
        const claimed = toClaimed(row);
        if (claimed === null) {
          // Cannot happen through this store's own pruning; guard so a lost event never blocks the queue.
          s.failOrphan.run('event no longer stored', now, id);
          continue;
        }
        s.lease.run(opts.owner, leaseUntil, id);
        out.push(claimed);
      }
      return out;
    });
    return tx.immediate();
  }

  async recordAttempts(items: RecordAttemptItem[]): Promise<RecordAttemptOutcome[]> {
    this.d.checkWritable();
    if (items.length === 0) return [];
    const s = this.s;
    const prepared = prepareAttempts(items); // a bad item rejects the call before anything is written
    let routingChanged = false;
    const tx = this.d.db.transaction((): RecordAttemptOutcome[] => {
      const completedAt = Date.now();
      const nowIso = new Date(completedAt).toISOString();
      // Endpoint health as stored, read once per endpoint, changed in memory, written once at the end.
      const health = new Map<string, { stored: EndpointHealth; next: EndpointHealth }>();
      const out = prepared.map((it): RecordAttemptOutcome => {
        // Only the current lease owner records (this also makes a delivery listed twice record once).
        const cur = s.leaseOf.get(it.deliveryId) as { lease_owner: string | null; attempt_count: number; webhook_id: string } | undefined;
        if (!cur || cur.lease_owner !== it.owner) return { recorded: false, disabled: null };
        const a = it.attempt;
        s.insertAttempt.run(uuidv7(), it.deliveryId, cur.attempt_count + 1, it.attemptedAt, a.status_code, a.latency_ms, a.error, a.outcome, it.excerpt);
        s.resolveDelivery.run(it.resolution.status, it.nextAt, a.status_code, a.error, it.resolution.status === 'pending' ? null : completedAt, it.deliveryId);
        if (!it.effect) return { recorded: true, disabled: null };
        let h = health.get(cur.webhook_id);
        if (!h) {
          const row = s.health.get(cur.webhook_id) as { enabled: number; disabled_reason: string | null; failing_since: string | null; updated_at: string };
          const stored = { enabled: row.enabled === 1, disabled_reason: row.disabled_reason, failing_since: row.failing_since, updated_at: row.updated_at };
          h = { stored, next: stored };
          health.set(cur.webhook_id, h);
        }
        const { next, disabled } = applyEndpointEffect(h.next, it.effect, nowIso);
        h.next = next;
        return { recorded: true, disabled };
      });
      for (const [webhookId, { stored, next }] of health) {
        if (sameHealth(stored, next)) continue;
        s.setHealth.run(next.enabled ? 1 : 0, next.disabled_reason, next.failing_since, next.updated_at, webhookId);
        if (next.enabled !== stored.enabled) routingChanged = true;
      }
      return out;
    });
    const out = tx.immediate();
    if (routingChanged) this.onRoutingChange(); // a disabled endpoint gets no new deliveries
    return out;
  }

  async retryDelivery(deliveryId: string, now: Date = new Date()): Promise<Delivery | null> {
    this.d.checkWritable();
    // A live lease is kept: an attempt in flight finishes and records normally, never two at once.
    if (this.d.prepare("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL WHERE delivery_id = ?").run(now.getTime(), deliveryId).changes === 0) {
      return null;
    }
    const delivery = toDelivery(this.s.listed.get(deliveryId) as DeliveryRow);
    await this.d.written();
    return delivery;
  }

  async retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now: Date = new Date()): Promise<number> {
    this.d.checkWritable();
    const { since, until } = retryRange(filter);
    const retried = this.d
      .prepare(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL
         WHERE account_id = ? AND status = 'failed' AND created_at >= ? AND created_at <= ?`,
      )
      .run(now.getTime(), filter.account_id, since, until).changes;
    if (retried > 0) await this.d.written();
    return retried;
  }

  async nextDueAt(): Promise<Date | null> {
    this.d.check();
    const at = this.d
      .prepare(
        `SELECT d.next_attempt_at FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
         WHERE d.status = 'pending' AND w.enabled = 1 AND (d.lease_owner IS NULL OR d.lease_until <= ?)
         ORDER BY d.next_attempt_at LIMIT 1`,
      )
      .pluck()
      .get(Date.now()) as number | undefined;
    return at === undefined ? null : new Date(at);
  }

  async deliveryCounts(): Promise<{ pending: number; failed: number }> {
    this.d.check();
    const out = { pending: 0, failed: 0 };
    for (const r of this.d.prepare("SELECT status, COUNT(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status").all() as {
      status: 'pending' | 'failed';
      n: number;
    }[]) {
      out[r.status] = r.n;
    }
    return out;
  }
}
