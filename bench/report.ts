/**
 * The report: the peer table of issue 13 (every row for nchan, bare ws and tpx, and tpx against
 * the best peer), the verdict of each target as a ratio measured in the same run, synced vs
 * relaxed durability (issue 10), the cluster figures, and the soak.
 */
import type { PeerKind } from './lib/children.js';
import { med, type Figure } from './lib/repeat.js';
import type { ClusterResult } from './suites/cluster.js';
import type { DurabilityResult } from './suites/durability.js';
import type { PeerResult } from './suites/peers.js';
import type { SoakOutcome } from './scenarios.js';

export const PEER_ORDER: PeerKind[] = ['nchan', 'ws', 'tpx'];
export const PEER_LABEL: Record<PeerKind, string> = { nchan: 'nchan', ws: 'bare ws', tpx: 'tpx' };

export interface PeerRow {
  id: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  values: Partial<Record<PeerKind, number | null>>;
  /** min–max across repeats, per peer. */
  spread: Partial<Record<PeerKind, [number, number] | null>>;
  best: PeerKind | null;
  /** tpx ÷ the best other peer (for `higher` rows: best ÷ tpx, so > 1 is always worse). */
  tpx_vs_best: number | null;
  best_other: PeerKind | null;
}

export interface Verdict {
  id: string;
  /** e.g. "tpx/nchan CPU per msg N=1,000". */
  label: string;
  value: number | null;
  /** e.g. "≤ 1.00". */
  target: string;
  /** `×` for a ratio measured in the run; otherwise the unit of an absolute target. */
  unit: string;
  met: boolean | null;
  /** Why it could not be judged, when met is null. */
  note?: string;
  source: 'issue 13' | 'issue 10' | 'SPEC §7' | 'bench';
}

function round(v: number, d: number): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

function spreadOf(f: Figure | undefined): [number, number] | null {
  return f && f.min !== null && f.max !== null ? [f.min, f.max] : null;
}

type Pick = (p: PeerResult) => { value: number | null; figure?: Figure };

function row(peers: Partial<Record<PeerKind, PeerResult>>, id: string, label: string, unit: string, better: 'lower' | 'higher', pick: Pick): PeerRow {
  const values: PeerRow['values'] = {};
  const spread: PeerRow['spread'] = {};
  for (const k of PEER_ORDER) {
    const p = peers[k];
    if (!p || p.error) continue;
    const v = pick(p);
    values[k] = v.value;
    spread[k] = spreadOf(v.figure);
  }
  const present = PEER_ORDER.filter((k) => typeof values[k] === 'number');
  const cmp = (a: number, b: number) => (better === 'lower' ? a - b : b - a);
  const best = present.length ? present.reduce((a, b) => (cmp(values[a]!, values[b]!) <= 0 ? a : b)) : null;
  const others = present.filter((k) => k !== 'tpx');
  const bestOther = others.length ? others.reduce((a, b) => (cmp(values[a]!, values[b]!) <= 0 ? a : b)) : null;
  const t = values.tpx;
  let vs: number | null = null;
  if (typeof t === 'number' && bestOther && values[bestOther]) {
    vs = better === 'lower' ? t / values[bestOther]! : values[bestOther]! / t;
    vs = round(vs, 3);
  }
  return { id, label, unit, better, values, spread, best, tpx_vs_best: vs, best_other: bestOther };
}

const fig = (r: { figures: Record<string, Figure> } | undefined, field: string): { value: number | null; figure?: Figure } => ({
  value: r?.figures[field]?.median ?? null,
  figure: r?.figures[field],
});

