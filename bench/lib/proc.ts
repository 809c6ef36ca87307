/** Per-process resource readings from /proc (Linux), so every server is measured the same way. */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* default 100 */
}

/** utime and stime of the whole process (all threads), in microseconds. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime = field 14, stime = field 15.
  return { user: (Number(fields[11]) * 1e6) / clkTck, sys: (Number(fields[12]) * 1e6) / clkTck };
}

/** utime + stime of the whole process (all threads), in microseconds. */
export function cpuMicros(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

/** Read/write-family system calls made by the process so far (/proc/<pid>/io syscr, syscw). */
export function syscalls(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? NaN);
    return { reads: get('syscr'), writes: get('syscw') };
  } catch {
    return { reads: NaN, writes: NaN };
  }
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
  private c0 = { user: 0, sys: 0 };
  private io0 = { reads: 0, writes: 0 };
  constructor(readonly pid: number) {}
  start(): void {
    this.c0 = cpuTimes(this.pid);
    this.io0 = syscalls(this.pid);
    this.t0 = performance.now();
  }
  stop(): { cpu_us: number; user_us: number; sys_us: number; wall_ms: number; cores: number; read_calls: number; write_calls: number } {
    const c = cpuTimes(this.pid);
    const io = syscalls(this.pid);
    const user = c.user - this.c0.user;
    const sys = c.sys - this.c0.sys;
    const cpu = user + sys;
    const wall = performance.now() - this.t0;
    return {
      cpu_us: cpu,
      user_us: user,
      sys_us: sys,
      wall_ms: wall,
      cores: wall > 0 ? cpu / 1000 / wall : 0,
      read_calls: io.reads - this.io0.reads,
      write_calls: io.writes - this.io0.writes,
    };
  }
}

/** Whole-host CPU from /proc/stat: busy cores and softirq cores over a window. */
export class HostCpu {
  private s0: number[] = [];
  private t0 = 0;
  private self0 = 0;
  private static read(): number[] {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    return line.trim().split(/\s+/).slice(1).map(Number);
  }
  start(): void {
    this.s0 = HostCpu.read();
    this.t0 = performance.now();
    const u = process.cpuUsage();
    this.self0 = u.user + u.system;
  }
  /** Cores busy on the whole host (user+nice+system+irq+softirq+steal), softirq alone, and this process. */
  stop(): { busy_cores: number; softirq_cores: number; orchestrator_cores: number } {
    const s1 = HostCpu.read();
    const d = s1.map((v, i) => v - (this.s0[i] ?? 0));
    const wallS = (performance.now() - this.t0) / 1000;
    const toCores = (ticks: number) => (wallS > 0 ? ticks / clkTck / wallS : 0);
    const busy = (d[0] ?? 0) + (d[1] ?? 0) + (d[2] ?? 0) + (d[5] ?? 0) + (d[6] ?? 0) + (d[7] ?? 0);
    const u = process.cpuUsage();
    const self = (u.user + u.system - this.self0) / 1e6;
    return { busy_cores: toCores(busy), softirq_cores: toCores(d[6] ?? 0), orchestrator_cores: wallS > 0 ? self / wallS : 0 };
  }
}
