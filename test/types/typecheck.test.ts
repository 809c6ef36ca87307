/**
 * `tsc -b` builds only what ships (src, bench, the packages). The tests, examples and scripts are
 * type-checked here, in `npm test`, so an interface change that leaves a test calling a removed
 * method fails at once with the compiler's message instead of as a runtime TypeError deep in a
 * helper (that happened when the store split removed `appendEvent`).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('type-check of everything that does not ship', () => {
  it('tsc -p tsconfig.test.json reports no error', { timeout: 180_000 }, async () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.test.json'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }).then(
      () => ({ code: 0, output: '' }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? 1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    expect(result.output, 'tsc errors').toBe('');
    expect(result.code).toBe(0);
  });
});
