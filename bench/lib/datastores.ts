/**
 * The shared stores of a cluster-mode run (SPEC §7): a private PostgreSQL and a private Redis on
 * loopback, started and stopped by PID, in temp dirs deleted afterwards.
 *
 * Unlike the test helpers (test/helpers/pg.ts: fsync off, because tests do not need to survive a
 * machine crash), PostgreSQL runs here with its durable defaults (fsync, synchronous_commit,
 * full_page_writes on): a 202 from a cluster node then means what SPEC §3.1 says, and the
 * benchmark measures that cost. PostgreSQL refuses to run as root, so initdb and the server run
 * as the `postgres` user (runuser) when we are root.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sleep, trackChild } from './children.js';
import { answers, freePort } from './net.js';
import { pin, type PinPlan } from './pin.js';

const execFileP = promisify(execFile);

export interface Datastore {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Debian installs each PostgreSQL major under /usr/lib/postgresql/<major>/bin: the newest, or null. */
export function postgresBin(): string | null {
  try {
    const majors = readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d));
    majors.sort((a, b) => Number(b) - Number(a));
    return majors.length ? `/usr/lib/postgresql/${majors[0]}/bin` : null;
  } catch {
    return null;
  }
}

async function stopProc(proc: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export async function startPostgres(pins?: PinPlan): Promise<Datastore> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (/usr/lib/postgresql/<major>/bin)');
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? await Promise.all([execFileP('id', ['-u', 'postgres']), execFileP('id', ['-g', 'postgres'])]).then(([u, g]) => ({
        uid: Number(u.stdout.trim()),
        gid: Number(g.stdout.trim()),
      }))
    : null;
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-bench-pg-'));
  const dataDir = path.join(dir, 'data');
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  const initdb = [path.join(bin, 'initdb'), '-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8'];
  try {
    if (asRoot) await execFileP('runuser', ['-u', 'postgres', '--', ...initdb], { cwd: dir, env });
    else await execFileP(initdb[0], initdb.slice(1), { cwd: dir, env });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as Error).message}`);
  }
  const port = await freePort();
  // pg_stat_statements counts every statement the nodes run (exactly: it is updated at statement
  // end, unlike pg_stat_database's deferred counters), so the report can say what one event costs
  // PostgreSQL in statements, and what idle nodes poll. Its overhead is a few % of PostgreSQL's CPU.
  const proc = spawn(
    path.join(bin, 'postgres'),
    [
      '-D', dataDir, '-k', dir, '-p', String(port), '-h', '127.0.0.1',
      '-c', 'max_connections=200',
      '-c', 'log_min_messages=warning',
      '-c', 'shared_preload_libraries=pg_stat_statements',
      '-c', 'pg_stat_statements.track=all',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env, ...(ids ? { uid: ids.uid, gid: ids.gid } : {}) },
  );
  const untrack = trackChild({ pid: proc.pid!, dir });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-50_000)));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-50_000)));
  if (pins) pin(proc.pid!, pins.server, pins); // backends fork from the postmaster and inherit it
  const stop = async () => {
    await stopProc(proc, 'SIGINT', 10_000); // fast shutdown
    untrack();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`postgres exited during start-up:\n${out}`);
    }
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('CREATE DATABASE tpx_bench');
      await c.end();
      const db = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'tpx_bench' });
      await db.connect();
      await db.query('CREATE EXTENSION pg_stat_statements');
      await db.end();
      break;
    } catch {
      await c.end().catch(() => undefined);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`postgres did not accept connections within 30 s:\n${out}`);
    }
    await sleep(100);
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/tpx_bench`, pid: proc.pid!, stop };
}

/** A private redis-server: pure pub/sub for tpx, so no persistence. */
export async function startRedis(pins?: PinPlan): Promise<Datastore> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-bench-redis-'));
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const untrack = trackChild({ pid: proc.pid!, dir });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-50_000)));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-50_000)));
  proc.once('error', (e) => (out += String(e)));
  if (pins) pin(proc.pid!, pins.server, pins);
  const stop = async () => {
    await stopProc(proc, 'SIGTERM', 5_000);
    untrack();
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  while (!(await answers(port, 'PING\r\n', '+PONG'))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not start:\n${out}`);
    }
    await sleep(50);
  }
  return { url: `redis://127.0.0.1:${port}`, pid: proc.pid!, stop };
}

// ---- Redis INFO deltas --------------------------------------------------------------------------

export interface RedisCounters {
  /** calls per command (INFO commandstats), without the INFO calls themselves. */
  calls: Record<string, number>;
  net_input_bytes: number;
  net_output_bytes: number;
  pubsub_channels: number;
}

/** Parse `INFO commandstats` + `INFO stats` text. */
export function parseRedisInfo(text: string): RedisCounters {
  const calls: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gim)) calls[m[1].toLowerCase()] = Number(m[2]);
  const num = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return {
    calls,
    net_input_bytes: num('total_net_input_bytes'),
    net_output_bytes: num('total_net_output_bytes'),
    pubsub_channels: num('pubsub_channels'),
  };
}

