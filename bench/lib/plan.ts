/** What a benchmark run measures, and how long each window is (`--quick` shrinks both). */
import os from 'node:os';
import { pinPlan, type PinPlan } from './pin.js';

export interface Plan {
  quick: boolean;
  /** Each peer/durability figure is the median of this many windows (issue 13: 3). */
  repeats: number;
  /** Load-generator worker threads. */
  workers: number;
  pins: PinPlan;
  // ---- the peer table (issue 13): subscribers of ONE account ----
  big: number;
  small: number;
  connect_clients: number;
  fanout_window_ms: number;
  fanout_warmup_ms: number;
  /** Publish requests in flight during the max-rate fan-out. */
  fanout_concurrency: number;
  /** Fixed publish rates of the latency rows (the lowest also gives CPU per message with nothing to coalesce). */
  latency_rates: number[];
  latency_window_ms: number;
  latency_warmup_ms: number;
  // ---- synced vs relaxed durability (issue 10) ----
  durability_rates: number[];
  /** Latency and fan-out windows of the durability suite (shorter: two servers, alternating). */
  durability_window_ms: number;
  publish_window_ms: number;
  publish_warmup_ms: number;
  publish_batch: number;
  publish_concurrency_single: number;
  publish_concurrency_batch: number;
  // ---- cluster mode (SPEC §7) ----
  cluster_nodes: number;
  cluster_conns_per_node: number;
  cluster_rate: number;
  cluster_window_ms: number;
  // ---- soak (opt-in) ----
  soak_connections: number;
  soak_rate: number;
  soak_duration_ms: number;
  soak_quiet_ms: number;
  soak_sample_ms: number;
  /** Read rate of the slow consumers (about a tenth of what the soak stream sends each). */
  soak_slow_read_bytes_per_sec: number;
}

export function parseDurationMs(v: string | number | boolean | undefined, fallback: number): number {
  if (v === undefined || v === '' || typeof v === 'boolean') return fallback;
  if (typeof v === 'number') return v < 10_000 ? v * 1000 : v; // bare numbers below 10,000 are seconds
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(v.trim());
  if (!m) throw new Error(`invalid duration "${v}" (use e.g. 90s, 10m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000));
}

export interface PlanOptions {
  quick?: boolean;
  repeats?: unknown;
  workers?: unknown;
  pin?: unknown;
  soakDuration?: unknown;
  soakQuiet?: unknown;
  /** `10,50`: the fixed rates of the latency rows (the first also gives CPU per message at a low rate). */
  latencyRates?: unknown;
}

function rates(v: unknown, fallback: number[]): number[] {
  if (v === undefined || v === true) return fallback;
  const list = String(v)
    .split(',')
    .map((x) => Number(x.trim()));
  if (list.length === 0 || list.some((x) => !(x > 0))) throw new Error(`invalid rates "${String(v)}" (use e.g. 10,50)`);
  return list;
}

export function makePlan(opts: PlanOptions): Plan {
  const quick = opts.quick === true;
  const cores = os.cpus().length;
  const soakMs = parseDurationMs(opts.soakDuration as string | number | undefined, quick ? 120_000 : 600_000);
  const repeats = Number(opts.repeats) > 0 ? Math.floor(Number(opts.repeats)) : quick ? 1 : 3;
  return {
    quick,
    repeats,
    workers: Number(opts.workers) > 0 ? Number(opts.workers) : cores <= 2 ? 1 : Math.floor(cores / 2),
    pins: pinPlan(opts.pin !== false),
    big: quick ? 2_000 : 10_000,
    small: quick ? 500 : 1_000,
    connect_clients: quick ? 1_000 : 5_000,
    fanout_window_ms: quick ? 2_000 : 4_000,
    fanout_warmup_ms: quick ? 500 : 1_000,
    fanout_concurrency: 8,
    latency_rates: rates(opts.latencyRates, [10, 50]),
    latency_window_ms: quick ? 3_000 : 5_000,
    latency_warmup_ms: quick ? 500 : 1_000,
    durability_rates: [20, 100],
    durability_window_ms: quick ? 2_000 : 3_000,
    publish_window_ms: 2_000,
    publish_warmup_ms: quick ? 500 : 1_000,
    publish_batch: 100,
    publish_concurrency_single: 16,
    publish_concurrency_batch: 4,
    cluster_nodes: 3,
    cluster_conns_per_node: quick ? 300 : 1_000,
    cluster_rate: 10,
    cluster_window_ms: quick ? 3_000 : 5_000,
    soak_connections: 1_000,
    soak_rate: 100,
    soak_duration_ms: soakMs,
    soak_quiet_ms: parseDurationMs(opts.soakQuiet as string | number | undefined, quick ? 20_000 : 60_000),
    soak_sample_ms: 10_000,
    soak_slow_read_bytes_per_sec: 12_000,
  };
}
