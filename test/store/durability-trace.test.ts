/**
 * Synced durability seen from outside: `tpx serve` runs under strace, and every 202 of the publish
 * API must be preceded by a completed fdatasync of the WAL file since the previous 202. No hook,
 * no mock: the syscalls the kernel saw. The same run with TPX_DURABILITY=relaxed shows that the
 * trace tells the two apart (there, the WAL is synced only by the checkpointer, once in a while).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, REPO_ROOT } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const PUBLISHES = 8;
const ADMIN = 'tpx_admin_trace_test_token_0123456789';

/** Runs the server under strace, publishes PUBLISHES events one after the other, returns the trace. */
async function traceRun(durability: 'synced' | 'relaxed'): Promise<string> {
  const dir = mkdtempSync(path.join(root, `${durability}-`));
  const traceFile = path.join(dir, 'trace.txt');
  const proc = spawn(
    'strace',
    ['-f', '-qq', '-y', '-s', '40', '-e', 'trace=fdatasync,write,writev', '-o', traceFile, process.execPath, '--conditions=tpx-source', '--import', 'tsx', 'src/cli/main.ts', 'serve'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, TPX_DATA_DIR: path.join(dir, 'data'), TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: ADMIN, TPX_DURABILITY: durability },
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
          const rec = JSON.parse(line) as { url: string; pid: number };
          clearTimeout(timer);
          resolve(rec);
        }
      });
      proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (buf += chunk));
      proc.once('exit', () => reject(new Error(`strace exited early: ${buf.slice(-2000)}`)));
    });
    const server = { url, adminToken: ADMIN };
    const account = (await api(server, 'POST', '/admin/accounts', {})).body;
    for (let i = 0; i < PUBLISHES; i++) {
      const res = await api(server, 'POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
      expect(res.status).toBe(202);
    }
    process.kill(pid, 'SIGTERM');
    await exited;
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  return readFileSync(traceFile, 'utf8');
}

/** For each 202 written, whether a WAL fdatasync completed since the previous 202 (or the start). */
function syncedBefore202(trace: string): boolean[] {
  const out: boolean[] = [];
  const pendingWalSync = new Set<string>(); // thread ids inside an unfinished fdatasync of the WAL
  let synced = false;
  for (const line of trace.split('\n')) {
    const tid = line.split(' ', 1)[0];
    if (/fdatasync\(\d+<[^>]*-wal>/.test(line)) {
      if (line.includes('<unfinished ...>')) pendingWalSync.add(tid);
      else if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (line.includes('<... fdatasync resumed>') && pendingWalSync.delete(tid)) {
      if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (/write(v)?\(\d+</.test(line) && line.includes('HTTP/1.1 202')) {
      out.push(synced);
      synced = false;
    }
  }
  return out;
}

describe('synced durability in a syscall trace', () => {
  const haveStrace = spawnSync('strace', ['-V']).status === 0;

  it('every 202 of POST /v1/events follows an fdatasync of the WAL (synced); relaxed does not sync per publish', async () => {
    expect(haveStrace).toBe(true);
    const synced = syncedBefore202(await traceRun('synced'));
    expect(synced).toHaveLength(PUBLISHES);
    expect(synced.every(Boolean)).toBe(true);
    const relaxed = syncedBefore202(await traceRun('relaxed'));
    expect(relaxed).toHaveLength(PUBLISHES);
    // Only the checkpointer (about once a second) syncs the WAL there.
    expect(relaxed.filter(Boolean).length).toBeLessThan(PUBLISHES / 2);
  }, 180_000);
});
