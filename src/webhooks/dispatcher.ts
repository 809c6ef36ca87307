/**
 * Webhook dispatcher (SPEC §4): drains durable deliveries from the store and POSTs them to
 * partner endpoints, signed per Standard Webhooks. It depends on the delivery queue only.
 *
 * Loop: lease a batch of due deliveries (`claimDueDeliveries`; the store enforces seq order per
 * endpoint, the per-endpoint concurrency limit across every node, and leases so a dead node's
 * attempts are taken over after ~2× the timeout), start each attempt without waiting, and claim
 * again as soon as slots free up; when nothing is claimable, sleep until the next due time, a
 * `notify()` (publish stored new deliveries), an attempt completing, or a 1 s safety poll (other
 * nodes' publishes).
 *
 * One attempt, in parts: the request (request.ts: body and signed headers), the HTTP exchange
 * (attempt.ts: send, classify, response excerpt), the decision (policy.ts, pure: resolution and
 * endpoint effect), then one record of all three — attempt, delivery resolution and endpoint
 * health — in one store transaction shared with attempts completing within a few ms
 * (recorder.ts), committed before the attempt counts as done and long before its lease could
 * expire. Metrics in metrics.ts; failures reach the log collapsed per endpoint (failure-log.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Agent } from 'undici';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { ClaimedDelivery, DeliveryQueue } from '../store/types.js';
import { sendAttempt } from './attempt.js';
import { FailureLog } from './failure-log.js';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.js';
import { decide, type RetryPolicy } from './policy.js';
import { AttemptRecorder } from './recorder.js';
import { buildWebhookRequest } from './request.js';
import { maxAttempts, scheduleMax } from './schedule.js';
import { guardedLookup } from './ssrf.js';

export { buildWebhookBody, signingSecrets, USER_AGENT } from './request.js';

export interface DispatcherDeps {
  /** The delivery queue (any Store is one). */
  store: DeliveryQueue;
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  nodeId: string;
}

/** Upper bound of attempts in flight on this node (all endpoints together). */
const MAX_IN_FLIGHT = 512;
/** Deliveries leased per claim round trip. */
const CLAIM_BATCH = 256;
/** Longest sleep without a wake-up (picks up deliveries stored by other nodes). */
const IDLE_POLL_MS = 1000;
/** Sleep when deliveries are due but none claimable (endpoints at their limit, foreign leases). */
const BLOCKED_POLL_MS = 100;
/** Attempts recorded per store transaction at most, and the longest an attempt waits for others (see recorder.ts). */
const RECORD_BATCH = 64;
const RECORD_DELAY_MS = 5;

export class WebhookDispatcher {
  private readonly store: DeliveryQueue;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly m: WebhookMetrics;
  private readonly policy: RetryPolicy;
  private readonly failures: FailureLog;
  /** Lease owner: unique per process start so a restarted node never mistakes old leases for its own. */
  readonly owner: string;
  /** Built on the first attempt (agent()), so a node without webhooks never loads undici. */
  private agentPromise: Promise<Agent> | null = null;
  private readonly leaseMs: number;
  private readonly recorder: AttemptRecorder;

  private running = false;
  private loopDone: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private wakeResolve: (() => void) | null = null;
  private wakePending = false;

