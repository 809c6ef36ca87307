/**
 * Typed payloads (issue 11 item 6), checked by the TypeScript compiler itself: the fixture
 * compiles cleanly only if every known field is typed, every `@ts-expect-error` line (typos,
 * unknown fields, closed enumerations) is an error, and `loose()` reaches extra fields.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { typeErrors } from '../helpers/typecheck.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('payload types', () => {
  it('known fields compile, typos and unknown fields do not, loose() is the escape hatch', () => {
    expect(typeErrors([path.join(here, 'fixtures', 'typed-payloads.ts')])).toEqual([]);
  }, 120_000);
});
