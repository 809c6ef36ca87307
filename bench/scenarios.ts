/**
 * The measured scenarios. Each one runs against one server (a peer: nchan, bare ws, tpx; or one
 * node of a cluster) with the same load generator and publisher, and returns plain numbers;
 * bench/suites/* and bench/report.ts pair them up.
 *
 * CPU per delivered message is read from /proc (utime+stime of every thread of every process of
 * the server's tree) over the whole window: from the first publish until every expected frame
 * arrived (or delivery stalled), so work queued inside the server is charged to the messages it
 * produced.
 */
import { Hist, type LatencySummary } from './lib/hist.js';
import { CpuMeter, HostCpu, treeMemory } from './lib/proc.js';
import { sleep, type BenchAccount, type BenchServer, type Loadgen, type Publisher } from './lib/children.js';
import type { ConnectSpec, StatsResult } from './lib/messages.js';
import type { PublishResult, PublishRun } from './publisher.js';

export interface Rig {
  server: BenchServer;
  loadgen: Loadgen;
  publisher: Publisher;
  accounts: BenchAccount[];
  payload: Record<string, unknown>;
  localAddresses: string[];
  log(msg: string): void;
}

export function connectSpec(rig: Rig, start: number, end: number, accounts: BenchAccount[], extra: Partial<ConnectSpec> = {}): ConnectSpec {
  const nchan = rig.server.protocol === 'nchan';
  return {
    host: '127.0.0.1',
    port: rig.server.port,
    paths: accounts.map((a) => rig.server.wsPath(a.account_id)),
    tokens: accounts.map((a) => a.token),
    handshakeOnly: nchan,
    checkSeq: !nchan,
    rooms: ['ALL'],
    start,
    end,
    concurrency: 512,
    slowEvery: 0,
    slowReadBytesPerSec: 0,
    slowReconnectMs: 0,
    localAddresses: rig.localAddresses,
    timeoutMs: 120_000,
    ...extra,
  };
}

export function publishRun(rig: Rig, over: Partial<PublishRun>): PublishRun {
  return {
    origin: rig.server.origin,
    adminToken: rig.server.adminToken,
    format: rig.server.protocol,
    batch: 1,
    mode: 'max',
    concurrency: 8,
    rate: 0,
    durationMs: 1000,
    maxEvents: 10_000_000,
    msgType: 'BID_REQUEST',
    target: { broadcast: true },
    payload: rig.payload,
    ...over,
  };
}

/** Wait until the load generator saw `expected` more event frames than `base`, or delivery stalls. */
export async function drain(rig: Rig, base: number, expected: number, stallMs: number, maxMs: number): Promise<StatsResult> {
  const t0 = performance.now();
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const s = await rig.loadgen.stats();
    const got = s.events - base;
    if (got >= expected) return s;
    if (got !== last) {
      last = got;
      lastChange = performance.now();
    }
    const now = performance.now();
    if (now - lastChange > stallMs || now - t0 > maxMs) return s;
    await sleep(expected - got > 100_000 ? 100 : 20);
  }
}

/** Response statuses other than 2xx (accepted), by status or error code. */
function failures(statuses: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(statuses)) if (!/^2\d\d$/.test(k)) out[k] = v;
  return out;
}

function closesSince(s1: StatsResult, s0: StatsResult): Record<string, number> {
  return diffCounts(s1.closes_fast, s0.closes_fast);
}

// ---- connection rate + idle memory --------------------------------------------------------------

export interface ConnectOutcome {
  clients: number;
  ready: number;
  failed: number;
  failures: Record<string, number>;
  elapsed_ms: number;
  per_sec: number;
  setup_ms: LatencySummary;
  server_cpu_us_per_conn: number;
  server_cpu_cores: number;
  loadgen_cpu_cores: number;
}

