/**
 * Load-generator process: a separate OS process (so its CPU never counts as the server's) that
 * hosts N worker threads (bench/loadgen-worker.ts), each holding many client sockets. Driven by
 * the orchestrator over the child-process IPC channel; aggregates the workers' answers.
 */
import { Worker } from 'node:worker_threads';
import { Hist } from './lib/hist.js';
import type { ConnectResult, ConnectSpec, StatsResult, WorkerCommand, WorkerReply } from './lib/messages.js';

export type LoadgenCommand =
  | { id: number; cmd: 'connect'; spec: ConnectSpec }
  | { id: number; cmd: 'stats'; resetLatency?: boolean }
  | { id: number; cmd: 'latency'; on: boolean }
  | { id: number; cmd: 'closeAll' }
  | { id: number; cmd: 'exit' };

const isTs = import.meta.url.endsWith('.ts');
const workerUrl = new URL(isTs ? './loadgen-worker.ts' : './loadgen-worker.js', import.meta.url);
const nWorkers = Math.max(1, Number(process.env.TPX_BENCH_WORKERS ?? 1));

let seq = 0;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
const workers: Worker[] = [];
for (let i = 0; i < nWorkers; i++) {
  // Under tsx (running the .ts sources) the worker loads its module through tsx's API: workers
  // do not inherit `--import tsx` loader hooks on Node 20.
  const w = isTs
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})` +
          `.then(({ tsImport }) => tsImport(${JSON.stringify(workerUrl.href)}, ${JSON.stringify(workerUrl.href)}))`,
        { eval: true },
      )
    : new Worker(workerUrl);
  w.on('message', (m: WorkerReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  w.on('error', (err) => {
    process.send?.({ id: -1, error: `worker ${i} crashed: ${err.stack ?? err}` });
    // Fail every outstanding request now rather than letting the orchestrator time out.
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(new Error(`load-generator worker ${i} crashed: ${err.message}`));
    }
    setTimeout(() => process.exit(1), 100);
  });
  workers.push(w);
}

type Command = WorkerCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

function ask<T>(w: Worker, msg: Command): Promise<T> {
  const id = ++seq;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    w.postMessage({ ...msg, id });
  });
}

function mergeCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

async function connect(spec: ConnectSpec): Promise<ConnectResult> {
  const total = spec.end - spec.start;
  const per = Math.ceil(total / workers.length);
  const results = await Promise.all(
    workers.map((w, i) => {
      const start = spec.start + i * per;
      const end = Math.min(spec.end, start + per);
      return ask<ConnectResult>(w, { cmd: 'connect', spec: { ...spec, start, end: Math.max(start, end) } });
    }),
  );
  const setup = new Hist();
  const failures: Record<string, number> = {};
  let ready = 0;
  let failed = 0;
  let elapsed = 0;
  for (const r of results) {
    setup.merge(r.setup);
    mergeCounts(failures, r.failures);
    ready += r.ready;
    failed += r.failed;
    elapsed = Math.max(elapsed, r.elapsed_ms);
  }
  return { requested: total, ready, failed, elapsed_ms: elapsed, setup: setup.data(), failures };
}

async function stats(resetLatency: boolean): Promise<StatsResult> {
  const all = await Promise.all(workers.map((w) => ask<StatsResult>(w, { cmd: 'stats', resetLatency })));
  const lat = new Hist();
  const out: StatsResult = {
    events: 0,
    fast_events: 0,
    bytes: 0,
    seq_gaps: 0,
    seq_dups: 0,
    open: 0,
    ready: 0,
    slow_open: 0,
    reconnects: 0,
    closes_fast: {},
    closes_slow: {},
    errors: {},
    pings: 0,
    latency: lat.data(),
  };
  for (const s of all) {
    out.events += s.events;
    out.fast_events += s.fast_events;
    out.bytes += s.bytes;
    out.seq_gaps += s.seq_gaps;
    out.seq_dups += s.seq_dups;
    out.open += s.open;
    out.ready += s.ready;
    out.slow_open += s.slow_open;
    out.reconnects += s.reconnects;
    out.pings += s.pings;
    mergeCounts(out.closes_fast, s.closes_fast);
    mergeCounts(out.closes_slow, s.closes_slow);
    mergeCounts(out.errors, s.errors);
    lat.merge(s.latency);
  }
  out.latency = lat.data();
  return out;
}

process.on('message', (msg: LoadgenCommand) => {
  const reply = (result: unknown) => process.send?.({ id: msg.id, result });
  const fail = (err: unknown) => process.send?.({ id: msg.id, error: String((err as Error)?.stack ?? err) });
  let p: Promise<unknown>;
  switch (msg.cmd) {
    case 'connect':
      p = connect(msg.spec);
      break;
    case 'stats':
      p = stats(msg.resetLatency === true);
      break;
    case 'latency':
      p = Promise.all(workers.map((w) => ask(w, { cmd: 'latency', on: msg.on })));
      break;
    case 'closeAll':
      p = Promise.all(workers.map((w) => ask<number>(w, { cmd: 'closeAll' }))).then((ns) => ns.reduce((a, b) => a + b, 0));
      break;
    case 'exit':
      reply(true);
      setTimeout(() => process.exit(0), 50);
      return;
    default:
      p = Promise.reject(new Error('unknown command'));
  }
  p.then(reply, fail);
});

// The orchestrator going away must never leave sockets open.
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, result: 'ready' });
