/**
 * Type-level tests, by the TypeScript compiler itself (one program, as a strict partner project
 * with @types/node would compile them):
 * - typed payloads (issue 11 item 6): the fixture compiles cleanly only if every known field is
 *   typed, every `@ts-expect-error` line (typos, unknown fields, closed enumerations) is an
 *   error, and `loose()` reaches extra fields;
 * - the partner examples (examples/*.ts) compile against the SDK.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/server.js';
import { typeErrors } from '../helpers/typecheck.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('types', () => {
  it('payloads: known fields compile, typos and unknown fields do not, loose() is the escape hatch; the examples compile', () => {
    const files = [
      path.join(here, 'fixtures', 'typed-payloads.ts'),
      path.join(REPO_ROOT, 'examples', 'node-consumer.ts'),
      path.join(REPO_ROOT, 'examples', 'ws-and-webhooks.ts'),
    ];
    expect(typeErrors(files, { types: ['node'] })).toEqual([]);
  }, 120_000);
});
