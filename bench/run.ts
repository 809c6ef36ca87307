/**
 * tpx benchmark orchestrator: `npm run bench`, `tpx bench`, or directly
 * `node --import tsx bench/run.ts [--quick] [--scenarios fanout,latency,...] [--soak-duration 10m]`.
 *
 * For each server (tpx on the embedded SQLite default, then the bare-ws baseline) it spawns the
 * server, a load-generator process (worker threads holding many lean sockets) and a publisher
 * process, runs the selected scenarios, and reports every figure absolute and as a ratio to the
 * baseline measured in the same run. Results: a table on stdout, JSON in bench/results/.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { samplePayload } from '@tpx-realtime/protocol';
import { runWebhookBaseline, type WebhookBaselineResult } from './webhook-baseline.js';
import { summarizeCpuProfile, type ProfileSummary } from './lib/cpuprofile.js';
import { HostCpu, memory } from './lib/proc.js';
import { IS_TS, Loadgen, Publisher, REPO_ROOT, ServerProc, benchFile, createAccounts, sleep, type ServerKind } from './lib/children.js';
import {
  connectPhase,
  fanout,
  latency,
  memoryOutcome,
  memorySample,
  publishApi,
  quietest,
  round,
  soak,
  type ConnectOutcome,
  type FanoutOutcome,
  type LatencyOutcome,
  type MemoryOutcome,
  type PublishOutcome,
  type Rig,
  type SoakOutcome,
} from './scenarios.js';

export const ALL_SCENARIOS = ['fanout', 'latency', 'memory', 'connect', 'publish', 'webhooks', 'soak'] as const;
export type ScenarioName = (typeof ALL_SCENARIOS)[number];
const DEFAULT_SCENARIOS: ScenarioName[] = ['fanout', 'latency', 'memory', 'connect', 'publish', 'webhooks'];

export interface BenchOptions {
  /** Scenarios to run (default: all but `soak`). Also accepted as a comma-separated `scenario` string. */
  scenarios?: string[] | string;
  scenario?: string;
  /** Smaller N and shorter windows (~1–2 minutes). */
  quick?: boolean;
  /** Also write the JSON report to this file. */
  out?: string;
  /** Load-generator worker threads (default 1 on ≤ 2 cores, else cores/2). */
  workers?: number;
  /** Soak duration (`10m`, `90s`, or ms). Default 10 minutes (2 with --quick). */
  soakDuration?: string | number;
  /** Baseline soak duration (default min(soak duration, 2 minutes)). */
  soakBaselineDuration?: string | number;
  /** Record a V8 CPU profile of the tpx server (written to .tmp/bench-profiles/) and summarise it. */
  profile?: boolean;
  /** Which servers to run: `tpx,baseline` (default). */
  servers?: string;
  /** Print progress lines (default true). */
  verbose?: boolean;
  /** Print the result table (default true). */
  table?: boolean;
  [k: string]: unknown;
}

export interface Metric {
  id: string;
  label: string;
  unit: string;
  tpx: number | null;
  baseline: number | null;
  /** tpx ÷ baseline. */
  ratio: number | null;
  target: string | null;
  met: boolean | null;
}

export interface BenchReport {
  tool: 'tpx-bench';
  version: 1;
  started_at: string;
  finished_at: string;
  duration_s: number;
  quick: boolean;
  scenarios: string[];
  host: { cpus: number; cpu_model: string; mem_gib: number; node: string; platform: string; kernel: string };
  plan: Plan;
  metrics: Metric[];
  targets: { met: number; missed: number; unknown: number };
  results: Record<string, Record<string, unknown>>;
  profile?: ProfileSummary | null;
  notes: string[];
}

interface Plan {
  big: number;
  small: number;
  accounts_big: number;
  accounts_small: number;
  connect_clients: number;
  fanout_window_ms: number;
  fanout_warmup_ms: number;
  fanout_concurrency: number;
  latency_rates: number[];
  latency_window_ms: number;
  latency_warmup_ms: number;
  publish_window_ms: number;
  publish_warmup_ms: number;
  publish_batch: number;
  publish_concurrency_single: number;
  publish_concurrency_batch: number;
  soak_connections: number;
  soak_rate: number;
  soak_duration_ms: number;
  soak_baseline_duration_ms: number;
  soak_sample_ms: number;
  /** Read rate of the slow consumers (about a tenth of what the soak stream sends each). */
  soak_slow_read_bytes_per_sec: number;
  workers: number;
}