export function peerRows(peers: Partial<Record<PeerKind, PeerResult>>, plan: { big: number; small: number; connect_clients: number; latency_rates: number[] }): PeerRow[] {
  const n = (v: number) => v.toLocaleString('en-US');
  const low = plan.latency_rates[0];
  const rows: PeerRow[] = [
    row(peers, 'cpu_small_max', `server CPU µs per msg, N=${n(plan.small)}, max rate`, 'µs', 'lower', (p) => fig(p.fanout?.[String(plan.small)], 'cpu_us_per_msg')),
    row(peers, 'cpu_big_max', `server CPU µs per msg, N=${n(plan.big)}, max rate`, 'µs', 'lower', (p) => fig(p.fanout?.[String(plan.big)], 'cpu_us_per_msg')),
    row(peers, 'cpu_small_low', `server CPU µs per msg, N=${n(plan.small)}, ${low} ev/s`, 'µs', 'lower', (p) => fig(p.latency?.[String(low)], 'cpu_us_per_msg')),
  ];
  for (const rate of plan.latency_rates) {
    rows.push(row(peers, `p50_${rate}`, `latency p50 ms, N=${n(plan.small)}, ${rate} ev/s`, 'ms', 'lower', (p) => fig(p.latency?.[String(rate)], 'p50_ms')));
    rows.push(row(peers, `p99_${rate}`, `latency p99 ms, N=${n(plan.small)}, ${rate} ev/s`, 'ms', 'lower', (p) => fig(p.latency?.[String(rate)], 'p99_ms')));
  }
  rows.push(
    row(peers, 'connect_rate', `connect+auth+subscribe /s (${n(plan.connect_clients)} clients)`, '/s', 'higher', (p) => fig(p.connect, 'per_sec')),
    row(peers, 'connect_cpu', 'server CPU µs per connect', 'µs', 'lower', (p) => fig(p.connect, 'server_cpu_us_per_conn')),
    row(peers, 'rss_per_conn', `idle RSS per connection (${n(plan.big)})`, 'KiB', 'lower', (p) => ({
      value: p.memory ? round(p.memory.rss_per_conn_bytes / 1024, 2) : null,
    })),
    row(peers, 'rss_before', 'server RSS before any connection', 'MiB', 'lower', (p) => ({
      value: typeof p.rss_before_bytes === 'number' ? round(p.rss_before_bytes / 1048576, 1) : null,
    })),
    row(peers, 'missing', 'frames missing (all windows)', 'msgs', 'lower', (p) => {
      let total = 0;
      let any = false;
      for (const r of [...Object.values(p.fanout ?? {}), ...Object.values(p.latency ?? {})]) {
        for (const run of r.runs) {
          total += run.missing;
          any = true;
        }
      }
      return { value: any ? total : null };
    }),
  );
  return rows;
}

function verdict(
  id: string,
  label: string,
  value: number | null,
  op: '<=' | '>=',
  target: number,
  source: Verdict['source'],
  note?: string,
  unit = '×',
): Verdict {
  const met = value === null ? null : op === '<=' ? value <= target : value >= target;
  const text = target >= 100 ? target.toLocaleString('en-US') : target.toFixed(2);
  return { id, label, value, target: `${op === '<=' ? '≤' : '≥'} ${text}`, unit, met, source, ...(value === null ? { note: note ?? 'not measured' } : {}) };
}

export function peerVerdicts(
  rows: PeerRow[],
  peers: Partial<Record<PeerKind, PeerResult>>,
  plan: { small: number; big: number; latency_rates: number[] },
): Verdict[] {
  const get = (id: string) => rows.find((r) => r.id === id);
  const n = (v: number) => v.toLocaleString('en-US');
  const ratio = (id: string, over: PeerKind): number | null => {
    const r = get(id);
    const t = r?.values.tpx;
    const o = r?.values[over];
    if (typeof t !== 'number' || typeof o !== 'number' || o === 0) return null;
    return round(t / o, 3);
  };
  const noNchan = peers.nchan ? (peers.nchan.error ? 'nchan failed' : undefined) : 'nchan not run';
  const out: Verdict[] = [
    verdict('cpu_small_max', `tpx/nchan CPU per msg N=${n(plan.small)} max rate`, ratio('cpu_small_max', 'nchan'), '<=', 1, 'issue 13', noNchan),
    verdict('cpu_big_max', `tpx/nchan CPU per msg N=${n(plan.big)} max rate`, ratio('cpu_big_max', 'nchan'), '<=', 1, 'issue 13', noNchan),
  ];
  out.push(verdict('cpu_small_low', `tpx/nchan CPU per msg N=${n(plan.small)} × ${plan.latency_rates[0]} ev/s`, ratio('cpu_small_low', 'nchan'), '<=', 1, 'issue 13', noNchan));
  for (const r of rows.filter((x) => /^p(50|99)_/.test(x.id))) {
    const other = r.best_other ? PEER_LABEL[r.best_other] : 'best peer';
    out.push(verdict(r.id, `tpx/${other} ${r.label.replace(/ ms,/, ',')}`, r.tpx_vs_best, '<=', 1, 'issue 13'));
  }
  out.push(verdict('connect_cpu', 'tpx/bare ws server CPU per connect', ratio('connect_cpu', 'ws'), '<=', 1, 'issue 13'));
  out.push(verdict('connect_rate', 'tpx/bare ws connects per second', ratio('connect_rate', 'ws'), '>=', 1, 'issue 13'));
  out.push(verdict('rss_per_conn', 'tpx idle RSS per connection', get('rss_per_conn')?.values.tpx ?? null, '<=', 5.6, 'issue 13', undefined, 'KiB'));
  out.push(verdict('rss_before', 'tpx RSS before any connection', get('rss_before')?.values.tpx ?? null, '<=', 60, 'issue 13', undefined, 'MiB'));
  return out;
}