  constructor(deps: DispatcherDeps) {
    this.store = deps.store;
    this.config = deps.config;
    this.logger = deps.logger;
    this.owner = `${deps.nodeId}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = 2 * deps.config.webhookTimeoutMs + 1000;
    this.policy = {
      schedule: deps.config.webhookRetryScheduleMs,
      retryAfterCapMs: scheduleMax(deps.config.webhookRetryScheduleMs),
      disableAfterMs: deps.config.webhookDisableAfterMs,
    };
    this.m = createWebhookMetrics(deps.metrics, deps.store, deps.logger);
    this.failures = new FailureLog(deps.logger);
    this.recorder = new AttemptRecorder(deps.store, { maxBatch: RECORD_BATCH, maxDelayMs: RECORD_DELAY_MS });
  }

  /**
   * The HTTP agent of every attempt, created (and undici loaded) on first use: undici's module
   * graph is ≈ 2.4 MiB of heap, paid at start-up by every node before (docs/performance.md).
   */
  private agent(): Promise<Agent> {
    return (this.agentPromise ??= import('undici').then(({ Agent }) => {
      const timeout = this.config.webhookTimeoutMs;
      return new Agent({
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        pipelining: 1,
        connect: this.config.webhookAllowPrivate
          ? { timeout: Math.min(timeout, 10_000) }
          : { timeout: Math.min(timeout, 10_000), lookup: guardedLookup as never },
      });
    }));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err) => {
      this.logger.error({ err }, 'webhook dispatcher loop crashed');
    });
    this.logger.info({ owner: this.owner, concurrency_per_endpoint: this.config.webhookConcurrencyPerEndpoint }, 'webhook dispatcher started');
  }

  /** New deliveries were just stored (or retried / an endpoint re-enabled): look now. */
  notify(): void {
    this.wake();
  }

  /** Stop claiming, wait for in-flight attempts (each bounded by the timeout), then resolve. */
  async stop(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.wake();
    if (wasRunning) await this.loopDone;
    const drained = Promise.allSettled([...this.inFlight]);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), this.config.webhookTimeoutMs + 2000);
    });
    const res = await Promise.race([drained, bound]);
    clearTimeout(timer);
    if (res === 'timeout') this.logger.warn({ in_flight: this.inFlight.size }, 'webhook attempts still in flight at shutdown');
    await this.recorder.drain().catch(() => {});
    this.failures.stop();
    if (this.agentPromise) await (await this.agentPromise).close().catch(() => {});
  }

  /** Attempts currently in flight on this node (for tests and diagnostics). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  // ---------- loop

  private wake(): void {
    const r = this.wakeResolve;
    if (r) {
      this.wakeResolve = null;
      r();
    } else {
      this.wakePending = true;
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.wakePending || !this.running) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeResolve = null;
        resolve();
      }, ms);
      this.wakeResolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    const perEndpointLimit = this.config.webhookConcurrencyPerEndpoint;
    while (this.running) {
      const capacity = Math.min(CLAIM_BATCH, MAX_IN_FLIGHT - this.inFlight.size);
      if (capacity <= 0) {
        await this.sleep(IDLE_POLL_MS);
        continue;
      }
      this.wakePending = false;
      let claimed: ClaimedDelivery[];
      try {
        claimed = await this.store.claimDueDeliveries({ now: new Date(), limit: capacity, leaseMs: this.leaseMs, owner: this.owner, perEndpointLimit });
      } catch (err) {
        if (!this.running) break;
        this.logger.error({ err }, 'claiming webhook deliveries failed');
        await this.sleep(IDLE_POLL_MS);
        continue;
      }
      for (const c of claimed) this.launch(c);
      if (!this.running) break;
      if (claimed.length >= capacity) continue; // probably more due right now

      let sleepMs = IDLE_POLL_MS;
      try {
        const next = await this.store.nextDueAt();
        if (next) {
          const d = next.getTime() - Date.now();
          // Due but unclaimable: endpoints at their limit (an attempt completing wakes us) or
          // leases held by a dead node (poll until they expire).
          if (d > 0) sleepMs = Math.min(d + 1, IDLE_POLL_MS);
          else sleepMs = this.inFlight.size > 0 ? IDLE_POLL_MS : BLOCKED_POLL_MS;
        }
      } catch (err) {
        this.logger.debug({ err }, 'nextDueAt failed');
      }
      await this.sleep(sleepMs);
      // Let completions of the same tick coalesce into one claim round trip.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private launch(c: ClaimedDelivery): void {
    const p: Promise<void> = this.deliver(c)
      .catch((err) => this.logger.error({ err, delivery_id: c.delivery.delivery_id }, 'webhook attempt bookkeeping failed'))
      .finally(() => {
        this.inFlight.delete(p);
        this.m.inFlight.set(this.inFlight.size);
        this.wake();
      });
    this.inFlight.add(p);
    this.m.inFlight.set(this.inFlight.size);
  }

  // ---------- one attempt

  private async deliver(c: ClaimedDelivery): Promise<void> {
    const { delivery, endpoint, event } = c;
    const startedMs = Date.now();
    const request = buildWebhookRequest(c, startedMs, this.config.sourceId);
    const r = await sendAttempt(request, { agent: await this.agent(), timeoutMs: this.config.webhookTimeoutMs, allowPrivate: this.config.webhookAllowPrivate });
    const endMs = Date.now();
    const attemptsMade = delivery.attempt_count + 1;
    const { outcome, resolution, effect } = decide(r, attemptsMade, this.policy, endMs);

    // Committed (with attempts finishing around the same time) before this resolves; the lease is held until then.
    const recorded = await this.recorder.record({
      deliveryId: delivery.delivery_id,
      owner: this.owner,
      attempt: {
        attempted_at: new Date(startedMs).toISOString(),
        status_code: r.status,
        latency_ms: Math.round(r.latencyMs * 1000) / 1000,
        error: r.error,
        outcome,
        response_excerpt: r.excerpt,
      },
      resolution,
      effect,
    });
    this.m.attempts.inc({ outcome, reason: r.reason });
    this.m.attemptDuration.observe(r.latencyMs / 1000);
    if (!recorded.recorded) {
      // Lease lost (took longer than the lease and another node took over): its result is theirs to record.
      this.logger.warn({ delivery_id: delivery.delivery_id, webhook_id: endpoint.webhook_id }, 'webhook attempt not recorded: lease lost');
      return;
    }
    if (recorded.disabled) {
      this.m.disabled.inc({ reason: recorded.disabled.cause });
      this.logger.warn({ webhook_id: endpoint.webhook_id, account_id: endpoint.account_id, reason: recorded.disabled.reason }, 'webhook endpoint disabled');
    }
    if (outcome === 'succeeded') {
      this.m.deliveryLatency.observe(Math.max(0, endMs - event.created_at_ms) / 1000);
      this.logger.debug({ delivery_id: delivery.delivery_id, webhook_id: endpoint.webhook_id, msg_id: event.msg_id, status: r.status }, 'webhook delivered');
      return;
    }
    this.failures.failure({
      webhook_id: endpoint.webhook_id,
      account_id: delivery.account_id,
      delivery_id: delivery.delivery_id,
      msg_id: event.msg_id,
      attempt: attemptsMade,
      of: maxAttempts(this.policy.schedule),
      status: r.status,
      error: r.error,
      dead_letter: outcome === 'failed',
      next_attempt_at: resolution.status === 'pending' ? resolution.next_attempt_at : null,
    });
  }
}