function parseDurationMs(v: string | number | undefined, fallback: number): number {
  if (v === undefined || v === '' || typeof v === 'boolean') return fallback;
  if (typeof v === 'number') return v < 10_000 ? v * 1000 : v; // bare numbers below 10,000 are seconds
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(v.trim());
  if (!m) throw new Error(`invalid duration "${v}" (use e.g. 90s, 10m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000));
}

function makePlan(opts: BenchOptions): Plan {
  const quick = opts.quick === true;
  const cores = os.cpus().length;
  const soakMs = parseDurationMs(opts.soakDuration as string | number | undefined, quick ? 120_000 : 600_000);
  return {
    big: quick ? 2_000 : 10_000,
    small: quick ? 500 : 1_000,
    accounts_big: quick ? 200 : 1_000,
    accounts_small: quick ? 50 : 100,
    connect_clients: quick ? 1_000 : 5_000,
    fanout_window_ms: quick ? 4_000 : 15_000,
    fanout_warmup_ms: quick ? 1_000 : 3_000,
    fanout_concurrency: 8,
    latency_rates: [20, 100],
    latency_window_ms: quick ? 4_000 : 15_000,
    latency_warmup_ms: quick ? 1_000 : 2_000,
    publish_window_ms: quick ? 3_000 : 10_000,
    publish_warmup_ms: quick ? 1_000 : 2_000,
    publish_batch: 100,
    publish_concurrency_single: 16,
    publish_concurrency_batch: 4,
    soak_connections: 1_000,
    soak_rate: 100,
    soak_duration_ms: soakMs,
    soak_baseline_duration_ms: parseDurationMs(opts.soakBaselineDuration as string | number | undefined, Math.min(soakMs, 120_000)),
    soak_sample_ms: soakMs >= 300_000 ? 10_000 : 5_000,
    soak_slow_read_bytes_per_sec: 12_000,
    workers: Number(opts.workers) > 0 ? Number(opts.workers) : cores <= 2 ? 1 : Math.floor(cores / 2),
  };
}

function selectScenarios(opts: BenchOptions): ScenarioName[] {
  let raw: string[] = [];
  if (Array.isArray(opts.scenarios)) raw = opts.scenarios;
  else if (typeof opts.scenarios === 'string') raw = opts.scenarios.split(',');
  if (typeof opts.scenario === 'string') raw.push(...opts.scenario.split(','));
  raw = raw.map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (raw.length === 0 || raw.includes('all')) return raw.includes('soak') ? [...DEFAULT_SCENARIOS, 'soak'] : [...DEFAULT_SCENARIOS];
  const alias: Record<string, ScenarioName> = { 'fan-out': 'fanout', connection: 'connect', 'connection-rate': 'connect', webhook: 'webhooks', mem: 'memory' };
  const out: ScenarioName[] = [];
  for (const r of raw) {
    const name = (alias[r] ?? r) as ScenarioName;
    if (!(ALL_SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario "${r}" (known: ${ALL_SCENARIOS.join(', ')})`);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

const LOCAL_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

interface SuiteResult {
  connect?: ConnectOutcome;
  connect_rest?: ConnectOutcome;
  memory?: MemoryOutcome;
  fanout_big?: FanoutOutcome;
  fanout_small?: FanoutOutcome;
  latency?: Record<string, LatencyOutcome>;
  publish_single?: PublishOutcome;
  publish_batch?: PublishOutcome;
  soak?: SoakOutcome;
  server_rss_peak?: number;
  error?: string;
}

function benchPayload(): Record<string, unknown> {
  return samplePayload('BID_REQUEST') as unknown as Record<string, unknown>;
}

async function withRig<T>(
  kind: ServerKind,
  plan: Plan,
  accountsNeeded: number,
  log: (m: string) => void,
  profileDir: string | undefined,
  body: (rig: Rig) => Promise<T>,
): Promise<T> {
  const server = await ServerProc.start({ kind, cpuProfDir: profileDir });
  let loadgen: Loadgen | null = null;
  let publisher: Publisher | null = null;
  try {
    log(`${kind}: server pid ${server.pid} on port ${server.port}; creating ${accountsNeeded} accounts and keys`);
    const accounts = await createAccounts(server, accountsNeeded);
    loadgen = await Loadgen.start(plan.workers);
    publisher = await Publisher.start();
    return await body({ server, loadgen, publisher, accounts, payload: benchPayload(), localAddresses: LOCAL_ADDRESSES, log });
  } catch (err) {
    const tail = server.output().slice(-3000);
    throw new Error(`${(err as Error).stack ?? err}\n--- ${kind} server output (tail) ---\n${tail}`);
  } finally {
    await Promise.allSettled([loadgen?.stop(), publisher?.stop()]);
    await server.stop();
  }
}

async function runSuite(kind: ServerKind, plan: Plan, sel: Set<ScenarioName>, log: (m: string) => void, profileDir?: string): Promise<SuiteResult> {
  const res: SuiteResult = {};
  const needBig = sel.has('connect') || sel.has('memory') || sel.has('fanout');
  const needSmall = sel.has('fanout') || sel.has('latency');
  const needPublish = sel.has('publish');
  if (!needBig && !needSmall && !needPublish) return res;
  const accountsNeeded = needBig ? plan.accounts_big : plan.accounts_small + 1;
  await withRig(kind, plan, accountsNeeded, log, profileDir, async (rig) => {
    const acc = rig.accounts;
    if (needBig) {
      const tokens = acc.slice(0, plan.accounts_big).map((a) => a.token);
      await sleep(500);
      const before = await memorySample(rig);
      const first = sel.has('connect') ? plan.connect_clients : 0;
      const total = sel.has('memory') || sel.has('fanout') ? plan.big : first;
      if (first > 0) {
        res.connect = await connectPhase(rig, 0, first, tokens);
        log(`${kind}: connect+auth+subscribe ${res.connect.ready}/${first} in ${res.connect.elapsed_ms} ms → ${res.connect.per_sec}/s`);
      }
      if (total > first) {
        res.connect_rest = await connectPhase(rig, first, total, tokens);
        log(`${kind}: connected ${res.connect_rest.ready}/${total - first} more in ${res.connect_rest.elapsed_ms} ms`);
      }
      const ready = (await rig.loadgen.stats()).ready;
      if (sel.has('memory')) {
        await sleep(2000);
        const after = await memorySample(rig);
        res.memory = memoryOutcome(ready, before, after);
        log(
          `${kind}: memory ${ready} idle conns: RSS +${res.memory.rss_per_conn_bytes} B/conn, heap +${res.memory.heap_per_conn_bytes} B/conn`,
        );
      }
      if (sel.has('fanout')) {
        log(`${kind}: fan-out N=${ready} over ${plan.accounts_big} accounts for ${plan.fanout_window_ms / 1000}s`);
        res.fanout_big = await quietest(`${kind}: fan-out N=${ready}`, log, () =>
          fanout(rig, {
            connections: ready,
            windowMs: plan.fanout_window_ms,
            warmupMs: plan.fanout_warmup_ms,
            concurrency: plan.fanout_concurrency,
            target: { broadcast: true },
          }),
        );
        log(`${kind}: fan-out N=${ready}: ${fmtInt(res.fanout_big.delivered_per_sec)} msg/s, ${res.fanout_big.cpu_us_per_msg} µs CPU/msg`);
      }
      await rig.loadgen.closeAll();
      await sleep(500);
    }
    if (needSmall) {
      const smallAcc = acc.slice(0, plan.accounts_small);
      const target = { account_ids: smallAcc.map((a) => a.account_id) };
      const c = await connectPhase(
        rig,
        0,
        plan.small,
        smallAcc.map((a) => a.token),
      );
      log(`${kind}: connected ${c.ready}/${plan.small} over ${smallAcc.length} accounts`);
      if (sel.has('fanout')) {
        res.fanout_small = await quietest(`${kind}: fan-out N=${c.ready}`, log, () =>
          fanout(rig, {
            connections: c.ready,
            windowMs: plan.fanout_window_ms,
            warmupMs: plan.fanout_warmup_ms,
            concurrency: plan.fanout_concurrency,
            target,
          }),
        );
        log(`${kind}: fan-out N=${c.ready}: ${fmtInt(res.fanout_small.delivered_per_sec)} msg/s, ${res.fanout_small.cpu_us_per_msg} µs CPU/msg`);
      }
      if (sel.has('latency')) {
        res.latency = {};
        for (const rate of plan.latency_rates) {
          const l = await quietest(`${kind}: latency ${rate}/s`, log, () =>
            latency(rig, { connections: c.ready, rate, windowMs: plan.latency_window_ms, warmupMs: plan.latency_warmup_ms, target }),
          );
          res.latency[String(rate)] = l;
          log(`${kind}: latency ${rate}/s × ${c.ready}: p50 ${l.p50_ms} p90 ${l.p90_ms} p99 ${l.p99_ms} max ${l.max_ms} ms`);
        }
      }
      await rig.loadgen.closeAll();
    }
    if (needPublish) {
      // Addressed to an account with no connection: measures accept + validate + persist.
      const target = { account_ids: [acc[acc.length - 1].account_id] };
      res.publish_single = await publishApi(rig, {
        batch: 1,
        concurrency: plan.publish_concurrency_single,
        windowMs: plan.publish_window_ms,
        warmupMs: plan.publish_warmup_ms,
        target,
      });
      log(`${kind}: publish single: ${fmtInt(res.publish_single.events_per_sec)} events/s`);
      res.publish_batch = await publishApi(rig, {
        batch: plan.publish_batch,
        concurrency: plan.publish_concurrency_batch,
        windowMs: plan.publish_window_ms,
        warmupMs: plan.publish_warmup_ms,
        target,
      });
      log(`${kind}: publish batch ×${plan.publish_batch}: ${fmtInt(res.publish_batch.events_per_sec)} events/s`);
    }
    res.server_rss_peak = memory(rig.server.pid).hwm;
  });
  return res;
}

async function runSoak(kind: ServerKind, plan: Plan, log: (m: string) => void): Promise<SoakOutcome> {
  const duration = kind === 'tpx' ? plan.soak_duration_ms : plan.soak_baseline_duration_ms;
  return withRig(kind, plan, plan.accounts_small, log, undefined, async (rig) => {
    const accounts = rig.accounts.slice(0, plan.accounts_small);
    const c = await connectPhase(
      rig,
      0,
      plan.soak_connections,
      accounts.map((a) => a.token),
      { slowEvery: 10, slowReadBytesPerSec: plan.soak_slow_read_bytes_per_sec, slowReconnectMs: 1000 },
    );
    log(`${kind}: soak: ${c.ready} connections (10 % slow consumers), ${plan.soak_rate} events/s for ${duration / 1000}s`);
    const out = await soak(rig, {
      connections: c.ready,
      rate: plan.soak_rate,
      durationMs: duration,
      sampleMs: plan.soak_sample_ms,
      target: { account_ids: accounts.map((a) => a.account_id) },
    });
    await rig.loadgen.closeAll();
    return out;
  });
}

// ---- webhooks (bench/webhooks.ts from the webhook engineer, when present) ------------------------

async function runWebhooks(opts: BenchOptions, log: (m: string) => void): Promise<Record<string, unknown> | null> {
  const file = benchFile('webhooks');
  if (!existsSync(file)) {
    log('webhooks: bench/webhooks.ts not present; skipped');
    return null;
  }
  const mod = (await import(pathToFileURL(file).href)) as { runWebhookBench?: (o: Record<string, unknown>) => Promise<unknown> };
  if (typeof mod.runWebhookBench !== 'function') {
    log('webhooks: bench/webhooks.ts has no runWebhookBench export; skipped');
    return null;
  }
  log('webhooks: running runWebhookBench (real dispatcher, durable store)');
  const r = (await mod.runWebhookBench({ quick: opts.quick === true, log })) as unknown;
  const out: Record<string, unknown> = r && typeof r === 'object' ? { ...(r as Record<string, unknown>) } : { result: r };
  // Baseline: the same number of signed POSTs with the same number in flight, straight to a
  // fast receiver with no store (bench/webhook-baseline.ts).
  const deliveries = typeof out.deliveries === 'number' ? out.deliveries : opts.quick ? 5000 : 20_000;
  const endpoints = typeof out.endpoints === 'number' ? out.endpoints : 4;
  const perEndpoint = typeof out.concurrencyPerEndpoint === 'number' ? out.concurrencyPerEndpoint : 32;
  try {
    out.baseline = await runWebhookBaseline({ deliveries, inFlight: endpoints * perEndpoint });
    log(`webhooks: baseline bare sender ${(out.baseline as WebhookBaselineResult).deliveriesPerSec} deliveries/s`);
  } catch (err) {
    out.baseline_error = String((err as Error).message);
  }
  return out;
}

/** Find the deliveries-per-second figure in whatever shape runWebhookBench returned. */
function findRate(obj: unknown, depth = 0): number | null {
  if (!obj || typeof obj !== 'object' || depth > 3) return null;
  const rec = obj as Record<string, unknown>;
  for (const k of ['deliveries_per_sec', 'deliveriesPerSec', 'deliveries_per_second', 'per_sec', 'perSec', 'rate']) {
    if (typeof rec[k] === 'number') return rec[k] as number;
  }
  for (const [k, v] of Object.entries(rec)) {
    if (/baseline/i.test(k)) continue;
    const r = findRate(v, depth + 1);
    if (r !== null) return r;
  }
  return null;
}

function findBaselineRate(obj: unknown): number | null {
  if (!obj || typeof obj !== 'object') return null;
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (/baseline/i.test(k)) return typeof v === 'number' ? v : findRate(v);
  }
  return null;
}

