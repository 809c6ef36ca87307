/**
 * Commands printed in hints and in the serve banner work when pasted: `tpx …` when a `tpx` is on
 * the user's PATH (global install), else `npx tpx …`; node_modules/.bin (put on the PATH by npx
 * and `npm start`, not by the user's shell) does not count. Every hint spells it the same way.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tpxCommand } from '../../src/cli/invocation.js';
import { runCli } from './run-cli.js';

vi.setConfig({ testTimeout: 90_000 });

function dirWithTpx(sub = ''): string {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'tpx-path-')), sub);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'tpx'), '#!/bin/sh\n');
  chmodSync(path.join(dir, 'tpx'), 0o755);
  return dir;
}

describe('tpxCommand', () => {
  it('is tpx with a tpx on the PATH, npx tpx without, and ignores node_modules/.bin', () => {
    expect(tpxCommand({ PATH: ['/nonexistent', dirWithTpx()].join(path.delimiter) })).toBe('tpx');
    expect(tpxCommand({ PATH: '/nonexistent' })).toBe('npx tpx');
    expect(tpxCommand({ PATH: dirWithTpx('node_modules/.bin') })).toBe('npx tpx');
    expect(tpxCommand({})).toBe('npx tpx');
  });
});

describe('hints of the CLI', () => {
  const NO_SERVER = { TPX_URL: 'http://127.0.0.1:9', TPX_ADMIN_TOKEN: 'adm_test' };
  const PATH_WITHOUT = (process.env.PATH ?? '').split(path.delimiter).filter((d) => !/node_modules/.test(d)).join(path.delimiter);

  it('say npx tpx when tpx is not on the PATH (server not reachable, missing API key)', async () => {
    const down = await runCli(['accounts', 'list'], { env: { ...NO_SERVER, PATH: PATH_WITHOUT } });
    expect(down.stderr).toContain('is `npx tpx serve` running?');
    const key = await runCli(['listen'], { env: { ...NO_SERVER, PATH: PATH_WITHOUT } });
    expect(key.stderr).toContain('`npx tpx keys create --account <id>`');
  });

  it('say tpx when a tpx is on the PATH', async () => {
    const env = { ...NO_SERVER, PATH: [PATH_WITHOUT, dirWithTpx()].join(path.delimiter) };
    const down = await runCli(['accounts', 'list'], { env });
    expect(down.stderr).toContain('is `tpx serve` running?');
    const key = await runCli(['listen'], { env });
    expect(key.stderr).toContain('(create one with `tpx keys create --account <id>`)');
  });
});
