/** Durations on the command line: units as in the configuration, a plain number is seconds. */
import { describe, expect, it } from 'vitest';
import { durationArg, parseCliDuration } from '../../src/cli/validate.js';

describe('parseCliDuration', () => {
  it.each([
    ['30', 30_000],
    ['1.5', 1_500],
    ['0.25', 250],
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    [' 10s ', 10_000],
  ])('%j → %d ms', (text, ms) => {
    expect(parseCliDuration(text)).toBe(ms);
  });

  it.each(['soon', '', '5 fortnights', '-3', '1e3', '30sec'])('%j is refused with the accepted forms', (text) => {
    expect(() => durationArg(text)).toThrow(/Invalid duration|must be positive/);
  });

  it('zero is refused where a positive duration is needed', () => {
    expect(() => durationArg('0')).toThrow(/must be positive/);
  });
});
