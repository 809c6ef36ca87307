/**
 * What an attempt's result means (docs/webhooks.md, "Outcomes and retries"), as a pure function
 * so it can be tested as a table: (result, attempts made, schedule, now) → how the delivery is
 * resolved and what it means for the endpoint's health. The store applies both in the attempt's
 * own transaction.
 *
 * | result                        | delivery                                   | endpoint                  |
 * |-------------------------------|--------------------------------------------|---------------------------|
 * | 2xx                           | succeeded                                  | healthy                   |
 * | 410                           | failed                                     | disabled at once          |
 * | 429 / 503 with Retry-After    | pending until Retry-After (capped), or failed after the last attempt | failing |
 * | anything else                 | pending per schedule (jittered), or failed after the last attempt    | failing |
 *
 * "failing" starts the endpoint's failure streak (if not running) and disables it once the
 * streak has lasted TPX_WEBHOOK_DISABLE_AFTER. A Retry-After never adds attempts.
 */
import type { AttemptOutcome, AttemptResolution, EndpointEffect } from '../store/types.js';
import { nextRetryDelayMs, parseRetryAfter } from './schedule.js';

export type Reason = '2xx' | '3xx' | '410' | '429' | '503' | '4xx' | '5xx' | 'timeout' | 'network' | 'unsafe_address';

export interface RetryPolicy {
  /** Delays between attempts (TPX_WEBHOOK_RETRY_SCHEDULE). */
  schedule: readonly number[];
  /** Largest delay a Retry-After may ask for (the schedule's largest). */
  retryAfterCapMs: number;
  /** Disable an endpoint failing this long (0 = never). */
  disableAfterMs: number;
}

export interface Decision {
  outcome: AttemptOutcome;
  resolution: AttemptResolution;
  effect: EndpointEffect;
}

export function decide(
  result: { reason: Reason; retryAfter?: string | null },
  attemptsMade: number,
  policy: RetryPolicy,
  nowMs: number,
  rand: () => number = Math.random,
): Decision {
  const at = new Date(nowMs).toISOString();
  if (result.reason === '2xx') return { outcome: 'succeeded', resolution: { status: 'succeeded' }, effect: { kind: 'healthy' } };
  if (result.reason === '410') {
    return { outcome: 'failed', resolution: { status: 'failed' }, effect: { kind: 'disable', reason: `endpoint answered 410 Gone at ${at}` } };
  }
  const effect: EndpointEffect = { kind: 'failing', at, disable_after_ms: policy.disableAfterMs };
  let delay = nextRetryDelayMs(policy.schedule, attemptsMade, rand);
  if (delay !== null && (result.reason === '429' || result.reason === '503')) {
    const asked = parseRetryAfter(result.retryAfter, nowMs, policy.retryAfterCapMs);
    if (asked !== null) delay = asked;
  }
  if (delay === null) return { outcome: 'failed', resolution: { status: 'failed' }, effect };
  return { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: new Date(nowMs + delay).toISOString() }, effect };
}
