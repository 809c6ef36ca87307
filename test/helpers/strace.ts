/**
 * `tpx serve` (from the sources) under strace, for tests that judge durability from the syscalls
 * the kernel saw rather than from a hook: the server's threads are followed (-f), file
 * descriptors are shown with their paths (-y), so a WAL sync reads `fdatasync(7</…/tpx.sqlite-wal>)`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './server.js';

export const haveStrace = (): boolean => spawnSync('strace', ['-V']).status === 0;

export interface TracedServer {
  url: string;
  adminToken: string;
}

/**
 * Starts the server under strace in a fresh directory below `root`, lets `drive` talk to it, stops
 * it with SIGTERM and returns the trace. `syscalls` is strace's `-e trace=` list; `strsize` how
 * much of each written buffer the trace keeps (enough to see `HTTP/1.1 202`).
 */
export async function traceServer(opts: {
  root: string;
  adminToken: string;
  syscalls: string;
  strsize: number;
  env: Record<string, string>;
  drive: (server: TracedServer) => Promise<void>;
}): Promise<string> {
  const dir = mkdtempSync(path.join(opts.root, 'run-'));
  const traceFile = path.join(dir, 'trace.txt');
  const proc = spawn(
    'strace',
    ['-f', '-qq', '-y', '-s', String(opts.strsize), '-e', `trace=${opts.syscalls}`, '-o', traceFile, process.execPath, '--conditions=tpx-source', '--import', 'tsx', 'src/cli/main.ts', 'serve'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, TPX_DATA_DIR: path.join(dir, 'data'), TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: opts.adminToken, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    const { url, pid } = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`server did not start under strace: ${buf.slice(-2000)}`)), 60_000);
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buf += chunk;
        for (const line of buf.split('\n')) {
          if (!line.includes('"listening"')) continue;
          clearTimeout(timer);
          resolve(JSON.parse(line) as { url: string; pid: number });
        }
      });
      proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (buf += chunk));
      proc.once('exit', () => reject(new Error(`strace exited early: ${buf.slice(-2000)}`)));
    });
    await opts.drive({ url, adminToken: opts.adminToken });
    process.kill(pid, 'SIGTERM');
    await exited;
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  return readFileSync(traceFile, 'utf8');
}
