/**
 * A small mergeable log-linear histogram of non-negative integer values (microseconds here):
 * exact below 1024, then 128 sub-buckets per power of two (≤ 0.8 % relative error). Plain
 * Uint32Array storage so worker threads and processes can ship and merge it cheaply.
 */
const LINEAR = 1024;
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
const MAX_EXP = 40;
export const HIST_SIZE = LINEAR + (MAX_EXP - 10) * SUB;

export function histBucket(v: number): number {
  if (v < LINEAR) return v < 0 ? 0 : Math.floor(v);
  const e = Math.min(Math.floor(Math.log2(v)), MAX_EXP - 1);
  const sub = Math.floor(v / 2 ** (e - SUB_BITS)) - SUB;
  return LINEAR + (e - 10) * SUB + Math.min(Math.max(sub, 0), SUB - 1);
}

/** The lower bound of a bucket's range (its representative value). */
export function histValue(i: number): number {
  if (i < LINEAR) return i;
  const k = i - LINEAR;
  const e = 10 + Math.floor(k / SUB);
  const sub = k % SUB;
  return (SUB + sub) * 2 ** (e - SUB_BITS);
}

export class Hist {
  counts: Uint32Array;
  n = 0;
  max = 0;
  sum = 0;
  constructor(counts?: ArrayLike<number>) {
    this.counts = new Uint32Array(HIST_SIZE);
    if (counts) this.add(counts);
  }
  record(v: number): void {
    this.counts[histBucket(v)]++;
    this.n++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }
  add(counts: ArrayLike<number>, n?: number, max?: number, sum?: number): void {
    let total = 0;
    for (let i = 0; i < HIST_SIZE; i++) {
      const c = counts[i] ?? 0;
      if (c) {
        this.counts[i] += c;
        total += c;
      }
    }
    this.n += n ?? total;
    if (max !== undefined && max > this.max) this.max = max;
    if (sum !== undefined) this.sum += sum;
  }
  merge(o: HistData): void {
    this.add(o.counts, o.n, o.max, o.sum);
  }
  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.max = 0;
    this.sum = 0;
  }
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < HIST_SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(histValue(i), this.max);
    }
    return this.max;
  }
  data(): HistData {
    return { counts: Array.from(this.counts), n: this.n, max: this.max, sum: this.sum };
  }
  /** Summary in milliseconds (values are recorded in microseconds). */
  summaryMs(): LatencySummary {
    const ms = (v: number | null) => (v === null ? null : Math.round(v) / 1000);
    return {
      count: this.n,
      mean_ms: this.n ? Math.round(this.sum / this.n) / 1000 : null,
      p50_ms: ms(this.quantile(0.5)),
      p90_ms: ms(this.quantile(0.9)),
      p99_ms: ms(this.quantile(0.99)),
      p999_ms: ms(this.quantile(0.999)),
      max_ms: this.n ? ms(this.max) : null,
    };
  }
}

export interface HistData {
  counts: ArrayLike<number>;
  n: number;
  max: number;
  sum: number;
}

export interface LatencySummary {
  count: number;
  mean_ms: number | null;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
}

/** Microseconds of CLOCK_MONOTONIC: the same clock in every process and thread on the host. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
