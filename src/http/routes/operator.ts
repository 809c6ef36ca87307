/**
 * Admin endpoints made for the operator console (docs/console.md), mounted under /admin with the
 * admin guard:
 *
 * - `GET /admin/stats`: this node's counters and gauges as JSON (the same values `/metrics`
 *   exposes), which the console polls and turns into per-second rates. Delivery backlog counts
 *   come from the shared store, so they are the same on every node.
 * - `POST /admin/events/tail`: a long-poll over the event log (the store, hence every node's
 *   publishes) with an opaque cursor; filters by account and event type.
 * - `GET /admin/samples`: a valid sample payload of every event type (from the protocol
 *   package), for the console's send-test-event form.
 */
import type { FastifyInstance } from 'fastify';
import type { Histogram, MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';
import { z } from 'zod';
import { EVENT_TYPES, samplePayload, type EventType } from '@tpx-realtime/protocol';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { AccountEvent, Store } from '../../store/types.js';
import { HttpError } from '../errors.js';
import { ADMIN, ADMIN_ERRORS, BODY_ERRORS, dateTime, errorReply, json, RESOURCE_ID, type ZodTypeProvider } from '../schema.js';
import { PAYLOADS } from '../event-schemas.js';

// ------------------------------------------------------------------ stats

type Snapshot = MetricObjectWithValues<MetricValue<string>>;

async function metricValues(metrics: GatewayMetrics, name: string): Promise<Snapshot['values']> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return [];
  return ((await metric.get()) as Snapshot).values;
}

const sum = (values: Snapshot['values']) => values.reduce((n, v) => n + v.value, 0);

/** Cumulative buckets `[[le, count], …]` (le in seconds, last is +Inf), count and sum of a histogram. */
async function histogram(metrics: GatewayMetrics, name: string) {
  const metric = metrics.registry.getSingleMetric(name) as Histogram | undefined;
  if (!metric) return null;
  const values = (await metric.get()).values as MetricValueWithName<string>[];
  const buckets: Array<[number | '+Inf', number]> = [];
  let count = 0;
  let total = 0;
  for (const v of values) {
    if (v.metricName === `${name}_bucket`) buckets.push([v.labels.le === '+Inf' ? '+Inf' : Number(v.labels.le), v.value]);
    else if (v.metricName === `${name}_count`) count = v.value;
    else if (v.metricName === `${name}_sum`) total = v.value;
  }
  return { buckets, count, sum: total };
}

export async function collectStats(metrics: GatewayMetrics, nodeId: string) {
  const attempts = await metricValues(metrics, 'tpx_webhook_attempts_total');
  const byOutcome = (outcome: string) => sum(attempts.filter((v) => v.labels.outcome === outcome));
  return {
    node: nodeId,
    scope: 'node' as const,
    at: new Date().toISOString(),
    uptime_s: Math.round(process.uptime()),
    connections: sum(await metricValues(metrics, 'tpx_ws_connections')),
    subscriptions: sum(await metricValues(metrics, 'tpx_ws_subscriptions')),
    events_published_total: sum(await metricValues(metrics, 'tpx_events_published_total')),
    ws_events_sent_total: sum(await metricValues(metrics, 'tpx_ws_events_sent_total')),
    webhook_attempts_total: { succeeded: byOutcome('succeeded'), retry: byOutcome('retry'), failed: byOutcome('failed') },
    // Store-wide (the shared store): the same answer on every node.
    webhook_deliveries: {
      pending: sum(await metricValues(metrics, 'tpx_webhook_deliveries_pending')),
      failed: sum(await metricValues(metrics, 'tpx_webhook_deliveries_failed')),
    },
    webhook_delivery_latency_seconds: await histogram(metrics, 'tpx_webhook_delivery_latency_seconds'),
    webhook_attempt_duration_seconds: await histogram(metrics, 'tpx_webhook_attempt_duration_seconds'),
    publish_to_send_seconds: await histogram(metrics, 'tpx_publish_to_send_seconds'),
  };
}

// ------------------------------------------------------------------ event tail

/** Accounts one tail scans when no account is chosen; past it the answer says so. */
export const TAIL_MAX_ACCOUNTS = 500;
const TAIL_MAX_WAIT_MS = 25_000;

