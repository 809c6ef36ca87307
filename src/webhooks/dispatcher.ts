/**
 * Webhook dispatcher (SPEC §4): drains durable deliveries from the store and POSTs them to
 * partner endpoints, signed per Standard Webhooks.
 *
 * Loop: lease a batch of due deliveries (`claimDueDeliveries`; the store enforces seq order per
 * endpoint, the per-endpoint concurrency limit across every node, and leases so a dead node's
 * attempts are taken over after ~2× the timeout), start each attempt without waiting, and claim
 * again as soon as slots free up; when nothing is claimable, sleep until the next due time, a
 * `notify()` (publish stored new deliveries), an attempt completing, or a 1 s safety poll (other
 * nodes' publishes). Each attempt's outcome and its resolution are recorded together; attempts
 * completing within a few ms share one store transaction (recorder.ts), committed before the
 * attempt counts as done and long before its lease could expire.
 *
 * Outcomes: 2xx → succeeded. 410 → failed and the endpoint disabled with a reason. 429/503 →
 * retry after Retry-After (capped) else the schedule. Anything else, including 3xx (redirects are
 * never followed), timeouts and network errors → retry per schedule, or failed (dead letter) after
 * the last attempt. An endpoint that keeps failing for longer than webhookDisableAfterMs is
 * disabled, with the reason stored in `disabled_reason`.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AttemptResolution, ClaimedDelivery, DeliveryAttempt, Store, WebhookEndpoint } from '../store/types.js';
import { AttemptRecorder } from './recorder.js';
import { maxAttempts, nextRetryDelayMs, parseRetryAfter, scheduleMax } from './schedule.js';
import { signPayload } from './signing.js';
import { forbiddenAddressReason, guardedLookup, urlHost } from './ssrf.js';

export interface DispatcherDeps {
  store: Store;
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
/** Bytes of a non-2xx response body kept in the attempt's error text. */
const ERROR_BODY_BYTES = 256;
export const USER_AGENT = 'tpx-webhooks/1';

type Reason = '2xx' | '3xx' | '410' | '429' | '503' | '4xx' | '5xx' | 'timeout' | 'network' | 'unsafe_address';

interface WebhookMetrics {
  attempts: Counter<'outcome' | 'reason'>;
  attemptDuration: Histogram<string>;
  deliveryLatency: Histogram<string>;
  inFlight: Gauge<string>;
  disabled: Counter<'reason'>;
}

