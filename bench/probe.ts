/**
 * Preloaded (`--import`) into every server process the benchmark spawns, tpx and baseline alike.
 * Inert until the orchestrator sends SIGUSR2: then it runs a full GC (the server is started with
 * --expose-gc) and writes process.memoryUsage() to $TPX_BENCH_PROBE_FILE, so heap per connection is
 * measured after collection, identically for both servers.
 */
import { writeFileSync } from 'node:fs';

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
}
