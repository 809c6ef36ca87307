/** Per-process resource readings from /proc (Linux), so every server is measured the same way. */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* default 100 */
}

/** utime + stime of the whole process (all threads), in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime = field 14, stime = field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / clkTck;
}

/** Resident set size in bytes (VmRSS) and peak (VmHWM). */
export function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

export function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** CPU time of a process over a window: call start(), later stop() → µs consumed. */
export class CpuMeter {
  private t0 = 0;
  private c0 = 0;
  constructor(readonly pid: number) {}
  start(): void {
    this.c0 = cpuMicros(this.pid);
    this.t0 = performance.now();
  }
  stop(): { cpu_us: number; wall_ms: number; cores: number } {
    const cpu = cpuMicros(this.pid) - this.c0;
    const wall = performance.now() - this.t0;
    return { cpu_us: cpu, wall_ms: wall, cores: wall > 0 ? cpu / 1000 / wall : 0 };
  }
}