export async function connectPhase(rig: Rig, start: number, end: number, accounts: BenchAccount[], extra: Partial<ConnectSpec> = {}): Promise<ConnectOutcome> {
  const cpu = new CpuMeter(rig.server.pid, true);
  const lg = new CpuMeter(rig.loadgen.pid);
  cpu.start();
  lg.start();
  const r = await rig.loadgen.connect(connectSpec(rig, start, end, accounts, extra));
  const c = cpu.stop();
  const l = lg.stop();
  const setup = new Hist();
  setup.merge(r.setup);
  return {
    clients: r.requested,
    ready: r.ready,
    failed: r.failed,
    failures: r.failures,
    elapsed_ms: Math.round(r.elapsed_ms),
    per_sec: r.elapsed_ms > 0 ? Math.round((r.ready / r.elapsed_ms) * 1000) : 0,
    setup_ms: setup.summaryMs(),
    server_cpu_us_per_conn: r.ready ? Math.round((c.cpu_us / r.ready) * 10) / 10 : 0,
    server_cpu_cores: round(c.cores, 2),
    loadgen_cpu_cores: round(l.cores, 2),
  };
}

export interface MemorySample {
  rss: number;
  heap_used: number | null;
  external: number | null;
  array_buffers: number | null;
}

/** After a full GC where the server has one (Node): resident memory of its process tree, and its heap. */
export async function memorySample(rig: Rig): Promise<MemorySample> {
  const p = await rig.server.probe();
  const m = treeMemory(rig.server.pid);
  return { rss: m.rss, heap_used: p?.heapUsed ?? null, external: p?.external ?? null, array_buffers: p?.arrayBuffers ?? null };
}

export interface MemoryOutcome {
  connections: number;
  before: MemorySample;
  after: MemorySample;
  rss_per_conn_bytes: number;
  heap_per_conn_bytes: number | null;
  external_per_conn_bytes: number | null;
}

export function memoryOutcome(connections: number, before: MemorySample, after: MemorySample): MemoryOutcome {
  const per = (a: number | null, b: number | null) => (a === null || b === null || connections === 0 ? null : Math.round((b - a) / connections));
  return {
    connections,
    before,
    after,
    rss_per_conn_bytes: per(before.rss, after.rss) ?? 0,
    heap_per_conn_bytes: per(before.heap_used, after.heap_used),
    external_per_conn_bytes: per(before.external, after.external),
  };
}

// ---- fan-out -------------------------------------------------------------------------------------

export interface FanoutOutcome {
  connections: number;
  window_ms: number;
  events_published: number;
  publish_per_sec: number;
  expected: number;
  delivered: number;
  missing: number;
  delivered_per_sec: number;
  /** Bytes received per delivered frame (WebSocket header included). */
  frame_bytes: number;
  server_cpu_us: number;
  server_cpu_cores: number;
  cpu_us_per_msg: number;
  /** Split of cpu_us_per_msg: JS + libuv in user space vs. the kernel (socket writes, loopback TCP). */
  user_us_per_msg: number;
  sys_us_per_msg: number;
  /** write-family system calls per delivered message (/proc/<pid>/io syscw). */
  writes_per_msg: number;
  loadgen_cpu_cores: number;
  publisher_cpu_cores: number;
  /** Whole host: busy cores, softirq cores, and cores used by processes outside the benchmark. */
  host_busy_cores: number;
  host_softirq_cores: number;
  other_cores: number;
  seq_gaps: number;
  seq_dups: number;
  closes: Record<string, number>;
  publish_errors: Record<string, number>;
  first_error: string | null;
}