export function soakVerdict(soak: SoakOutcome | undefined, note: string): Verdict {
  return verdict('soak_fast_p99', 'soak: worst 10 s window of fast consumers’ p99 ÷ quiet p99', soak?.worst_window_vs_quiet ?? null, '<=', 2, 'issue 13', note);
}

export function durabilityVerdicts(d: DurabilityResult | undefined, rates: number[]): Verdict[] {
  const s = d?.modes.synced;
  const r = d?.modes.relaxed;
  const note = d?.error ? 'durability suite failed' : 'durability not run';
  const out: Verdict[] = [verdict('batch_synced', 'batched publish, synced', med(s?.publish_batch, 'events_per_sec'), '>=', 20_000, 'issue 10', note, 'ev/s')];
  for (const rate of rates) {
    const a = med(s?.latency[String(rate)], 'p50_ms');
    const b = med(r?.latency[String(rate)], 'p50_ms');
    out.push(
      verdict(`p50_gap_${rate}`, `latency p50 synced − relaxed, ${rate} ev/s`, a !== null && b !== null ? round(a - b, 3) : null, '<=', 1.5, 'issue 10', note, 'ms'),
    );
  }
  return out;
}

export function clusterVerdicts(c: ClusterResult | undefined): Verdict[] {
  const note = c?.error ? 'cluster suite failed' : 'cluster not run';
  const w = c?.windows ?? [];
  const seqOk = w.length ? (w.every((x) => x.seq_ok) ? 1 : 0) : null;
  const h1 = w.find((x) => x.holding === 1 && x.publish_on.length === 1);
  const hn = w.filter((x) => x.publish_on.length === 1).at(-1);
  const scaling = h1 && hn && hn.redis.out_bytes_per_event > 0 && hn !== h1 ? round(h1.redis.out_bytes_per_event / hn.redis.out_bytes_per_event, 3) : null;
  return [
    verdict('cluster_seq', 'cluster: seq order kept, nothing missing (1 = yes)', seqOk, '>=', 1, 'SPEC §7', note, ''),
    verdict(
      'cluster_redis_scaling',
      `cluster: Redis bytes out per event, 1 node holding ÷ ${hn?.holding ?? 'all'} holding (O(nodes) would be 1)`,
      scaling,
      '<=',
      0.5,
      'issue 13',
      note,
    ),
  ];
}

/** The default suite (no --quick, no soak, every scenario) must stay under ten minutes on the 2-core reference VM. */
export function runTimeVerdict(seconds: number, fullDefault: boolean): Verdict[] {
  return fullDefault ? [verdict('run_wall', 'whole run, default suite', Math.round(seconds), '<=', 600, 'bench', undefined, 's')] : [];
}

// ---- text output -----------------------------------------------------------------------------------

