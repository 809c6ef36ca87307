// @ts-check
/**
 * Overview: live charts of connections, events in/out per second, webhook delivery success rate
 * and latency, from GET /admin/stats polled every STATS_MS. The endpoint gives cumulative
 * counters; rates are the difference between two samples of the SAME node divided by the time
 * between them (behind a load balancer, consecutive polls may reach different nodes: each
 * node's previous sample is kept apart, and the node that answered is named).
 */
import { lineChart } from './chart.js';
import { h, replace } from './dom.js';

export const STATS_MS = 2000;
const WINDOW_MS = 5 * 60_000;

/**
 * @typedef {{ buckets: Array<[number | '+Inf', number]>, count: number, sum: number } | null} Histo
 * @typedef {{ node: string, at: string, uptime_s: number, connections: number, subscriptions: number,
 *   events_published_total: number, ws_events_sent_total: number,
 *   webhook_attempts_total: { succeeded: number, retry: number, failed: number },
 *   webhook_deliveries: { pending: number, failed: number },
 *   webhook_delivery_latency_seconds: Histo, webhook_attempt_duration_seconds: Histo, publish_to_send_seconds: Histo }} Stats
 */

/**
 * The q-quantile of the observations between two cumulative histograms (linear inside the
 * bucket, as Prometheus' histogram_quantile does); null when nothing was observed.
 * @param {Histo} now
 * @param {Histo} before
 * @param {number} q
 */
export function quantile(now, before, q) {
  if (!now || !before) return null;
  const total = now.count - before.count;
  if (total <= 0) return null;
  const target = q * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < now.buckets.length; i++) {
    const [le, cum] = now.buckets[i];
    const c = cum - (before.buckets[i]?.[1] ?? 0);
    if (c >= target) {
      if (le === '+Inf') return lower;
      return lower + ((le - lower) * (target - below)) / Math.max(1, c - below);
    }
    below = c;
    if (le !== '+Inf') lower = le;
  }
  return lower;
}

/*
 * Samples live as long as the tab (not the view): leaving the overview and coming back shows the
 * history gathered so far, with a gap for the time away.
 */
/** @type {Map<string, Stats>} previous sample per node */
const previous = new Map();
/** @type {Record<string, Array<[number, number | null]>>} */
const points = { connections: [], in: [], out: [], success: [], p50: [], p95: [] };
/** @type {Stats | null} */
let last = null;

/** @param {number} v */
const perSecond = (v) => (Number.isInteger(v) ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, '') || '0');
/** @param {number} s seconds */
const duration = (s) => (s >= 1 ? `${s.toFixed(s >= 10 ? 0 : 1)} s` : s === 0 ? '0 ms' : `${(s * 1000).toFixed(s >= 0.01 ? 0 : 1)} ms`);

/** @type {import('./app.js').View} */
export function renderOverview(root, ctx) {
  const charts = {
    connections: lineChart('chart-connections', { title: 'WebSocket connections', format: (v) => String(Math.round(v)), windowMs: WINDOW_MS }),
    events: lineChart('chart-events', { title: 'Events per second', format: perSecond, windowMs: WINDOW_MS }),
    success: lineChart('chart-success', { title: 'Webhook delivery success rate', format: (v) => `${Math.round(v)} %`, max: 100, windowMs: WINDOW_MS }),
    latency: lineChart('chart-latency', { title: 'Webhook delivery latency (accepted → 2xx)', format: duration, windowMs: WINDOW_MS }),
  };
  const tiles = h('div', { class: 'tiles', id: 'tiles' });
  const status = h('span', { class: 'muted', id: 'overview-status' }, 'Loading…');

  let busy = false;

  const sample = async () => {
    if (busy) return;
    busy = true;
    /** @type {Stats | undefined} */
    const s = await ctx.run(() => ctx.api('GET', '/admin/stats'));
    busy = false;
    if (!s) return;
    const t = Date.parse(s.at) || Date.now();
    // Back on the view after a while: break the lines instead of joining across the gap.
    if (last && t - Date.parse(last.at) > 3 * STATS_MS) for (const list of Object.values(points)) list.push([t - STATS_MS, null]);
    const before = previous.get(s.node);
    previous.set(s.node, s);
    last = s;
    points.connections.push([t, s.connections]);
    if (before) {
      const dt = (t - Date.parse(before.at)) / 1000;
      // A rate over minutes away from the view would be an average passed off as a sample.
      if (dt > 0 && dt <= (5 * STATS_MS) / 1000) {
        points.in.push([t, Math.max(0, s.events_published_total - before.events_published_total) / dt]);
        points.out.push([t, Math.max(0, s.ws_events_sent_total - before.ws_events_sent_total) / dt]);
        const a = s.webhook_attempts_total;
        const b = before.webhook_attempts_total;
        const ok = a.succeeded - b.succeeded;
        const all = ok + (a.retry - b.retry) + (a.failed - b.failed);
        points.success.push([t, all > 0 ? (100 * ok) / all : null]);
        points.p50.push([t, quantile(s.webhook_delivery_latency_seconds, before.webhook_delivery_latency_seconds, 0.5)]);
        points.p95.push([t, quantile(s.webhook_delivery_latency_seconds, before.webhook_delivery_latency_seconds, 0.95)]);
      }
    }
    const from = Date.now() - WINDOW_MS - STATS_MS;
    for (const list of Object.values(points)) while (list.length && list[0][0] < from) list.shift();
    draw();
  };

  const draw = () => {
    if (!last) return;
    charts.connections.update([{ name: 'open', cls: 's1', points: points.connections }]);
    charts.events.update([
      { name: 'in (published)', cls: 's1', points: points.in },
      { name: 'out (WebSocket frames)', cls: 's2', points: points.out },
    ]);
    charts.success.update([{ name: 'succeeded / attempts', cls: 's3', points: points.success }]);
    charts.latency.update([
      { name: 'p50', cls: 's1', points: points.p50 },
      { name: 'p95', cls: 's4', points: points.p95 },
    ]);
    const d = last.webhook_deliveries;
    replace(
      tiles,
      tile('Connections', String(last.connections), `${last.subscriptions} room subscriptions`),
      tile('Events published', String(last.events_published_total), 'since this node started'),
      tile('Pending deliveries', String(d.pending), 'all nodes (shared store)', d.pending > 0 ? 'warn' : ''),
      tile('Failed deliveries', String(d.failed), 'dead letters, all nodes', d.failed > 0 ? 'bad' : ''),
    );
    replace(status, 'Node ', h('strong', {}, last.node), ` · up ${uptime(last.uptime_s)} · sampled every ${STATS_MS / 1000} s · last ${new Date(Date.parse(last.at)).toLocaleTimeString()}`);
  };

  replace(
    root,
    h(
      'section',
      { class: 'card', id: 'overview' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Overview'), status),
      h('p', { class: 'muted small' }, 'Rates and latencies are those of the node that answers (named above); delivery backlogs are store-wide. For every node at once, scrape each node\'s /metrics (docs/deployment.md).'),
      tiles,
      h('div', { class: 'charts' }, charts.connections.el, charts.events.el, charts.success.el, charts.latency.el),
    ),
  );
  draw();
  void sample();
  const timer = setInterval(sample, STATS_MS);
  return () => clearInterval(timer);
}

/**
 * @param {string} label
 * @param {string} value
 * @param {string} note
 * @param {string} [kind]
 */
function tile(label, value, note, kind = '') {
  return h('div', { class: `tile ${kind}` }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'muted small' }, note));
}

/** @param {number} s */
function uptime(s) {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
