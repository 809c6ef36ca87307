/**
 * A failed WAL sync is fatal (docs/decisions.md "A failed WAL sync is fatal"): `tpx serve` logs
 * it and exits non-zero so that a supervisor restarts it, and the restart's recovery reads what is
 * on disk. The fault is real and outside the code: strace makes the kernel answer EIO to every
 * fdatasync of the WAL file (`-P <wal> -e inject=fdatasync:error=EIO`), no hook involved.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FATAL_EXIT_CODE } from '../../src/cli/commands/serve.js';
import { api, REPO_ROOT } from '../helpers/server.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-sync-exit-'));
const running: ChildProcess[] = [];
afterAll(() => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
const ADMIN = 'tpx_admin_sync_exit_0123456789abcdef';

interface Served {
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** `tpx serve` on `dataDir` (optionally under a command prefix such as strace), once it listens. */
async function serve(dataDir: string, prefix: string[] = []): Promise<Served> {
  const argv = [...prefix, process.execPath, '--conditions=tpx-source', '--import', 'tsx', 'src/cli/main.ts', 'serve'];
  const proc = spawn(argv[0], argv.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, TPX_DATA_DIR: dataDir, TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: ADMIN, TPX_DURABILITY: 'synced', TPX_DATABASE_URL: '', TPX_REDIS_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(proc);
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out.slice(-2000)}`)), 60_000);
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${out.slice(-2000)}`)));
  });
  return { url, output: () => out, exited };
}

describe('a failed WAL sync ends tpx serve', () => {
  const haveStrace = spawnSync('strace', ['-V']).status === 0;

  it(`EIO from fdatasync of the WAL: the write answers 503, the node logs the failure and exits ${FATAL_EXIT_CODE}; restarted, it serves again`, async () => {
    expect(haveStrace).toBe(true);
    const dataDir = path.join(root, 'data');
    // 1. A node that ran and stopped cleanly: the schema exists, the WAL is checkpointed away.
    const first = await serve(dataDir);
    const before = await api({ url: first.url, adminToken: ADMIN }, 'POST', '/admin/accounts', { name: 'before' });
    expect(before.status).toBe(201);
    process.kill(spawnedPid(first), 'SIGTERM');
    expect(await first.exited).toBe(0);

    // 2. The disk starts failing every sync of the WAL: the first write's sync fails.
    const wal = path.join(dataDir, 'tpx.sqlite-wal');
    const failing = await serve(dataDir, ['strace', '-f', '-qq', '-o', '/dev/null', '-P', wal, '-e', 'trace=fdatasync', '-e', 'inject=fdatasync:error=EIO']);
    const refused = await api({ url: failing.url, adminToken: ADMIN }, 'POST', '/admin/accounts', { name: 'during' });
    expect(refused.status, refused.text).toBe(503);
    expect(refused.body.code).toBe('STORE_UNAVAILABLE');
    expect(await failing.exited).toBe(FATAL_EXIT_CODE); // strace exits with the traced command's status
    expect(failing.output()).toMatch(/"level":60.*store failed: the node must restart/);

    // 3. The supervisor's restart: recovery, then business as usual.
    const restarted = await serve(dataDir);
    const target = { url: restarted.url, adminToken: ADMIN };
    expect((await api(target, 'GET', '/readyz', undefined, { token: null })).status).toBe(200);
    const accounts = await api(target, 'GET', '/admin/accounts');
    expect(accounts.body.accounts).toEqual(expect.arrayContaining([expect.objectContaining({ account_id: before.body.account_id })]));
    expect((await api(target, 'POST', '/admin/accounts', { name: 'after' })).status).toBe(201);
    process.kill(spawnedPid(restarted), 'SIGTERM');
    expect(await restarted.exited).toBe(0);
  }, 120_000);
});

/** The pid the `listening` line reports (the node process itself, not strace). */
function spawnedPid(s: Served): number {
  const line = s.output().split('\n').find((l) => l.includes('"listening"'))!;
  return (JSON.parse(line) as { pid: number }).pid;
}