const TailBody = z.strictObject({
  account_id: z.string().regex(RESOURCE_ID, 'must be an account id').optional().describe(`One account; default: the first ${TAIL_MAX_ACCOUNTS} accounts`),
  types: z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length).optional().describe('Only these event types; default all'),
  cursor: z.string().max(64 * 1024).optional().describe('The cursor of the previous answer; absent: start with the newest events as history'),
  wait_ms: z.number().int().min(0).max(TAIL_MAX_WAIT_MS).optional().describe('Long poll: wait up to this long for new events (default 20000)'),
  limit: z.number().int().min(1).max(500).optional().describe('Most events (default 100)'),
});

const HistogramReply = z
  .object({
    buckets: z.array(z.tuple([z.union([z.number(), z.literal('+Inf')]), z.number()])).describe('Cumulative [le (seconds), count] pairs; the last le is +Inf'),
    count: z.number(),
    sum: z.number(),
  })
  .nullable();
const Stats = z.object({
  node: z.string(),
  scope: z.literal('node').describe("This node's counters (the delivery backlog is store-wide)"),
  at: dateTime(),
  uptime_s: z.number().int().min(0),
  connections: z.number(),
  subscriptions: z.number(),
  events_published_total: z.number(),
  ws_events_sent_total: z.number(),
  webhook_attempts_total: z.object({ succeeded: z.number(), retry: z.number(), failed: z.number() }),
  webhook_deliveries: z.object({ pending: z.number(), failed: z.number() }),
  webhook_delivery_latency_seconds: HistogramReply,
  webhook_attempt_duration_seconds: HistogramReply,
  publish_to_send_seconds: HistogramReply,
});
const TailEvent = z.object({
  account_id: z.string(),
  seq: z.number().int().min(1),
  msg_id: z.string(),
  msg_type: z.enum(EVENT_TYPES),
  source_id: z.string().nullable(),
  created_at: dateTime(),
  payload: z.unknown().describe('The event payload (see the event schemas)'),
});
const TailAnswer = z.object({
  events: z.array(TailEvent),
  cursor: z.string().describe('Pass back to read on'),
  accounts_scanned: z.number().int().min(0),
  accounts_truncated: z.boolean().describe('More accounts than one tail scans: choose an account to see them all'),
});
const Samples = z.object(PAYLOADS);

/** Position per account: the highest seq the client has been shown (or skipped as older history). */
type TailPosition = Record<string, number>;

function encodeCursor(pos: TailPosition): string {
  return Buffer.from(JSON.stringify({ v: 1, s: pos })).toString('base64url');
}

function decodeCursor(cursor: string): TailPosition {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: number; s?: unknown };
    if (parsed.v !== 1 || typeof parsed.s !== 'object' || parsed.s === null) throw new Error('bad shape');
    const pos: TailPosition = {};
    for (const [account, seq] of Object.entries(parsed.s)) {
      if (!RESOURCE_ID.test(account) || !Number.isSafeInteger(seq) || (seq as number) < 0) throw new Error('bad entry');
      pos[account] = seq as number;
    }
    return pos;
  } catch {
    throw new HttpError(400, 'VALIDATION_FAILED', 'cursor is not one this server returned', { fields: [{ field: 'cursor', message: 'invalid cursor' }] });
  }
}

function presentEvent(e: AccountEvent) {
  return {
    account_id: e.account_id,
    seq: e.seq,
    msg_id: e.msg_id,
    msg_type: e.msg_type,
    source_id: e.source_id,
    created_at: new Date(e.created_at_ms).toISOString(),
    payload: JSON.parse(e.payload_json) as unknown,
  };
}

const byTime = (a: AccountEvent, b: AccountEvent) => a.created_at_ms - b.created_at_ms || (a.account_id < b.account_id ? -1 : a.account_id > b.account_id ? 1 : a.seq - b.seq);

/**
 * The tail over what the store offers today (`readEvents` per account): the cursor holds a seq
 * per account, so it is exact and works on any node. Types are filtered here, not in the store,
 * so the cursor also moves over events the filter hides. Cost: one indexed read per account
 * per poll; with many accounts choose one (docs/console.md).
 */