export async function fanout(
  rig: Rig,
  opts: { connections: number; windowMs: number; warmupMs: number; concurrency: number; target: PublishRun['target'] },
): Promise<FanoutOutcome> {
  const { connections } = opts;
  // Warm-up (JIT, caches), then let it drain completely.
  const w0 = await rig.loadgen.stats();
  const warm = await rig.publisher.run(publishRun(rig, { durationMs: opts.warmupMs, concurrency: opts.concurrency, target: opts.target }));
  await drain(rig, w0.events, warm.events_accepted * connections, 3000, 60_000);

  const s0 = await rig.loadgen.stats();
  const server = new CpuMeter(rig.server.pid, true);
  const lg = new CpuMeter(rig.loadgen.pid);
  const pub = new CpuMeter(rig.publisher.pid);
  const host = new HostCpu();
  host.start();
  server.start();
  lg.start();
  pub.start();
  const res: PublishResult = await rig.publisher.run(
    publishRun(rig, { durationMs: opts.windowMs, concurrency: opts.concurrency, target: opts.target }),
  );
  const expected = res.events_accepted * connections;
  const s1 = await drain(rig, s0.events, expected, 3000, 60_000);
  const c = server.stop();
  const l = lg.stop();
  const p = pub.stop();
  const h = host.stop();
  const delivered = s1.events - s0.events;
  return {
    connections,
    window_ms: Math.round(c.wall_ms),
    events_published: res.events_accepted,
    publish_per_sec: Math.round((res.events_accepted / res.elapsed_ms) * 1000),
    expected,
    delivered,
    missing: Math.max(0, expected - delivered),
    delivered_per_sec: Math.round((delivered / c.wall_ms) * 1000),
    frame_bytes: delivered ? Math.round((s1.bytes - s0.bytes) / delivered) : 0,
    server_cpu_us: Math.round(c.cpu_us),
    server_cpu_cores: round(c.cores, 2),
    cpu_us_per_msg: delivered ? round(c.cpu_us / delivered, 3) : 0,
    user_us_per_msg: delivered ? round(c.user_us / delivered, 3) : 0,
    sys_us_per_msg: delivered ? round(c.sys_us / delivered, 3) : 0,
    writes_per_msg: delivered ? round(c.write_calls / delivered, 4) : 0,
    loadgen_cpu_cores: round(l.cores, 2),
    publisher_cpu_cores: round(p.cores, 2),
    host_busy_cores: round(h.busy_cores, 2),
    host_softirq_cores: round(h.softirq_cores, 2),
    other_cores: round(Math.max(0, h.busy_cores - h.softirq_cores - c.cores - l.cores - p.cores - h.orchestrator_cores), 2),
    seq_gaps: s1.seq_gaps - s0.seq_gaps,
    seq_dups: s1.seq_dups - s0.seq_dups,
    closes: closesSince(s1, s0),
    publish_errors: failures(res.statuses),
    first_error: res.first_error,
  };
}

// ---- latency at a fixed rate ---------------------------------------------------------------------

export interface LatencyOutcome extends LatencySummary {
  connections: number;
  rate: number;
  window_ms: number;
  events_published: number;
  expected: number;
  delivered: number;
  missing: number;
  skipped: number;
  server_cpu_cores: number;
  /** Server CPU per delivered frame at this fixed rate (nothing to coalesce at low rates). */
  cpu_us_per_msg: number;
  user_us_per_msg: number;
  sys_us_per_msg: number;
  writes_per_msg: number;
  loadgen_cpu_cores: number;
  host_busy_cores: number;
  /** Cores used by processes outside the benchmark during the window (noise indicator). */
  other_cores: number;
  publish_response_p50_ms: number | null;
  publish_response_p99_ms: number | null;
  /** The server's own event-loop delay during the window (perf_hooks, 1 ms resolution). */
  server_loop_delay_p99_ms: number | null;
  server_loop_delay_max_ms: number | null;
  /** GC pauses in the server during the window (longest, and total). */
  server_gc_max_ms: number | null;
  server_gc_max_kind: string | null;
  server_gc_total_ms: number | null;
  seq_gaps: number;
  seq_dups: number;
  closes: Record<string, number>;
  publish_errors: Record<string, number>;
}

