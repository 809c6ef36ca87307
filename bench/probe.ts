/**
 * Preloaded (`--import`) into every server process the benchmark spawns, tpx and baseline alike.
 * Inert until the orchestrator signals it:
 * - SIGUSR2: full GC (the server is started with --expose-gc), then process.memoryUsage() is
 *   written to $TPX_BENCH_PROBE_FILE, so heap per connection is measured after collection;
 * - SIGWINCH: the event-loop delay seen since the previous SIGWINCH (perf_hooks histogram,
 *   50 ms resolution) is written to $TPX_BENCH_PROBE_FILE.eld and the histogram reset: shows
 *   whether latency outliers come from the server's loop being blocked.
 * - SIGURG: start or stop a V8 CPU profile (an in-process inspector session), as asked in
 *   $TPX_BENCH_PROBE_FILE.prof (`{"n":1,"cmd":"start"}` or `{"n":2,"cmd":"stop","out":"…"}`),
 *   acknowledged in $TPX_BENCH_PROBE_FILE.prof.ack: profiles of the measured windows only, not of
 *   start-up and module loading as `--cpu-prof` would give. SIGURG is ignored by default, so a
 *   process without this probe is unaffected.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.TPX_BENCH_PROBE_FILE;
if (file) {
  let n = 0;
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc === 'function') {
      gc();
      gc();
    }
    const m = process.memoryUsage();
    writeFileSync(file, JSON.stringify({ n: ++n, time: Date.now(), gc: typeof gc === 'function', ...m }));
  });
  // 50 ms, not 1: the histogram samples with a libuv timer, and each wake-up costs the server
  // CPU that nchan (no probe) never pays. At 1 ms the 1,000 wake-ups a second cost every Node
  // peer 20-30 ms of CPU per second (bare ws idle: 22-39 ms/s, 6 ms/s at 10 ms), i.e. 2-3 µs of
  // the "CPU per message" at 1,000 × 10 ev/s; on the loaded VM even 100 wake-ups a second cost
  // 7-12 ms/s (measured on tpx's own 10 ms lag metric). A stall longer than 50 ms, the kind
  // that explains a p99, still delays a sample by about its length.
  const eld = monitorEventLoopDelay({ resolution: 50 });
  eld.enable();
  // GC pauses in the same window: the usual suspect when the loop stalls.
  let gcCount = 0;
  let gcTotal = 0;
  let gcMax = 0;
  let gcMaxKind = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcCount++;
      gcTotal += entry.duration;
      if (entry.duration > gcMax) {
        gcMax = entry.duration;
        gcMaxKind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  // perf_hooks.constants.NODE_PERFORMANCE_GC_* (v8::GCType): 4 is the major (mark-compact) GC.
  const kindName = (k: number) =>
    ({ 1: 'scavenge', 2: 'minor-mark-sweep', 4: 'mark-compact', 8: 'incremental-marking', 16: 'weak-callbacks' } as Record<number, string>)[k] ?? String(k);
  let e = 0;
  process.on('SIGWINCH', () => {
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    writeFileSync(
      file + '.eld',
      JSON.stringify({
        n: ++e,
        count: eld.count,
        p50_ms: ms(eld.percentile(50)),
        p99_ms: ms(eld.percentile(99)),
        max_ms: ms(eld.max),
        gc_count: gcCount,
        gc_total_ms: Math.round(gcTotal * 10) / 10,
        gc_max_ms: Math.round(gcMax * 10) / 10,
        gc_max_kind: kindName(gcMaxKind),
      }),
    );
    eld.reset();
    gcCount = gcTotal = gcMax = gcMaxKind = 0;
  });

  let session: Session | null = null;
  const ack = (n: number, error?: string) => writeFileSync(file + '.prof.ack', JSON.stringify({ n, ...(error ? { error } : {}) }));
  process.on('SIGURG', () => {
    let req: { n: number; cmd: 'start' | 'stop'; out?: string };
    try {
      req = JSON.parse(readFileSync(file + '.prof', 'utf8')) as typeof req;
    } catch {
      return;
    }
    if (req.cmd === 'start') {
      session ??= new Session();
      try {
        session.connect();
      } catch {
        /* already connected */
      }
      session.post('Profiler.enable', () =>
        session!.post('Profiler.setSamplingInterval', { interval: 1000 }, () => session!.post('Profiler.start', (err) => ack(req.n, err?.message))),
      );
    } else if (session) {
      session.post('Profiler.stop', (err, res) => {
        if (!err && req.out) writeFileSync(req.out, JSON.stringify(res.profile));
        ack(req.n, err?.message);
      });
    } else ack(req.n, 'no profile running');
  });
}