// ---- report --------------------------------------------------------------------------------------

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return round(a / b, 3);
}

function buildMetrics(t: SuiteResult, b: SuiteResult, soakT: SoakOutcome | undefined, soakB: SoakOutcome | undefined, wh: Record<string, unknown> | null, wallS: number, quick: boolean): Metric[] {
  const m: Metric[] = [];
  const add = (
    id: string,
    label: string,
    unit: string,
    tv: number | null | undefined,
    bv: number | null | undefined,
    target?: { kind: 'ratio' | 'abs'; op: '<=' | '>='; value: number; text: string },
  ) => {
    const tpx = tv ?? null;
    const baseline = bv ?? null;
    const r = ratio(tpx, baseline);
    let met: boolean | null = null;
    if (target) {
      const v = target.kind === 'ratio' ? r : tpx;
      if (v !== null) met = target.op === '<=' ? v <= target.value : v >= target.value;
    }
    m.push({ id, label, unit, tpx, baseline, ratio: r, target: target?.text ?? null, met });
  };
  for (const [key, f, fb] of [
    ['fanout_small', t.fanout_small, b.fanout_small],
    ['fanout_big', t.fanout_big, b.fanout_big],
  ] as const) {
    if (!f && !fb) continue;
    const n = f?.connections ?? fb?.connections ?? 0;
    const nLabel = `N=${fmtInt(n)}`;
    add(`${key}.delivered_per_sec`, `fan-out ${nLabel}: delivered msg/s`, 'msg/s', f?.delivered_per_sec, fb?.delivered_per_sec);
    add(`${key}.cpu_us_per_msg`, `fan-out ${nLabel}: server CPU per msg`, 'µs', f?.cpu_us_per_msg, fb?.cpu_us_per_msg, {
      kind: 'ratio',
      op: '<=',
      value: 0.5,
      text: '≤ 0.5× base',
    });
    add(`${key}.user_us_per_msg`, `fan-out ${nLabel}:   of which user space`, 'µs', f?.user_us_per_msg, fb?.user_us_per_msg);
    add(`${key}.sys_us_per_msg`, `fan-out ${nLabel}:   of which kernel`, 'µs', f?.sys_us_per_msg, fb?.sys_us_per_msg);
    add(`${key}.writes_per_msg`, `fan-out ${nLabel}: write syscalls per msg`, '', f?.writes_per_msg, fb?.writes_per_msg);
    add(`${key}.missing`, `fan-out ${nLabel}: frames missing`, 'msgs', f?.missing, fb?.missing);
  }
  if (t.latency || b.latency) {
    const rates = Object.keys(t.latency ?? b.latency ?? {});
    for (const r of rates) {
      const lt = t.latency?.[r];
      const lb = b.latency?.[r];
      const n = lt?.connections ?? lb?.connections ?? 0;
      for (const q of ['p50_ms', 'p90_ms', 'p99_ms', 'max_ms'] as const) {
        const target = r === '100' && q === 'p99_ms' ? { kind: 'ratio' as const, op: '<=' as const, value: 1, text: '≤ base' } : undefined;
        add(`latency_${r}.${q}`, `latency ${r}/s × ${fmtInt(n)}: ${q.replace('_ms', '')}`, 'ms', lt?.[q], lb?.[q], target);
      }
      add(`latency_${r}.loop_delay_max`, `latency ${r}/s: server event-loop delay max`, 'ms', lt?.server_loop_delay_max_ms, lb?.server_loop_delay_max_ms);
      add(`latency_${r}.gc_max`, `latency ${r}/s: server longest GC pause`, 'ms', lt?.server_gc_max_ms, lb?.server_gc_max_ms);
    }
  }
  if (t.memory || b.memory) {
    const n = t.memory?.connections ?? b.memory?.connections ?? 0;
    add('memory.rss_per_conn', `memory ${fmtInt(n)} idle conns: RSS/conn`, 'B', t.memory?.rss_per_conn_bytes, b.memory?.rss_per_conn_bytes, {
      kind: 'abs',
      op: '<=',
      value: 6144,
      text: '≤ 6 KiB',
    });
    add('memory.heap_per_conn', `memory ${fmtInt(n)} idle conns: heap/conn`, 'B', t.memory?.heap_per_conn_bytes, b.memory?.heap_per_conn_bytes);
  }
  if (t.connect || b.connect) {
    const n = t.connect?.clients ?? b.connect?.clients ?? 0;
    add('connect.per_sec', `connect+auth+subscribe (${fmtInt(n)} clients)`, '/s', t.connect?.per_sec, b.connect?.per_sec, {
      kind: 'abs',
      op: '>=',
      value: 5000,
      text: '≥ 5,000/s',
    });
    add('connect.setup_p99', 'connect+auth+subscribe: p99 per client', 'ms', t.connect?.setup_ms.p99_ms, b.connect?.setup_ms.p99_ms);
  }
  if (t.publish_single || b.publish_single) {
    add('publish_single.events_per_sec', 'publish API single: events/s', 'ev/s', t.publish_single?.events_per_sec, b.publish_single?.events_per_sec);
    add(
      'publish_batch.events_per_sec',
      `publish API batch ×${t.publish_batch?.batch ?? b.publish_batch?.batch}: events/s`,
      'ev/s',
      t.publish_batch?.events_per_sec,
      b.publish_batch?.events_per_sec,
      { kind: 'abs', op: '>=', value: 20000, text: '≥ 20,000/s' },
    );
  }
  if (wh) {
    add('webhooks.deliveries_per_sec', 'webhook deliveries/s', '/s', findRate(wh), findBaselineRate(wh), {
      kind: 'abs',
      op: '>=',
      value: 2000,
      text: '≥ 2,000/s',
    });
  }
  if (soakT || soakB) {
    add('soak.fast_p99_ms', `soak: fast consumers p99 (10 % slow)`, 'ms', soakT?.fast.p99_ms, soakB?.fast.p99_ms, {
      kind: 'ratio',
      op: '<=',
      value: 1,
      text: '≤ base',
    });
    add('soak.fast_missing', 'soak: frames missing at fast consumers', 'msgs', soakT?.fast_missing, soakB?.fast_missing, {
      kind: 'abs',
      op: '<=',
      value: 0,
      text: '0',
    });
    add('soak.rss_growth_pct', 'soak: RSS growth, 2nd→4th quarter', '%', soakT?.rss_growth_pct, soakB?.rss_growth_pct, {
      kind: 'abs',
      op: '<=',
      value: 10,
      text: '≤ 10 % (flat)',
    });
    add('soak.closes_4009', 'soak: server closes 4009 (outbound buffer limit)', '', soakT?.server_closes?.['4009'] ?? (soakT?.server_closes ? 0 : null), null);
    add('soak.closes_4003', 'soak: server closes 4003 (pong overdue)', '', soakT?.server_closes?.['4003'] ?? (soakT?.server_closes ? 0 : null), null);
    add('soak.rss_end', 'soak: server RSS at end', 'MiB', soakT ? round(soakT.rss_end / 1048576, 1) : null, soakB ? round(soakB.rss_end / 1048576, 1) : null);
  }
  // The 10-minute budget applies to the default run (the soak is opt-in and long by design).
  const budgeted = !quick && !soakT && !soakB;
  add('run.wall_s', quick ? 'whole run (quick)' : 'whole run', 's', round(wallS, 0), null, budgeted ? { kind: 'abs', op: '<=', value: 600, text: '< 10 min' } : undefined);
  return m;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtNum(v: number | null, unit: string): string {
  if (v === null || v === undefined) return '—';
  if (unit === 'B') return v >= 10_240 || v <= -10_240 ? `${round(v / 1024, 1)} KiB` : `${fmtInt(v)} B`;
  if (Math.abs(v) >= 1000) return fmtInt(v);
  if (Number.isInteger(v)) return String(v);
  return String(Math.abs(v) >= 100 ? round(v, 0) : Math.abs(v) >= 10 ? round(v, 1) : round(v, 3));
}

export function formatTable(report: BenchReport): string {
  const rows: string[][] = [['metric', 'unit', 'tpx', 'baseline', 'ratio', 'target', 'met?']];
  for (const m of report.metrics) {
    rows.push([
      m.label,
      m.unit,
      fmtNum(m.tpx, m.unit),
      fmtNum(m.baseline, m.unit),
      m.ratio === null ? '—' : `${m.ratio >= 10 ? round(m.ratio, 1) : round(m.ratio, 2)}×`,
      m.target ?? '',
      m.met === null ? (m.target ? '?' : '') : m.met ? 'yes' : 'NO',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const right = new Set([2, 3, 4]);
  const line = (r: string[]) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

export function formatMarkdownTable(report: BenchReport): string {
  const lines = ['| metric | unit | tpx | baseline | ratio | target | met? |', '|---|---|--:|--:|--:|---|---|'];
  for (const m of report.metrics) {
    lines.push(
      `| ${m.label} | ${m.unit} | ${fmtNum(m.tpx, m.unit)} | ${fmtNum(m.baseline, m.unit)} | ${m.ratio === null ? '—' : `${round(m.ratio, 2)}×`} | ${m.target ?? ''} | ${m.met === null ? '' : m.met ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

// ---- entry ---------------------------------------------------------------------------------------

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const started = new Date();
  const t0 = performance.now();
  const quick = opts.quick === true;
  const verbose = opts.verbose !== false;
  const log = (msg: string) => {
    if (verbose) process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
  };
  const scenarios = selectScenarios(opts);
  const sel = new Set(scenarios);
  const plan = makePlan(opts);
  const servers = String(opts.servers ?? 'tpx,baseline')
    .split(',')
    .map((s) => s.trim()) as ServerKind[];
  log(`scenarios: ${scenarios.join(', ')}${quick ? ' (quick)' : ''}; ${plan.workers} load-generator worker(s); ${IS_TS ? 'sources via tsx' : 'built dist/'}`);
  const notes: string[] = [];
  {
    const h = new HostCpu();
    h.start();
    await sleep(1000);
    const busy = h.stop().busy_cores;
    if (busy > 0.3) {
      const msg = `host already busy before the run (${round(busy, 2)} of ${os.cpus().length} cores used by other processes): absolute figures are unreliable; ratios less so`;
      notes.push(msg);
      log(`WARNING: ${msg}`);
    }
  }
  let profileDir: string | undefined;
  if (opts.profile) {
    profileDir = path.join(REPO_ROOT, '.tmp', 'bench-profiles', started.toISOString().replace(/[:.]/g, '-'));
    mkdirSync(profileDir, { recursive: true });
  }

  const results: Record<string, SuiteResult> = { tpx: {}, baseline: {} };
  for (const kind of servers) {
    try {
      results[kind] = await runSuite(kind, plan, sel, log, kind === 'tpx' ? profileDir : undefined);
    } catch (err) {
      results[kind] = { error: String((err as Error).stack ?? err) };
      log(`${kind}: FAILED: ${(err as Error).message}`);
    }
  }
  let webhooks: Record<string, unknown> | null = null;
  if (sel.has('webhooks')) {
    try {
      webhooks = await runWebhooks(opts, log);
    } catch (err) {
      webhooks = { error: String((err as Error).stack ?? err) };
      log(`webhooks: FAILED: ${(err as Error).message}`);
    }
  }
  const soaks: Record<string, SoakOutcome | undefined> = {};
  if (sel.has('soak')) {
    for (const kind of servers) {
      try {
        soaks[kind] = await runSoak(kind, plan, log);
      } catch (err) {
        results[kind].error = (results[kind].error ?? '') + `\nsoak: ${String((err as Error).stack ?? err)}`;
        log(`${kind}: soak FAILED: ${(err as Error).message}`);
      }
    }
  }

  let profile: ProfileSummary | null | undefined;
  if (profileDir) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    profile = files.length ? summarizeCpuProfile(path.join(profileDir, files[0]), REPO_ROOT) : null;
    if (!profile) notes.push('profile requested but no .cpuprofile was written (server did not exit cleanly?)');
  }

  const wallS = (performance.now() - t0) / 1000;
  const metrics = buildMetrics(results.tpx, results.baseline, soaks.tpx, soaks.baseline, webhooks, wallS, quick);
  for (const kind of servers) {
    const r = results[kind];
    const noisy: string[] = [];
    const windows: Array<[string, { other_cores: number } | undefined]> = [
      ['fan-out small', r.fanout_small],
      ['fan-out big', r.fanout_big],
      ...Object.entries(r.latency ?? {}).map(([rate, l]) => [`latency ${rate}/s`, l] as [string, { other_cores: number }]),
    ];
    for (const [name, f] of windows) {
      if (f && f.other_cores > 0.3) noisy.push(`${name} (${f.other_cores} cores)`);
    }
    if (noisy.length) notes.push(`${kind}: other processes used CPU during ${noisy.join(', ')}: expect noise`);
  }
  for (const kind of servers) if (results[kind].error) notes.push(`${kind} failed: ${results[kind].error!.split('\n')[0]}`);
  const report: BenchReport = {
    tool: 'tpx-bench',
    version: 1,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    duration_s: round(wallS, 1),
    quick,
    scenarios,
    host: {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model ?? 'unknown',
      mem_gib: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      kernel: os.release(),
    },
    plan,
    metrics,
    targets: {
      met: metrics.filter((x) => x.met === true).length,
      missed: metrics.filter((x) => x.met === false).length,
      unknown: metrics.filter((x) => x.target && x.met === null).length,
    },
    results: {
      tpx: results.tpx as Record<string, unknown>,
      baseline: results.baseline as Record<string, unknown>,
      ...(webhooks ? { webhooks } : {}),
      ...(soaks.tpx || soaks.baseline ? { soak: { tpx: soaks.tpx, baseline: soaks.baseline } as Record<string, unknown> } : {}),
    },
    ...(profile !== undefined ? { profile } : {}),
    notes,
  };

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(report, null, 2) + '\n';
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}${quick ? '-quick' : ''}.json`), json);
  writeFileSync(path.join(dir, 'latest.json'), json);
  if (typeof opts.out === 'string' && opts.out) writeFileSync(path.resolve(opts.out), json);

  if (opts.table !== false) {
    const lines = [
      '',
      `tpx-realtime benchmark — ${report.started_at}${quick ? ' (quick)' : ''} — ${report.host.cpus} × ${report.host.cpu_model}, node ${report.host.node}`,
      `ratio = tpx ÷ bare-ws baseline measured in the same run; results: bench/results/${stamp}${quick ? '-quick' : ''}.json`,
      '',
      formatTable(report),
      '',
      `targets met: ${report.targets.met}, missed: ${report.targets.missed}${report.targets.unknown ? `, not measured: ${report.targets.unknown}` : ''}`,
    ];
    if (profile) {
      lines.push('', `tpx server CPU profile (${profile.file}), busy ${round(100 - profile.idle_pct, 1)} % — top self time:`);
      for (const e of profile.top_self.slice(0, 15)) lines.push(`  ${String(e.self_pct).padStart(5)} %  ${e.function}  (${e.location})`);
    }
    for (const n of notes) lines.push(`note: ${n}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return report;
}

// ---- direct execution: node --import tsx bench/run.ts [options] -----------------------------------

function parseArgv(argv: string[]): BenchOptions {
  const out: BenchOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const [rawKey, inline] = a.slice(2).split(/=(.*)/s, 2);
    const key = rawKey.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());
    let value: unknown = inline;
    if (value === undefined) value = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true;
    if (value === 'false') value = false;
    if (typeof value === 'string' && /^\d+$/.test(value) && key !== 'soakDuration' && key !== 'soakBaselineDuration') value = Number(value);
    out[key] = value;
  }
  return out;
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      [
        'usage: node --import tsx bench/run.ts [options]   (or: npm run bench -- [options], tpx bench [options])',
        '  --quick                      smaller N, shorter windows (~1–2 min)',
        `  --scenarios a,b              any of ${ALL_SCENARIOS.join(', ')} (default: all but soak)`,
        '  --soak-duration 10m          soak length (soak is opt-in: --scenarios soak)',
        '  --soak-baseline-duration 2m  baseline soak length (default min(soak, 2m))',
        '  --servers tpx,baseline       which servers to measure',
        '  --workers N                  load-generator worker threads',
        '  --profile                    V8 CPU profile of the tpx server, summarised in the report',
        '  --out FILE                   also write the JSON report to FILE',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  runBench(parseArgv(args)).then(
    (r) => process.exit(r.notes.some((n) => n.includes('failed')) ? 1 : 0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