export function fmtValue(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return '—';
  if (unit === '/s' || unit === 'msgs' || Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return String(Math.round(v));
  if (Math.abs(v) >= 10) return String(round(v, 1));
  return String(round(v, 2));
}

function table(rows: string[][], rightCols: Set<number>): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (rightCols.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function formatPeerTable(rows: PeerRow[], kinds: PeerKind[]): string {
  const head = ['per delivered message / connection', ...kinds.map((k) => PEER_LABEL[k]), 'tpx vs best'];
  const body = rows.filter((r) => kinds.some((k) => typeof r.values[k] === 'number')).map((r) => {
    const cells = kinds.map((k) => {
      const v = fmtValue(r.values[k], r.unit);
      return r.best === k && kinds.length > 1 && v !== '—' ? `*${v}` : v;
    });
    let vs = '—';
    if (r.tpx_vs_best !== null && r.best_other) vs = r.best === 'tpx' ? `best (${round(r.tpx_vs_best, 2)}× ${PEER_LABEL[r.best_other]})` : `${round(r.tpx_vs_best, 2)}× ${PEER_LABEL[r.best_other]}`;
    return [r.label, ...cells, vs];
  });
  return table([head, ...body], new Set(kinds.map((_, i) => i + 1)));
}

export function formatVerdicts(vs: Verdict[]): string {
  return vs
    .map((v) => {
      const val = v.value === null ? 'not measured' : v.unit === '×' ? `${v.value.toFixed(2)}×` : `${fmtValue(v.value, '')}${v.unit ? ' ' + v.unit : ''}`;
      const state = v.met === null ? `UNKNOWN (${v.note})` : v.met ? 'met' : 'MISSED';
      return `  ${v.label}: ${val} (target ${v.target}${v.unit && v.unit !== '×' ? ' ' + v.unit : ''}) ${state}`;
    })
    .join('\n');
}

export function formatDurability(d: DurabilityResult, rates: number[]): string {
  const s = d.modes.synced;
  const r = d.modes.relaxed;
  const rows: string[][] = [['tpx, N=' + d.connections.toLocaleString('en-US') + ' subscribers of one account', 'synced', 'relaxed', 'synced/relaxed']];
  const add = (label: string, a: number | null, b: number | null, unit = '') => {
    rows.push([label, fmtValue(a, unit), fmtValue(b, unit), a !== null && b ? `${round(a / b, 2)}×` : '—']);
  };
  for (const rate of rates) {
    add(`latency p50 ms, ${rate} ev/s`, med(s?.latency[String(rate)], 'p50_ms'), med(r?.latency[String(rate)], 'p50_ms'));
    add(`latency p99 ms, ${rate} ev/s`, med(s?.latency[String(rate)], 'p99_ms'), med(r?.latency[String(rate)], 'p99_ms'));
  }
  add('publish events/s, single', med(s?.publish_single, 'events_per_sec'), med(r?.publish_single, 'events_per_sec'), '/s');
  add(`publish events/s, batched`, med(s?.publish_batch, 'events_per_sec'), med(r?.publish_batch, 'events_per_sec'), '/s');
  add('publish response p50 ms, single', med(s?.publish_single, 'response_p50_ms'), med(r?.publish_single, 'response_p50_ms'));
  add('fan-out server CPU µs per msg, max rate', med(s?.fanout, 'cpu_us_per_msg'), med(r?.fanout, 'cpu_us_per_msg'));
  return table(rows, new Set([1, 2, 3]));
}

export function formatCluster(c: ClusterResult, singleNodeCpu: number | null): string {
  const rows: string[][] = [['window', 'node', 'subscribers', 'CPU µs/msg', 'vs single', 'CPU µs/event (net of idle)', 'p50 ms', 'p99 ms', 'seq']];
  for (const w of c.windows) {
    const name = w.publish_on.length > 1 ? `publish on ${w.publish_on.join('+')}` : `${w.holding} holding, publish on ${w.publish_on[0]}`;
    for (const n of w.nodes) {
      rows.push([
        name,
        n.node,
        n.connections.toLocaleString('en-US'),
        fmtValue(n.cpu_us_per_msg, ''),
        n.cpu_us_per_msg !== null && singleNodeCpu ? `${round(n.cpu_us_per_msg / singleNodeCpu, 2)}×` : '—',
        `${fmtValue(n.cpu_us_per_event, '')} (${fmtValue(n.net_cpu_us_per_event, '')})`,
        fmtValue(n.latency?.p50_ms, ''),
        fmtValue(n.latency?.p99_ms, ''),
        n.connections ? (n.seq_gaps || n.seq_dups || n.missing ? `gaps ${n.seq_gaps} dups ${n.seq_dups} missing ${n.missing}` : 'ok') : '',
      ]);
    }
  }
  const redisRows: string[][] = [
    ['nodes holding the account', 'Redis cmds/event', 'PUBLISH/event', 'bytes in/event', 'bytes out/event', 'Redis CPU µs/event*', 'PostgreSQL CPU µs/event*', 'PG statements/event*'],
  ];
  for (const w of c.windows.filter((x) => x.publish_on.length === 1)) {
    redisRows.push([
      `${w.holding} of ${c.nodes}`,
      fmtValue(w.redis.commands_per_event, ''),
      fmtValue(w.redis.publish_per_event, ''),
      fmtValue(w.redis.in_bytes_per_event, 'msgs'),
      fmtValue(w.redis.out_bytes_per_event, 'msgs'),
      fmtValue(w.redis_cpu_us_per_event, ''),
      fmtValue(w.postgres_cpu_us_per_event, ''),
      fmtValue(w.postgres_statements_per_event_net, ''),
    ]);
  }
  const idle = c.idle
    ? `\n* net of the idle cost, measured with nothing published: CPU (µs/s) ${Object.entries(c.idle.nodes)
        .map(([n, v]) => `node ${n} ${v}`)
        .join(', ')}, PostgreSQL ${c.idle.postgres}, Redis ${c.idle.redis}; PostgreSQL statements/s ${c.idle.postgres_statements_per_sec}`
    : '';
  const last = c.windows.filter((x) => x.publish_on.length === 1).at(-1);
  const top = last?.postgres_top.length
    ? `\nPostgreSQL statements per event (${last.holding} holding, all nodes, gross): ` + last.postgres_top.slice(0, 5).map((t) => `${t.calls}× ${t.query.slice(0, 70)}`).join(' | ')
    : '';
  return table(rows, new Set([2, 3, 4, 5, 6, 7])) + '\n\n' + table(redisRows, new Set([1, 2, 3, 4, 5, 6, 7])) + idle + top;
}
