/**
 * Reconnect delays: exponential backoff with "full jitter" (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): attempt n (0-based) waits a uniformly random time in
 * `[0, min(maxDelayMs, initialDelayMs · multiplier^n)]`. Full jitter spreads the reconnect
 * storm after a deploy closes every socket at once (1001) better than any fixed schedule.
 */
export interface BackoffOptions {
  /** Cap of the first delay. Default 1 000 ms. */
  initialDelayMs?: number;
  /** Upper bound of every delay. Default 60 000 ms. */
  maxDelayMs?: number;
  /** Growth factor per attempt. Default 2. */
  multiplier?: number;
  /** Source of randomness in [0, 1). Default `Math.random`. */
  random?: () => number;
}

export class Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  private readonly random: () => number;
  private attemptCount = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialDelayMs = options.initialDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.multiplier = options.multiplier ?? 2;
    this.random = options.random ?? Math.random;
    if (!(this.initialDelayMs >= 0) || !(this.maxDelayMs >= this.initialDelayMs) || !(this.multiplier >= 1)) {
      throw new RangeError('backoff: need 0 ≤ initialDelayMs ≤ maxDelayMs and multiplier ≥ 1');
    }
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attemptCount;
  }

  /** The upper bound of the delay of attempt `n` (0-based). */
  ceiling(n: number): number {
    // Avoid Infinity/NaN for large n: stop growing once the cap is reached.
    let ceiling = this.initialDelayMs;
    for (let i = 0; i < n && ceiling < this.maxDelayMs; i++) ceiling *= this.multiplier;
    return Math.min(this.maxDelayMs, ceiling);
  }

  /** The next delay (full jitter), advancing the attempt counter. */
  next(): number {
    const ceiling = this.ceiling(this.attemptCount);
    this.attemptCount++;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.floor(r * ceiling);
  }

  reset(): void {
    this.attemptCount = 0;
  }
}
