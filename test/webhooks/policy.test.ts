/**
 * The dispatcher's decision after an attempt, as a table (src/webhooks/policy.ts): how the
 * delivery is resolved and what the attempt means for its endpoint, from the classified result,
 * the attempts made, the schedule and the time. Pure: no store, no network, no clock.
 */
import { describe, expect, it } from 'vitest';
import { decide, type Decision, type Reason, type RetryPolicy } from '../../src/webhooks/policy.js';

const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(NOW + ms).toISOString();
const policy: RetryPolicy = { schedule: [5_000, 30_000, 120_000], retryAfterCapMs: 120_000, disableAfterMs: 5 * 86_400_000 };
const failing = { kind: 'failing', at: at(0), disable_after_ms: 5 * 86_400_000 } as const;
const mid = () => 0.5; // jitter factor exactly 1

const table: Array<[string, { reason: Reason; retryAfter?: string }, number, Decision]> = [
  ['2xx on the first attempt', { reason: '2xx' }, 1, { outcome: 'succeeded', resolution: { status: 'succeeded' }, effect: { kind: 'healthy' } }],
  ['2xx on the last attempt', { reason: '2xx' }, 4, { outcome: 'succeeded', resolution: { status: 'succeeded' }, effect: { kind: 'healthy' } }],
  ['5xx, first attempt: retry after the first delay', { reason: '5xx' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(5_000) }, effect: failing }],
  ['timeout, third attempt: the third delay', { reason: 'timeout' }, 3, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(120_000) }, effect: failing }],
  ['network error on the last attempt: dead letter', { reason: 'network' }, 4, { outcome: 'failed', resolution: { status: 'failed' }, effect: failing }],
  ['3xx is a failure (redirects are not followed)', { reason: '3xx' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(5_000) }, effect: failing }],
  ['4xx is retried like any failure', { reason: '4xx' }, 2, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(30_000) }, effect: failing }],
  ['unsafe address is retried (the DNS answer may change)', { reason: 'unsafe_address' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(5_000) }, effect: failing }],
  ['410 Gone: failed at once, endpoint disabled', { reason: '410' }, 1, { outcome: 'failed', resolution: { status: 'failed' }, effect: { kind: 'disable', reason: `endpoint answered 410 Gone at ${at(0)}` } }],
  ['429 with Retry-After seconds: that delay, no jitter', { reason: '429', retryAfter: '7' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(7_000) }, effect: failing }],
  ['503 with an HTTP-date Retry-After', { reason: '503', retryAfter: new Date(NOW + 60_000).toUTCString() }, 2, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(60_000) }, effect: failing }],
  ['503 with Retry-After beyond the cap: capped at the schedule maximum', { reason: '503', retryAfter: '86400' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(120_000) }, effect: failing }],
  ['429 with an unparseable Retry-After: the schedule', { reason: '429', retryAfter: 'soon' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(5_000) }, effect: failing }],
  ['Retry-After never adds attempts: last attempt → dead letter', { reason: '429', retryAfter: '1' }, 4, { outcome: 'failed', resolution: { status: 'failed' }, effect: failing }],
  ['Retry-After on a 500 is ignored', { reason: '5xx', retryAfter: '1' }, 1, { outcome: 'retry', resolution: { status: 'pending', next_attempt_at: at(5_000) }, effect: failing }],
];

describe('decide(result, attempts, schedule, now)', () => {
  it.each(table)('%s', (_name, result, attempts, expected) => {
    expect(decide(result, attempts, policy, NOW, mid)).toEqual(expected);
  });

  it('scheduled delays get ±20 % jitter at the extremes of the random source', () => {
    const lo = decide({ reason: '5xx' }, 2, policy, NOW, () => 0);
    const hi = decide({ reason: '5xx' }, 2, policy, NOW, () => 1);
    expect(lo.resolution).toEqual({ status: 'pending', next_attempt_at: at(24_000) });
    expect(hi.resolution).toEqual({ status: 'pending', next_attempt_at: at(36_000) });
  });

  it('an empty schedule means one attempt only; disable_after 0 is passed on (never disable)', () => {
    expect(decide({ reason: '5xx' }, 1, { schedule: [], retryAfterCapMs: 0, disableAfterMs: 0 }, NOW, mid)).toEqual({
      outcome: 'failed',
      resolution: { status: 'failed' },
      effect: { kind: 'failing', at: at(0), disable_after_ms: 0 },
    });
  });
});