async function readTail(
  store: Store,
  accountIds: string[],
  pos: TailPosition,
  fresh: boolean,
  types: ReadonlySet<EventType> | null,
  limit: number,
) {
  const found: AccountEvent[] = [];
  for (const account_id of accountIds) {
    let after = pos[account_id] ?? 0;
    if (fresh) {
      // First call: start at the account's newest event and show the last `limit` as history.
      const { last_seq } = await store.readEvents({ account_id, after_seq: 0, types: null, limit: 0 });
      pos[account_id] = last_seq;
      after = Math.max(0, last_seq - limit);
    }
    const { events } = await store.readEvents({ account_id, after_seq: after, types: null, limit });
    for (const e of events) found.push(e);
  }
  found.sort(byTime);
  // History on the first call is the newest `limit`; later calls hand out the oldest unseen first.
  const shown = fresh ? found.slice(-limit) : found.slice(0, limit);
  // Advance each account past what it handed out (and, later, past what it read and did not show).
  for (const e of shown) pos[e.account_id] = Math.max(pos[e.account_id] ?? 0, e.seq);
  return shown.filter((e) => types === null || types.has(e.msg_type));
}

// ------------------------------------------------------------------ routes

export function operatorRoutes(app: FastifyInstance, deps: { store: Store; metrics: GatewayMetrics; nodeId: string; isShuttingDown: () => boolean }): void {
  const { store, metrics, nodeId } = deps;
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.get(
    '/stats',
    { schema: { ...ADMIN, tags: ['Operator'], summary: "This node's counters and gauges (what /metrics exposes), as JSON", response: { 200: json('Stats', Stats), ...ADMIN_ERRORS } } },
    async () => collectStats(metrics, nodeId),
  );

  routes.get(
    '/samples',
    {
      schema: {
        ...ADMIN,
        tags: ['Operator'],
        summary: 'A valid sample payload of every event type',
        response: {
          200: json('Samples by event type', z.object({ samples: Samples })),
          ...ADMIN_ERRORS,
        },
      },
    },
    async () => ({
      samples: Object.fromEntries(EVENT_TYPES.map((t) => [t, samplePayload(t)])) as z.infer<typeof Samples>,
    }),
  );

  routes.post(
    '/events/tail',
    {
      schema: {
        ...ADMIN,
        tags: ['Operator'],
        summary: 'Long-poll the event log of every node (the live tail of the console)',
        body: TailBody,
        response: {
          200: json('Events after the cursor, oldest first', TailAnswer),
          400: errorReply('VALIDATION_FAILED (fields), e.g. a cursor this server did not return, or INVALID_JSON'),
          404: errorReply('NOT_FOUND: no such account'),
          ...BODY_ERRORS,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const body = request.body;
      const limit = body.limit ?? 100;
      const types = body.types?.length ? new Set(body.types) : null;
      const waitMs = body.wait_ms ?? 20_000;
      let accountIds: string[];
      let accountsTotal: number;
      if (body.account_id) {
        if (!(await store.getAccount(body.account_id))) throw new HttpError(404, 'NOT_FOUND', 'Account not found');
        accountIds = [body.account_id];
        accountsTotal = 1;
      } else {
        const accounts = await store.listAccounts({ limit: TAIL_MAX_ACCOUNTS + 1 });
        accountsTotal = accounts.length;
        accountIds = accounts.slice(0, TAIL_MAX_ACCOUNTS).map((a) => a.account_id);
      }
      const fresh = body.cursor === undefined;
      const pos = fresh ? {} : decodeCursor(body.cursor!);
      let gone = false;
      request.raw.once('close', () => (gone = true));
      const deadline = Date.now() + waitMs;
      const pollMs = accountIds.length > 1 ? 1000 : 500;
      let events = await readTail(store, accountIds, pos, fresh, types, limit);
      // Long poll: wait for something new, re-reading the store (any node's publishes land there).
      while (!fresh && events.length === 0 && Date.now() < deadline && !gone && !deps.isShuttingDown()) {
        await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
        if (gone) break;
        events = await readTail(store, accountIds, pos, false, types, limit);
      }
      return {
        events: events.map(presentEvent),
        cursor: encodeCursor(pos),
        accounts_scanned: accountIds.length,
        // True when there are more accounts than one tail scans: choose an account to see them all.
        accounts_truncated: accountsTotal > TAIL_MAX_ACCOUNTS,
      };
    },
  );
}