export async function latency(
  rig: Rig,
  opts: { connections: number; rate: number; windowMs: number; warmupMs: number; target: PublishRun['target'] },
): Promise<LatencyOutcome> {
  await rig.loadgen.latency(true);
  const w0 = await rig.loadgen.stats();
  const warm = await rig.publisher.run(
    publishRun(rig, { mode: 'rate', rate: opts.rate, durationMs: opts.warmupMs, concurrency: 16, target: opts.target }),
  );
  await drain(rig, w0.events, warm.events_accepted * opts.connections, 3000, 30_000);
  const s0 = await rig.loadgen.stats(true);
  await rig.server.loopDelay();
  const server = new CpuMeter(rig.server.pid, true);
  const lg = new CpuMeter(rig.loadgen.pid);
  const pub = new CpuMeter(rig.publisher.pid);
  const host = new HostCpu();
  host.start();
  server.start();
  lg.start();
  pub.start();
  const res = await rig.publisher.run(
    publishRun(rig, { mode: 'rate', rate: opts.rate, durationMs: opts.windowMs, concurrency: 16, target: opts.target }),
  );
  const expected = res.events_accepted * opts.connections;
  const s1 = await drain(rig, s0.events, expected, 3000, 30_000);
  const c = server.stop();
  const l = lg.stop();
  const p = pub.stop();
  const hc = host.stop();
  const eld = await rig.server.loopDelay();
  await rig.loadgen.latency(false);
  const h = new Hist();
  h.merge(s1.latency);
  const resp = new Hist();
  resp.merge(res.response);
  const delivered = s1.events - s0.events;
  const per = (v: number, digits = 3) => (delivered ? round(v / delivered, digits) : 0);
  return {
    connections: opts.connections,
    rate: opts.rate,
    window_ms: Math.round(c.wall_ms),
    events_published: res.events_accepted,
    expected,
    delivered,
    missing: Math.max(0, expected - delivered),
    skipped: res.skipped,
    server_cpu_cores: round(c.cores, 2),
    cpu_us_per_msg: per(c.cpu_us),
    user_us_per_msg: per(c.user_us),
    sys_us_per_msg: per(c.sys_us),
    writes_per_msg: per(c.write_calls, 4),
    loadgen_cpu_cores: round(l.cores, 2),
    host_busy_cores: round(hc.busy_cores, 2),
    other_cores: round(Math.max(0, hc.busy_cores - hc.softirq_cores - c.cores - l.cores - p.cores - hc.orchestrator_cores), 2),
    publish_response_p50_ms: resp.summaryMs().p50_ms,
    publish_response_p99_ms: resp.summaryMs().p99_ms,
    server_loop_delay_p99_ms: eld?.p99_ms ?? null,
    server_loop_delay_max_ms: eld?.max_ms ?? null,
    server_gc_max_ms: eld?.gc_max_ms ?? null,
    server_gc_max_kind: eld?.gc_max_kind ?? null,
    server_gc_total_ms: eld?.gc_total_ms ?? null,
    seq_gaps: s1.seq_gaps - s0.seq_gaps,
    seq_dups: s1.seq_dups - s0.seq_dups,
    closes: closesSince(s1, s0),
    publish_errors: failures(res.statuses),
    ...h.summaryMs(),
  };
}

// ---- publish API ---------------------------------------------------------------------------------

export interface PublishOutcome {
  batch: number;
  concurrency: number;
  window_ms: number;
  events_accepted: number;
  events_per_sec: number;
  requests_per_sec: number;
  response_p50_ms: number | null;
  response_p99_ms: number | null;
  server_cpu_cores: number;
  server_cpu_us_per_event: number;
  errors: Record<string, number>;
  first_error: string | null;
}

export async function publishApi(
  rig: Rig,
  opts: { batch: number; concurrency: number; windowMs: number; warmupMs: number; target: PublishRun['target'] },
): Promise<PublishOutcome> {
  await rig.publisher.run(publishRun(rig, { batch: opts.batch, concurrency: opts.concurrency, durationMs: opts.warmupMs, target: opts.target }));
  const server = new CpuMeter(rig.server.pid, true);
  server.start();
  const res = await rig.publisher.run(
    publishRun(rig, { batch: opts.batch, concurrency: opts.concurrency, durationMs: opts.windowMs, target: opts.target }),
  );
  const c = server.stop();
  const resp = new Hist();
  resp.merge(res.response);
  const s = resp.summaryMs();
  return {
    batch: opts.batch,
    concurrency: opts.concurrency,
    window_ms: Math.round(res.elapsed_ms),
    events_accepted: res.events_accepted,
    events_per_sec: Math.round((res.events_accepted / res.elapsed_ms) * 1000),
    requests_per_sec: Math.round((res.ok_requests / res.elapsed_ms) * 1000),
    response_p50_ms: s.p50_ms,
    response_p99_ms: s.p99_ms,
    server_cpu_cores: round(c.cores, 2),
    server_cpu_us_per_event: res.events_accepted ? round(c.cpu_us / res.events_accepted, 2) : 0,
    errors: failures(res.statuses),
    first_error: res.first_error,
  };
}

// ---- soak: fixed rate for a long time with 10 % slow consumers -----------------------------------

export interface SoakSample {
  /** Seconds since the phase started, at the end of this sample window. */
  t_s: number;
  rss: number;
  fast_p99_ms: number | null;
  fast_max_ms: number | null;
  /** fast_p99_ms ÷ the quiet p99 (soak phase only). */
  vs_quiet: number | null;
  fast_events: number;
  slow_open: number;
  reconnects: number;
}