const INFO_REQUEST_BYTES = Buffer.byteLength('*2\r\n$4\r\ninfo\r\n$10\r\neverything\r\n');

export interface RedisDelta {
  /** Commands by name over the window (INFO excluded). */
  commands: Record<string, number>;
  total_commands: number;
  net_input_bytes: number;
  net_output_bytes: number;
}

/**
 * Counts Redis commands and bytes over a window from INFO snapshots, correcting for the
 * snapshots themselves: the first INFO's request and reply bytes are in the second's totals.
 */
export class RedisMeter {
  private readonly client: Redis;
  private before: RedisCounters | null = null;
  private ownIn = 0;
  private ownOut = 0;
  constructor(url: string) {
    this.client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  }
  private async snapshot(): Promise<{ c: RedisCounters; replyBytes: number }> {
    const text = await this.client.info('everything');
    const len = Buffer.byteLength(text);
    // RESP bulk string: "$<len>\r\n<text>\r\n".
    return { c: parseRedisInfo(text), replyBytes: len + String(len).length + 5 };
  }
  async start(): Promise<void> {
    const s = await this.snapshot();
    this.before = s.c;
    // Each INFO request is counted when read, before its own snapshot is taken: the delta holds
    // the second request, and the first reply (the second is written after its snapshot).
    this.ownIn = INFO_REQUEST_BYTES;
    this.ownOut = s.replyBytes;
  }
  async stop(): Promise<RedisDelta> {
    const { c } = await this.snapshot();
    const b = this.before!;
    const commands: Record<string, number> = {};
    for (const [k, v] of Object.entries(c.calls)) {
      if (k === 'info') continue;
      const d = v - (b.calls[k] ?? 0);
      if (d) commands[k] = d;
    }
    return {
      commands,
      total_commands: Object.values(commands).reduce((x, y) => x + y, 0),
      net_input_bytes: c.net_input_bytes - b.net_input_bytes - this.ownIn,
      net_output_bytes: c.net_output_bytes - b.net_output_bytes - this.ownOut,
    };
  }
  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

// ---- PostgreSQL statements per window -----------------------------------------------------------

export interface StatementCount {
  query: string;
  calls: number;
  /** Mean execution time (ms) over the window's calls. */
  mean_ms: number;
}

export interface PgDelta {
  /** Statements run by the tpx nodes over the window (pg_stat_statements; this meter's own excluded). */
  calls: number;
  exec_ms: number;
  top: StatementCount[];
}

/** Statement counts from pg_stat_statements before and after a window. */
export class PgMeter {
  private readonly client: pg.Client;
  private before = new Map<string, { query: string; calls: number; ms: number }>();
  private connected: Promise<void>;
  constructor(url: string) {
    this.client = new pg.Client({ connectionString: url });
    this.connected = this.client.connect().then(() => undefined);
  }
  private async snapshot(): Promise<Map<string, { query: string; calls: number; ms: number }>> {
    await this.connected;
    const r = await this.client.query<{ queryid: string; query: string; calls: string; ms: number }>(
      `SELECT queryid::text, query, calls::text, total_exec_time AS ms FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND userid = (SELECT oid FROM pg_roles WHERE rolname = current_user)
          AND query NOT LIKE '%pg_stat_statements%'`,
    );
    return new Map(r.rows.map((x) => [x.queryid, { query: x.query, calls: Number(x.calls), ms: x.ms }]));
  }
  async start(): Promise<void> {
    this.before = await this.snapshot();
  }
  async stop(top = 8): Promise<PgDelta> {
    const after = await this.snapshot();
    const rows: StatementCount[] = [];
    let calls = 0;
    let ms = 0;
    for (const [id, a] of after) {
      const b = this.before.get(id) ?? { calls: 0, ms: 0 };
      const d = a.calls - b.calls;
      if (d <= 0) continue;
      calls += d;
      ms += a.ms - b.ms;
      rows.push({ query: a.query.replace(/\s+/g, ' ').slice(0, 160), calls: d, mean_ms: Math.round(((a.ms - b.ms) / d) * 1000) / 1000 });
    }
    rows.sort((x, y) => y.calls - x.calls);
    return { calls, exec_ms: Math.round(ms * 10) / 10, top: rows.slice(0, top) };
  }
  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
