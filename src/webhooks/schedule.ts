/**
 * Retry schedule (TPX_WEBHOOK_RETRY_SCHEDULE) with jitter, and Retry-After parsing.
 *
 * The schedule lists the delays *between* attempts: with `5s,30s,2m` a delivery gets the first
 * attempt immediately, then up to 3 retries, 4 attempts in all; after the last one fails the
 * delivery is `failed` (dead letter).
 *
 * Jitter: each delay is multiplied by a uniform factor in [0.8, 1.2] (±20 %). The mean stays on
 * the configured schedule (operators reason in those numbers) while a burst of deliveries that
 * failed together — e.g. when a partner was down — does not come back as one synchronized wave.
 *
 * Retry-After (429 and 503 only): a non-negative integer of seconds or an HTTP date. It replaces
 * the scheduled delay for that retry (no jitter: the partner asked for a precise time), capped at
 * the schedule's largest delay so a hostile or buggy partner cannot park a delivery for a year.
 * It never adds attempts: a 429 still consumes one.
 */

export const JITTER = 0.2;

/** Delay in ms before the next attempt, or null when `attemptsMade` attempts exhaust the schedule. */
export function nextRetryDelayMs(schedule: readonly number[], attemptsMade: number, rand: () => number = Math.random): number | null {
  if (attemptsMade < 1 || attemptsMade > schedule.length) return null;
  return applyJitter(schedule[attemptsMade - 1], rand);
}

/** d × U[0.8, 1.2], rounded, never negative. */
export function applyJitter(delayMs: number, rand: () => number = Math.random): number {
  const factor = 1 - JITTER + 2 * JITTER * rand();
  return Math.max(0, Math.round(delayMs * factor));
}

/** Total attempts a delivery gets: the first plus one per schedule entry. */
export function maxAttempts(schedule: readonly number[]): number {
  return schedule.length + 1;
}

/**
 * Parse a Retry-After header into a delay in ms (≥ 0), or null when absent/unparseable.
 * `capMs` bounds the result (use the schedule's maximum).
 */
export function parseRetryAfter(value: string | string[] | undefined | null, nowMs: number = Date.now(), capMs = Infinity): number | null {
  if (value === undefined || value === null) return null;
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return null;
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // HTTP-date (IMF-fixdate, RFC 850 and asctime are all accepted by Date.parse in V8).
    if (!/[a-z]/i.test(text)) return null;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    ms = at - nowMs;
  }
  if (!Number.isFinite(ms)) return null;
  return Math.min(Math.max(0, ms), capMs);
}

export function scheduleMax(schedule: readonly number[]): number {
  return schedule.length ? Math.max(...schedule) : 0;
}