export interface SoakOutcome {
  connections: number;
  slow_consumers: number;
  rate: number;
  /** Fast consumers alone, before any slow consumer connects: the reference p99. */
  quiet: { duration_ms: number; fast: LatencySummary; samples: SoakSample[] };
  duration_ms: number;
  events_published: number;
  fast_expected: number;
  fast_delivered: number;
  fast_missing: number;
  fast: LatencySummary;
  /** The worst sample window's fast p99 ÷ the quiet p99 (issue 13's target: ≤ 2 in every window). */
  worst_window_vs_quiet: number | null;
  windows_over_2x: number;
  fast_disconnects: Record<string, number>;
  slow_closes: Record<string, number>;
  slow_reconnects: number;
  /** Server-initiated closes by code during the soak (tpx /metrics tpx_ws_closes_total); null when not exposed. */
  server_closes: Record<string, number> | null;
  seq_gaps: number;
  rss_start: number;
  rss_end: number;
  rss_max: number;
  heap_start: number | null;
  heap_end: number | null;
  /** Growth of median RSS from the second quarter of the run to the last quarter. */
  rss_growth_pct: number;
  rss_slope_mib_per_min: number;
  samples: SoakSample[];
}

/** Publish at a fixed rate for `durationMs`, sampling fast consumers' p99 and RSS every `sampleMs`. */
async function sampledRun(
  rig: Rig,
  opts: { rate: number; durationMs: number; sampleMs: number; target: PublishRun['target']; quietP99: number | null; label: string },
): Promise<{ res: PublishResult; samples: SoakSample[]; total: Hist }> {
  const t0 = performance.now();
  const samples: SoakSample[] = [];
  const total = new Hist();
  const running = rig.publisher.run(
    publishRun(rig, { mode: 'rate', rate: opts.rate, durationMs: opts.durationMs, concurrency: 16, target: opts.target }),
  );
  let done = false;
  void running.finally(() => (done = true));
  let prev = (await rig.loadgen.stats(true)).fast_events;
  while (!done) {
    const until = performance.now() + opts.sampleMs;
    while (!done && performance.now() < until) await sleep(100);
    const s = await rig.loadgen.stats(true);
    const h = new Hist();
    h.merge(s.latency);
    total.merge(s.latency);
    const sum = h.summaryMs();
    const sample: SoakSample = {
      t_s: Math.round((performance.now() - t0) / 100) / 10,
      rss: treeMemory(rig.server.pid).rss,
      fast_p99_ms: sum.p99_ms,
      fast_max_ms: sum.max_ms,
      vs_quiet: opts.quietP99 && sum.p99_ms !== null ? round(sum.p99_ms / opts.quietP99, 2) : null,
      fast_events: s.fast_events - prev,
      slow_open: s.slow_open,
      reconnects: s.reconnects,
    };
    samples.push(sample);
    prev = s.fast_events;
    rig.log(
      `  ${opts.label} t=${sample.t_s}s rss=${mib(sample.rss)} MiB fast p99=${sum.p99_ms} ms` +
        (sample.vs_quiet !== null ? ` (${sample.vs_quiet}× quiet)` : '') +
        ` slow open=${s.slow_open} reconnects=${s.reconnects}`,
    );
  }
  return { res: await running, samples, total };
}

/**
 * The soak: first the fast consumers alone for `quietMs` (their quiet p99: the reference), then
 * the slow consumers (10 % of all) join and the same stream runs for `durationMs`. Every sample
 * window's fast p99 is reported against the quiet p99 (issue 13: it must never leave 2×).
 */