function createWebhookMetrics(metrics: GatewayMetrics, store: Store, logger: Logger): WebhookMetrics {
  const registers = [metrics.registry];
  let lastCounts = { pending: 0, failed: 0 };
  let countsAt = 0;
  let countsPromise: Promise<void> | null = null;
  const refreshCounts = async () => {
    // One store query per scrape at most (both gauges share it).
    if (Date.now() - countsAt < 500) return;
    countsPromise ??= store
      .deliveryCounts()
      .then((c) => {
        lastCounts = c;
        countsAt = Date.now();
      })
      .catch((err) => logger.debug({ err }, 'deliveryCounts failed'))
      .finally(() => {
        countsPromise = null;
      });
    await countsPromise;
  };
  new Gauge({
    name: 'tpx_webhook_deliveries_pending',
    help: 'Webhook deliveries waiting for an (other) attempt',
    registers,
    async collect() {
      await refreshCounts();
      this.set(lastCounts.pending);
    },
  });
  new Gauge({
    name: 'tpx_webhook_deliveries_failed',
    help: 'Webhook deliveries that exhausted their attempts (dead letters), until retried',
    registers,
    async collect() {
      await refreshCounts();
      this.set(lastCounts.failed);
    },
  });
  return {
    attempts: new Counter({
      name: 'tpx_webhook_attempts_total',
      help: 'Webhook attempts by outcome (succeeded|retry|failed) and reason (2xx, 5xx, timeout, ...)',
      labelNames: ['outcome', 'reason'],
      registers,
    }),
    attemptDuration: new Histogram({
      name: 'tpx_webhook_attempt_duration_seconds',
      help: 'Duration of one webhook HTTP attempt',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'tpx_webhook_delivery_latency_seconds',
      help: 'Time from event acceptance to the acknowledging (2xx) attempt',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
      registers,
    }),
    inFlight: new Gauge({ name: 'tpx_webhook_attempts_in_flight', help: 'Webhook attempts in flight on this node', registers }),
    disabled: new Counter({
      name: 'tpx_webhook_endpoints_disabled_total',
      help: 'Endpoints disabled by the dispatcher, by reason (gone|failing)',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** The exact body bytes: payload_json is spliced in as stored, never re-serialized. */
export function buildWebhookBody(c: ClaimedDelivery, sentAtSec: number, defaultSourceId: string): string {
  const { event, account } = c;
  return (
    `{"msg_type":${JSON.stringify(event.msg_type)},"msg_id":${JSON.stringify(event.msg_id)},"sent_at":${sentAtSec},` +
    `"source_id":${JSON.stringify(event.source_id ?? defaultSourceId)},` +
    `"destination_id":${JSON.stringify(account.partner_id ?? account.account_id)},"payload":${event.payload_json}}`
  );
}

/** Secrets that sign now: the current one, plus the previous one while its grace lasts. */
export function signingSecrets(endpoint: WebhookEndpoint, nowMs: number): string[] {
  const secrets = [endpoint.secret];
  if (endpoint.previous_secret && endpoint.previous_secret_expires_at && Date.parse(endpoint.previous_secret_expires_at) > nowMs) {
    secrets.push(endpoint.previous_secret);
  }
  return secrets;
}

interface AttemptResult {
  status: number | null;
  error: string | null;
  reason: Reason;
  retryAfter: string | undefined;
  latencyMs: number;
}

export class WebhookDispatcher {
  private readonly store: Store;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly m: WebhookMetrics;
  /** Lease owner: unique per process start so a restarted node never mistakes old leases for its own. */
  readonly owner: string;
  private readonly agent: Agent;
  private readonly leaseMs: number;
  private readonly retryAfterCapMs: number;
  private readonly recorder: AttemptRecorder;

  private running = false;
  private loopDone: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private wakeResolve: (() => void) | null = null;
  private wakePending = false;
  /** failing_since values this node wrote, with when (guards against stale claim snapshots). */
  private readonly failingWritten = new Map<string, { since: string; writtenAtMs: number }>();

  constructor(deps: DispatcherDeps) {
    this.store = deps.store;
    this.config = deps.config;
    this.logger = deps.logger;
    this.owner = `${deps.nodeId}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = 2 * deps.config.webhookTimeoutMs + 1000;
    this.retryAfterCapMs = scheduleMax(deps.config.webhookRetryScheduleMs);
    this.m = createWebhookMetrics(deps.metrics, deps.store, deps.logger);
    this.recorder = new AttemptRecorder(deps.store, { maxBatch: RECORD_BATCH, maxDelayMs: RECORD_DELAY_MS });
    const timeout = deps.config.webhookTimeoutMs;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      pipelining: 1,
      connect: deps.config.webhookAllowPrivate
        ? { timeout: Math.min(timeout, 10_000) }
        : { timeout: Math.min(timeout, 10_000), lookup: guardedLookup as never },
    });
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
    await this.agent.close().catch(() => {});
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

  private async send(c: ClaimedDelivery, nowMs: number): Promise<AttemptResult> {
    const { endpoint, event } = c;
    const ts = Math.floor(nowMs / 1000);
    const body = buildWebhookBody(c, ts, this.config.sourceId);
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': event.msg_id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signPayload({ msgId: event.msg_id, timestamp: ts, body, secrets: signingSecrets(endpoint, nowMs) }),
    };
    const started = performance.now();
    const done = (r: Omit<AttemptResult, 'latencyMs'>): AttemptResult => ({ ...r, latencyMs: performance.now() - started });
    try {
      if (!this.config.webhookAllowPrivate) {
        // IP literals bypass DNS lookup: check them here (hostnames are checked at connect time).
        const host = urlHost(new URL(endpoint.url));
        if (isIP(host)) {
          const why = forbiddenAddressReason(host);
          if (why) return done({ status: null, error: `refused: address ${host} is ${why} (SSRF guard)`, reason: 'unsafe_address', retryAfter: undefined });
        }
      }
      const res = await request(endpoint.url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.config.webhookTimeoutMs),
        headersTimeout: this.config.webhookTimeoutMs,
        bodyTimeout: this.config.webhookTimeoutMs,
      });
      const status = res.statusCode;
      const ra = res.headers['retry-after'];
      const retryAfter = Array.isArray(ra) ? ra[0] : ra;
      if (status >= 200 && status < 300) {
        await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
        return done({ status, error: null, reason: '2xx', retryAfter });
      }
      let error: string;
      let reason: Reason;
      if (status >= 300 && status < 400) {
        const loc = res.headers.location;
        error = `HTTP ${status}: redirect not followed${loc ? ` (location ${String(loc).slice(0, 200)})` : ''}`;
        reason = '3xx';
        await res.body.dump({ limit: 8 * 1024 }).catch(() => {});
      } else {
        reason = status === 410 ? '410' : status === 429 ? '429' : status === 503 ? '503' : status < 500 ? '4xx' : '5xx';
        const snippet = await readSnippet(res.body);
        error = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
      }
      return done({ status, error, reason, retryAfter });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      const code = e.code ?? e.cause?.code;
      const name = e.name;
      if (code === 'UNSAFE_WEBHOOK_URL' || e.cause?.code === 'UNSAFE_WEBHOOK_URL' || /SSRF|refused addresses/.test(e.message)) {
        return done({ status: null, error: `refused: ${e.message} (SSRF guard)`, reason: 'unsafe_address', retryAfter: undefined });
      }
      if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
        return done({ status: null, error: `timeout after ${this.config.webhookTimeoutMs} ms`, reason: 'timeout', retryAfter: undefined });
      }
      return done({ status: null, error: `${code ?? name ?? 'Error'}: ${e.message}`.slice(0, 500), reason: 'network', retryAfter: undefined });
    }
  }

  private async deliver(c: ClaimedDelivery): Promise<void> {
    const { delivery, endpoint } = c;
    const nowMs = Date.now();
    const r = await this.send(c, nowMs);
    const endMs = Date.now();
    const attemptsMade = delivery.attempt_count + 1;
    const schedule = this.config.webhookRetryScheduleMs;

    let resolution: AttemptResolution;
    let outcome: DeliveryAttempt['outcome'];
    let disableReason: string | null = null;
    if (r.reason === '2xx') {
      resolution = { status: 'succeeded' };
      outcome = 'succeeded';
    } else if (r.reason === '410') {
      resolution = { status: 'failed' };
      outcome = 'failed';
      disableReason = `endpoint answered 410 Gone at ${new Date(endMs).toISOString()}`;
    } else {
      let delay = nextRetryDelayMs(schedule, attemptsMade);
      if (delay !== null && (r.reason === '429' || r.reason === '503')) {
        const ra = parseRetryAfter(r.retryAfter, endMs, this.retryAfterCapMs);
        if (ra !== null) delay = ra;
      }
      if (delay === null) {
        resolution = { status: 'failed' };
        outcome = 'failed';
      } else {
        resolution = { status: 'pending', next_attempt_at: new Date(endMs + delay).toISOString() };
        outcome = 'retry';
      }
    }

    // Committed (with attempts finishing around the same time) before this resolves; the lease is held until then.
    const recorded = await this.recorder.record({
      deliveryId: delivery.delivery_id,
      owner: this.owner,
      attempt: { attempted_at: new Date(nowMs).toISOString(), status_code: r.status, latency_ms: Math.round(r.latencyMs * 1000) / 1000, error: r.error, outcome },
      resolution,
    });
    this.m.attempts.inc({ outcome, reason: r.reason });
    this.m.attemptDuration.observe(r.latencyMs / 1000);
    if (!recorded) {
      // Lease lost (took longer than the lease and another node took over): its result is theirs to record.
      this.logger.warn({ delivery_id: delivery.delivery_id, webhook_id: endpoint.webhook_id }, 'webhook attempt not recorded: lease lost');
      return;
    }
    if (outcome === 'succeeded') {
      this.m.deliveryLatency.observe(Math.max(0, endMs - c.event.created_at_ms) / 1000);
      await this.markHealthy(endpoint);
      this.logger.debug({ delivery_id: delivery.delivery_id, webhook_id: endpoint.webhook_id, msg_id: c.event.msg_id, status: r.status }, 'webhook delivered');
      return;
    }
    const logFields = {
      delivery_id: delivery.delivery_id,
      webhook_id: endpoint.webhook_id,
      account_id: delivery.account_id,
      msg_id: c.event.msg_id,
      attempt: attemptsMade,
      of: maxAttempts(schedule),
      status: r.status,
      error: r.error,
    };
    if (outcome === 'failed') this.logger.warn(logFields, 'webhook delivery failed (dead letter)');
    else this.logger.info({ ...logFields, next_attempt_at: (resolution as { next_attempt_at: string }).next_attempt_at }, 'webhook attempt failed, will retry');

    if (disableReason) {
      await this.disable(endpoint, disableReason, 'gone');
      return;
    }
    await this.markFailing(endpoint, endMs);
  }

  // ---------- endpoint health

  private async markHealthy(endpoint: WebhookEndpoint): Promise<void> {
    const written = this.failingWritten.get(endpoint.webhook_id);
    if (endpoint.failing_since === null && !written) return;
    this.failingWritten.delete(endpoint.webhook_id);
    await this.store.updateWebhook(endpoint.webhook_id, { failing_since: null });
  }

  private async markFailing(endpoint: WebhookEndpoint, nowMs: number): Promise<void> {
    let since = endpoint.failing_since;
    const written = this.failingWritten.get(endpoint.webhook_id);
    // The claim snapshot may predate our own write; trust our write unless the endpoint changed after it.
    if (since === null && written && Date.parse(endpoint.updated_at) <= written.writtenAtMs) since = written.since;
    if (since === null) {
      const nowIso = new Date(nowMs).toISOString();
      this.failingWritten.set(endpoint.webhook_id, { since: nowIso, writtenAtMs: nowMs });
      await this.store.updateWebhook(endpoint.webhook_id, { failing_since: nowIso });
      since = nowIso;
    }
    const limit = this.config.webhookDisableAfterMs;
    if (limit > 0 && nowMs - Date.parse(since) >= limit) {
      await this.disable(endpoint, `failing continuously since ${since} (longer than ${formatMs(limit)})`, 'failing');
    }
  }

  private async disable(endpoint: WebhookEndpoint, reason: string, label: 'gone' | 'failing'): Promise<void> {
    const current = await this.store.getWebhook(endpoint.webhook_id);
    if (!current || !current.enabled) return;
    await this.store.updateWebhook(endpoint.webhook_id, { enabled: false, disabled_reason: reason });
    this.failingWritten.delete(endpoint.webhook_id);
    this.m.disabled.inc({ reason: label });
    this.logger.warn({ webhook_id: endpoint.webhook_id, account_id: endpoint.account_id, reason }, 'webhook endpoint disabled');
  }
}

async function readSnippet(body: AsyncIterable<Buffer> & { destroy?: () => void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= ERROR_BODY_BYTES) break;
    }
  } catch {
    /* body errors do not matter here */
  }
  return Buffer.concat(chunks)
    .subarray(0, ERROR_BODY_BYTES)
    .toString('utf8')
    .replace(/\s+/g, ' ')
    .trim();
}

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
