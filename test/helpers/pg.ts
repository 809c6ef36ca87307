/**
 * A private, throw-away PostgreSQL server for tests (loopback only; the newest major Debian installed).
 *
 *   const pg = await startPostgres();      // { url: 'postgres://postgres@127.0.0.1:PORT/tpx_xxx', stop() }
 *   afterAll(() => pg.stop());
 *
 * initdb runs into a fresh temp dir owned by the `postgres` user (PostgreSQL refuses to run as
 * root), the server listens on 127.0.0.1 at a free port with its unix socket inside the data dir,
 * fsync is off (tests do not need durability across a machine crash). stop() shuts it down
 * (fast shutdown, SIGKILL if it lingers) and removes the directory; an `exit` hook kills whatever
 * a crashed test left behind. `createDatabase()` gives further empty databases on the same server.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, sleep, track, untrack, type LiveServer } from './child-servers.js';

const execFileP = promisify(execFile);
const PG_BIN = process.env.TPX_TEST_PG_BIN ?? newestDebianPgBin();

/** Debian installs each major version under /usr/lib/postgresql/<major>/bin: take the newest. */
function newestDebianPgBin(): string {
  let majors: string[] = [];
  try {
    majors = readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d));
  } catch {
    /* not installed: the start below fails with a clear message */
  }
  majors.sort((a, b) => Number(b) - Number(a));
  return `/usr/lib/postgresql/${majors[0] ?? '15'}/bin`;
}
const START_TIMEOUT_MS = 30_000;

export interface TestPostgres {
  /** URL of a fresh, empty database on the private server. */
  url: string;
  port: number;
  /** Create another empty database on the same server and return its URL. */
  createDatabase(): Promise<string>;
  /** The postmaster and every process it forked (backends, checkpointer, WAL writer…): for SIGSTOP/SIGCONT. */
  pids(): number[];
  /** Shut the server down (fast) and start it again on the same data and port (outage tests). */
  restart(opts?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

/** Direct children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}


async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: u }, { stdout: g }] = await Promise.all([execFileP('id', ['-u', 'postgres']), execFileP('id', ['-g', 'postgres'])]);
  return { uid: Number(u.trim()), gid: Number(g.trim()) };
}


async function waitAccepting(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`postgres exited during start-up (code ${proc.exitCode}, signal ${proc.signalCode}):\n${output()}`);
    }
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${START_TIMEOUT_MS} ms:\n${output()}`);
    await sleep(100);
  }
}

export async function startPostgres(opts: { maxConnections?: number } = {}): Promise<TestPostgres> {
  const { uid, gid } = await postgresIds();
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-pg-'));
  const dataDir = path.join(dir, 'data');
  chownSync(dir, uid, gid);
  let out = '';
  const append = (s: string) => {
    out += s;
    if (out.length > 200_000) out = out.slice(-200_000);
  };
  let proc: ChildProcess | null = null;
  let entry: LiveServer | null = null;
  try {
    await execFileP('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, 'initdb'), '-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], {
      cwd: dir,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`initdb failed: ${err.message}\n${err.stderr ?? ''}`);
    });
    const port = await freePort();
    const launch = (): ChildProcess => {
      const p = spawn(
        path.join(PG_BIN, 'postgres'),
        [
          '-D', dataDir,
          '-k', dir,
          '-p', String(port),
          '-h', '127.0.0.1',
          '-c', 'fsync=off',
          '-c', 'synchronous_commit=off',
          '-c', 'full_page_writes=off',
          '-c', `max_connections=${opts.maxConnections ?? 200}`,
          '-c', 'shared_buffers=32MB',
          '-c', 'log_min_messages=warning',
        ],
        { cwd: dir, uid, gid, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', LANG: 'C' } },
      );
      p.stdout!.setEncoding('utf8').on('data', append);
      p.stderr!.setEncoding('utf8').on('data', append);
      return p;
    };
    proc = launch();
    entry = { proc, dir };
    track(entry);
    await waitAccepting(port, proc, () => out);

    const createDatabase = async (): Promise<string> => {
      const name = `tpx_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    };
    const url = await createDatabase();

    const liveEntry = entry;
    const shutdown = async (running: ChildProcess) => {
      if (running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((r) => running.once('exit', () => r()));
      running.kill('SIGINT'); // fast shutdown: abort sessions, no checkpoint wait for clients
      const timer = setTimeout(() => running.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    };
    let stopping: Promise<void> | null = null;
    const stop = () =>
      (stopping ??= (async () => {
        await shutdown(liveEntry.proc);
        untrack(liveEntry);
        rmSync(dir, { recursive: true, force: true });
      })());
    const pids = () => [liveEntry.proc.pid!, ...childrenOf(liveEntry.proc.pid!)];
    const restart = async (restartOpts: { downMs?: number } = {}) => {
      await shutdown(liveEntry.proc);
      if (restartOpts.downMs) await sleep(restartOpts.downMs);
      liveEntry.proc = launch();
      await waitAccepting(port, liveEntry.proc, () => out);
    };
    return { url, port, createDatabase, pids, restart, stop };
  } catch (err) {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    if (entry) untrack(entry);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