export async function soak(
  rig: Rig,
  opts: {
    connections: number;
    accounts: BenchAccount[];
    rate: number;
    durationMs: number;
    quietMs: number;
    sampleMs: number;
    slowReadBytesPerSec: number;
    target: PublishRun['target'];
  },
): Promise<SoakOutcome> {
  const slowCount = Math.floor(opts.connections / 10);
  const fastCount = opts.connections - slowCount;
  const fastConn = await connectPhase(rig, 0, fastCount, opts.accounts);
  await rig.loadgen.latency(true);
  rig.log(`  soak: ${fastConn.ready} fast consumers alone for ${opts.quietMs / 1000}s (quiet reference)`);
  const quiet = await sampledRun(rig, { ...opts, durationMs: opts.quietMs, quietP99: null, label: 'quiet' });
  await sleep(1000);
  quiet.total.merge((await rig.loadgen.stats(true)).latency);
  const quietSummary = quiet.total.summaryMs();
  const slowConn = await connectPhase(rig, fastCount, opts.connections, opts.accounts, {
    slowEvery: 1,
    slowReadBytesPerSec: opts.slowReadBytesPerSec,
    slowReconnectMs: 1000,
  });
  rig.log(`  soak: ${slowConn.ready} slow consumers joined; quiet fast p99 ${quietSummary.p99_ms} ms; ${opts.rate} events/s for ${opts.durationMs / 1000}s`);
  const m0 = await memorySample(rig);
  const s0 = await rig.loadgen.stats(true);
  const t0 = performance.now();
  const run = await sampledRun(rig, { ...opts, quietP99: quietSummary.p99_ms, label: 'soak' });
  await sleep(1000);
  const s1 = await rig.loadgen.stats(true);
  run.total.merge(s1.latency);
  await rig.loadgen.latency(false);
  const m1 = await memorySample(rig);
  const samples = run.samples;
  const rssList = samples.map((x) => x.rss);
  const q = Math.max(1, Math.floor(rssList.length / 4));
  const med = (a: number[]) => {
    const b = [...a].sort((x, y) => x - y);
    return b.length ? b[Math.floor(b.length / 2)] : 0;
  };
  const second = med(rssList.slice(q, 2 * q));
  const last = med(rssList.slice(-q));
  const half = samples.slice(Math.floor(samples.length / 2));
  const slope = linearSlope(half.map((x) => x.t_s / 60), half.map((x) => x.rss / 1048576));
  const ratios = samples.map((x) => x.vs_quiet).filter((x): x is number => x !== null);
  const fastExpected = run.res.events_accepted * fastConn.ready;
  const fastDelivered = s1.fast_events - s0.fast_events;
  return {
    connections: fastConn.ready + slowConn.ready,
    slow_consumers: slowConn.ready,
    rate: opts.rate,
    quiet: { duration_ms: opts.quietMs, fast: quietSummary, samples: quiet.samples },
    duration_ms: Math.round(performance.now() - t0),
    events_published: run.res.events_accepted,
    fast_expected: fastExpected,
    fast_delivered: fastDelivered,
    fast_missing: Math.max(0, fastExpected - fastDelivered),
    fast: run.total.summaryMs(),
    worst_window_vs_quiet: ratios.length ? Math.max(...ratios) : null,
    windows_over_2x: ratios.filter((r) => r > 2).length,
    fast_disconnects: diffCounts(s1.closes_fast, s0.closes_fast),
    slow_closes: diffCounts(s1.closes_slow, s0.closes_slow),
    slow_reconnects: s1.reconnects - s0.reconnects,
    server_closes: await serverCloses(rig),
    seq_gaps: s1.seq_gaps - s0.seq_gaps,
    rss_start: m0.rss,
    rss_end: m1.rss,
    rss_max: Math.max(m1.rss, ...rssList),
    heap_start: m0.heap_used,
    heap_end: m1.heap_used,
    rss_growth_pct: second ? round(((last - second) / second) * 100, 1) : 0,
    rss_slope_mib_per_min: round(slope, 2),
    samples,
  };
}

export function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) {
    const d = v - (b[k] ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

function linearSlope(x: number[], y: number[]): number {
  const n = x.length;
  if (n < 2) return 0;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (x[i] - mx) * (y[i] - my);
    den += (x[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function mib(bytes: number): number {
  return round(bytes / 1048576, 1);
}

/** Server-initiated closes by close code from the server's Prometheus /metrics (tpx only; null elsewhere). */
async function serverCloses(rig: Rig): Promise<Record<string, number> | null> {
  if (rig.server.kind !== 'tpx') return null;
  try {
    const res = await fetch(`${rig.server.origin}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    const text = await res.text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^tpx_ws_closes_total\{[^}]*code="(\d+)"[^}]*\}\s+(\d+(?:\.\d+)?)/gm)) {
      out[m[1]] = Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}
