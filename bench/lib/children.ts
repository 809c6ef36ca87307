/**
 * Child processes of the benchmark: the server under test (tpx or the bare-ws baseline), the
 * load generator and the publisher. Everything binds to loopback; every wait is bounded.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import type { ConnectResult, ConnectSpec, StatsResult } from './messages.js';
import { pin, type PinPlan } from './pin.js';
import { parentOf, processTree } from './proc.js';
import type { PublishResult, PublishRun } from '../publisher.js';

export const IS_TS = import.meta.url.endsWith('.ts');
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Repository root: bench/ under tsx, dist/bench/ when compiled. */
export const REPO_ROOT = IS_TS ? path.resolve(BENCH_DIR, '..') : path.resolve(BENCH_DIR, '..', '..');
const EXT = IS_TS ? '.ts' : '.js';
const TSX_ARGS = IS_TS ? ['--conditions=tpx-source', '--import', 'tsx'] : [];

export function benchFile(name: string): string {
  return path.join(BENCH_DIR, name + EXT);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- IPC children (load generator, publisher) ------------------------------------------------

export class IpcChild {
  private seq = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readyResolve!: () => void;
  readonly ready: Promise<void>;
  private exited = false;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.ready = new Promise<void>((r) => (this.readyResolve = r));
    proc.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      if (m.id === 0) return this.readyResolve();
      if (m.id === -1) {
        process.stderr.write(`[bench] ${name}: ${m.error}\n`);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during request ${id}`));
      }
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  request<T>(msg: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${String(msg.cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ ...msg, id });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    try {
      await this.request({ cmd: 'exit' }, 5_000);
    } catch {
      /* fall through to kill */
    }
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }
}

/** Where client processes run: the CPUs of the pin plan's `clients` list. */
export interface ClientPlacement {
  pins: PinPlan;
}

function forkChild(name: string, file: string, env: Record<string, string>, placement?: ClientPlacement): IpcChild {
  const proc = fork(file, [], {
    execArgv: [...TSX_ARGS],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Pinned before it starts its worker threads (they inherit the mask): the child only starts
  // them after its module graph loaded, long after this synchronous call.
  if (placement) pin(proc.pid!, placement.pins.clients, placement.pins);
  return new IpcChild(name, proc);
}

export class Loadgen {
  constructor(readonly child: IpcChild) {}
  static async start(workers: number, placement?: ClientPlacement): Promise<Loadgen> {
    const c = forkChild('loadgen', benchFile('loadgen'), { TPX_BENCH_WORKERS: String(workers) }, placement);
    await c.ready;
    if (placement) pin(c.pid, placement.pins.clients, placement.pins); // threads started since the fork
    return new Loadgen(c);
  }
  get pid(): number {
    return this.child.pid;
  }
  connect(spec: ConnectSpec): Promise<ConnectResult> {
    return this.child.request<ConnectResult>({ cmd: 'connect', spec }, spec.timeoutMs + 30_000);
  }
  stats(resetLatency = false): Promise<StatsResult> {
    return this.child.request<StatsResult>({ cmd: 'stats', resetLatency });
  }
  latency(on: boolean): Promise<unknown> {
    return this.child.request({ cmd: 'latency', on });
  }
  closeAll(): Promise<number> {
    return this.child.request<number>({ cmd: 'closeAll' }, 60_000);
  }
  stop(): Promise<void> {
    return this.child.stop();
  }
}

export class Publisher {
  constructor(readonly child: IpcChild) {}
  static async start(placement?: ClientPlacement): Promise<Publisher> {
    const c = forkChild('publisher', benchFile('publisher'), { TPX_BENCH_ROLE: 'publisher' }, placement);
    await c.ready;
    if (placement) pin(c.pid, placement.pins.clients, placement.pins);
    return new Publisher(c);
  }
  get pid(): number {
    return this.child.pid;
  }
  run(run: PublishRun): Promise<PublishResult> {
    return this.child.request<PublishResult>({ cmd: 'run', run }, run.durationMs + 60_000);
  }
  stop(): Promise<void> {
    return this.child.stop();
  }
}

// ---- servers ------------------------------------------------------------------------------------

/** The peers of the comparison: nginx + nchan (C), a bare `ws` server, and tpx-realtime. */
export type PeerKind = 'nchan' | 'ws' | 'tpx';

export interface ProbeResult {
  n: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  gc: boolean;
}

export interface LoopDelay {
  count: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  gc_count: number;
  gc_total_ms: number;
  gc_max_ms: number;
  gc_max_kind: string;
}

/**
 * A server under test, whatever it is built with. `protocol` says how clients talk to it:
 * `tpx` (SPEC §2: authenticate, subscribe, then event frames with a per-account seq) or
 * `nchan` (the WebSocket upgrade subscribes; frames are the published bodies, no auth).
 */
export interface BenchServer {
  readonly kind: PeerKind;
  /** Process name in logs and the report (e.g. `tpx`, `tpx node b`). */
  readonly name: string;
  readonly protocol: 'tpx' | 'nchan';
  /** Root process; CPU and memory are read for its whole process tree. */
  readonly pid: number;
  readonly port: number;
  readonly origin: string;
  /** Bearer token of the publish API (tpx, ws); empty for nchan. */
  readonly adminToken: string;
  /** WebSocket path for a client of `account` (its channel, for nchan). */
  wsPath(accountId: string): string;
  /** Full GC then process.memoryUsage() (Node servers); null where there is no such thing. */
  probe(): Promise<ProbeResult | null>;
  /** Event-loop delay and GC pauses since the previous call (Node servers); null otherwise. */
  loopDelay(): Promise<LoopDelay | null>;
  output(): string;
  stop(): Promise<void>;
}

export interface NodeServerOptions {
  kind: 'tpx' | 'ws';
  name?: string;
  env?: Record<string, string>;
  /** Shared by the nodes of a cluster (one publish/admin token for all). */
  adminToken?: string;
  /** Pin the server (all threads) to the plan's server CPUs. */
  pins?: PinPlan;
  /** tpx only: run the built `bin/tpx.js` of another checkout (bench/ab.ts), with this repository's probe. */
  root?: string;
}

/**
 * Exit hook: whatever the benchmark started and has not stopped yet is killed if it dies, with
 * its descendants (nginx's worker, PostgreSQL's backends), which would otherwise outlive a
 * SIGKILLed parent and keep its port.
 */
const liveChildren = new Set<{ pid: number; dir?: string }>();
process.once('exit', () => {
  for (const c of liveChildren) {
    // Only a process that is still our child: a PID freed by a dead child may belong to anyone now.
    // The parent first: an nginx master that saw its worker die would fork a new one.
    const tree = parentOf(c.pid) === process.pid ? processTree(c.pid) : [];
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (c.dir) rmSync(c.dir, { recursive: true, force: true });
  }
});

export function trackChild(entry: { pid: number; dir?: string }): () => void {
  liveChildren.add(entry);
  return () => liveChildren.delete(entry);
}

/** A Node.js server (tpx-realtime or the bare-ws baseline) in its own process. */
export class NodeServer implements BenchServer {
  private probeN = 0;
  private eldN = 0;
  readonly protocol = 'tpx' as const;
  constructor(
    readonly kind: 'tpx' | 'ws',
    readonly name: string,
    readonly proc: ChildProcess,
    readonly port: number,
    readonly adminToken: string,
    readonly dataDir: string,
    readonly probeFile: string,
    private readonly exit: Promise<void>,
    private readonly untrack: () => void,
    out: { get(): string },
  ) {
    this.output = () => out.get();
  }
  readonly output: () => string;

  get pid(): number {
    return this.proc.pid!;
  }
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  wsPath(): string {
    return '/ws';
  }

  static async start(opts: NodeServerOptions): Promise<NodeServer> {
    const dataDir = mkdtempSync(path.join(tmpdir(), `tpx-bench-${opts.kind}-`));
    const probeFile = path.join(dataDir, 'probe.json');
    const adminToken = opts.adminToken ?? 'bench_' + randomBytes(18).toString('hex');
    const probe = pathToFileURL(benchFile('probe')).href;
    const nodeArgs = ['--expose-gc', ...TSX_ARGS, '--import', probe];
    let script: string[];
    if (opts.kind === 'ws') script = [benchFile('baseline-server')];
    else if (opts.root) script = [path.join(opts.root, 'bin', 'tpx.js'), 'serve'];
    else if (IS_TS) script = [path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'serve'];
    else script = [path.join(REPO_ROOT, 'bin', 'tpx.js'), 'serve'];
    const proc = spawn(process.execPath, [...nodeArgs, ...script], {
      cwd: opts.root ?? REPO_ROOT,
      env: {
        ...process.env,
        TPX_HOST: '127.0.0.1',
        TPX_PORT: '0',
        TPX_DATA_DIR: dataDir,
        TPX_ADMIN_TOKEN: adminToken,
        TPX_BENCH_PROBE_FILE: probeFile,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const untrack = trackChild({ pid: proc.pid!, dir: dataDir });
    if (opts.pins) pin(proc.pid!, opts.pins.server, opts.pins);
    let out = '';
    const append = (s: string) => {
      out += s;
      if (out.length > 400_000) out = out.slice(-200_000);
    };
    const exit = new Promise<void>((r) => proc.once('exit', () => r()));
    const name = opts.name ?? opts.kind;
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${name} did not log "listening" within 60 s:\n${out.slice(-4000)}`));
      }, 60_000);
      proc.stderr!.setEncoding('utf8').on('data', append);
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        append(chunk);
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.startsWith('{') || !line.includes('listening')) continue;
          try {
            const rec = JSON.parse(line) as { msg?: string; port?: number | string };
            if (rec.msg === 'listening' && Number(rec.port) > 0) {
              clearTimeout(timer);
              buf = '';
              resolve(Number(rec.port));
            }
          } catch {
            /* not a log line */
          }
        }
      });
      void exit.then(() => {
        clearTimeout(timer);
        reject(new Error(`${name} exited before listening:\n${out.slice(-4000)}`));
      });
    }).catch((err: unknown) => {
      untrack();
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    });
    // Threads started during start-up (libuv pool, the store's workers) get the mask too.
    if (opts.pins) pin(proc.pid!, opts.pins.server, opts.pins);
    return new NodeServer(opts.kind, name, proc, port, adminToken, dataDir, probeFile, exit, untrack, { get: () => out });
  }

  async probe(timeoutMs = 15_000): Promise<ProbeResult | null> {
    const want = ++this.probeN;
    this.proc.kill('SIGUSR2');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await sleep(50);
      if (!existsSync(this.probeFile)) continue;
      try {
        const r = JSON.parse(readFileSync(this.probeFile, 'utf8')) as ProbeResult;
        if (r.n >= want) {
          this.probeN = r.n;
          return r;
        }
      } catch {
        /* partially written; retry */
      }
    }
    return null;
  }

  async loopDelay(timeoutMs = 5_000): Promise<LoopDelay | null> {
    const want = ++this.eldN;
    this.proc.kill('SIGWINCH');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await sleep(20);
      try {
        const r = JSON.parse(readFileSync(this.probeFile + '.eld', 'utf8')) as LoopDelay & { n: number };
        if (r.n >= want) {
          this.eldN = r.n;
          return r;
        }
      } catch {
        /* not written yet */
      }
    }
    return null;
  }

  private profN = 0;
  /** Ask the probe to start or stop (writing `out`) a CPU profile; resolves when it acknowledged. */
  private async profileCmd(cmd: 'start' | 'stop', out?: string): Promise<void> {
    const n = ++this.profN;
    writeFileSync(this.probeFile + '.prof', JSON.stringify({ n, cmd, out }));
    this.proc.kill('SIGURG');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      await sleep(20);
      try {
        const r = JSON.parse(readFileSync(this.probeFile + '.prof.ack', 'utf8')) as { n: number; error?: string };
        if (r.n >= n) {
          if (r.error) throw new Error(`${this.name}: profiler ${cmd}: ${r.error}`);
          return;
        }
      } catch (err) {
        if ((err as Error).message.includes('profiler')) throw err;
      }
    }
    throw new Error(`${this.name}: no answer from the profiler (${cmd})`);
  }

  /** A V8 CPU profile of `body` only (the measured windows, not start-up), written to `out`. */
  async profiled<T>(out: string | undefined, body: () => Promise<T>): Promise<T> {
    if (!out) return body();
    await this.profileCmd('start');
    try {
      return await body();
    } finally {
      await this.profileCmd('stop', out);
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
      await this.exit;
      clearTimeout(t);
    }
    this.untrack();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

// ---- accounts ------------------------------------------------------------------------------------

export interface BenchAccount {
  account_id: string;
  token: string;
}

/** Accounts and API keys through the admin API (tpx); made-up ids elsewhere (no auth there). */
export async function createAccounts(server: BenchServer, count: number): Promise<BenchAccount[]> {
  if (server.kind !== 'tpx') {
    return Array.from({ length: count }, (_, i) => ({
      account_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      token: `tp_live_${server.kind}_${i}`,
    }));
  }
  const pool = new Pool(server.origin, { connections: 8 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${server.adminToken}` };
  const post = async (p: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await pool.request({ path: p, method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`POST ${p} → ${res.statusCode} ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const out = new Array<BenchAccount>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const acct = await post('/admin/accounts', { name: `bench-${i}` });
      const id = String(acct.account_id);
      const key = await post(`/admin/accounts/${id}/api-keys`, { name: 'bench' });
      out[i] = { account_id: id, token: String(key.token) };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(8, count) }, worker));
  } finally {
    await pool.close();
  }
  return out;
}
