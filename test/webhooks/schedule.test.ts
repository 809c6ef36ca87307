import { describe, expect, it } from 'vitest';
import { applyJitter, maxAttempts, nextRetryDelayMs, parseRetryAfter, scheduleMax } from '../../src/webhooks/schedule.js';

const schedule = [5000, 30_000, 120_000];

describe('retry schedule', () => {
  it('gives one attempt plus one per entry', () => {
    expect(maxAttempts(schedule)).toBe(4);
    expect(nextRetryDelayMs(schedule, 0)).toBeNull();
    expect(nextRetryDelayMs(schedule, 4)).toBeNull();
  });

  it('uses the entry matching the attempts made, within ±20 %', () => {
    for (let i = 1; i <= 3; i++) {
      for (let k = 0; k < 200; k++) {
        const d = nextRetryDelayMs(schedule, i)!;
        expect(d).toBeGreaterThanOrEqual(schedule[i - 1] * 0.8);
        expect(d).toBeLessThanOrEqual(schedule[i - 1] * 1.2);
      }
    }
  });

  it('jitter bounds are reached at the extremes of the random source', () => {
    expect(applyJitter(1000, () => 0)).toBe(800);
    expect(applyJitter(1000, () => 0.999999)).toBe(1200);
    expect(applyJitter(1000, () => 0.5)).toBe(1000);
    expect(applyJitter(0, () => 0.3)).toBe(0);
  });

  it('jitter spreads values (not all identical)', () => {
    const values = new Set(Array.from({ length: 50 }, () => applyJitter(10_000)));
    expect(values.size).toBeGreaterThan(10);
  });

  it('scheduleMax', () => {
    expect(scheduleMax(schedule)).toBe(120_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('parses delta seconds', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
  });
  it('parses an HTTP date relative to now (past dates mean now)', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });
  it('caps at the given maximum', () => {
    expect(parseRetryAfter('999999', now, 60_000)).toBe(60_000);
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now, 60_000)).toBe(60_000);
  });
  it('ignores absent or garbage values', () => {
    for (const v of [undefined, null, '', '-5', '1.5', 'soon', '12abc']) expect(parseRetryAfter(v as string, now)).toBeNull();
  });
});
