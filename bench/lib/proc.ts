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

/** Resident set size in bytes (VmRSS) and peak (VmHWM) of one process. */
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

/** Parent PID of a process, or null when it does not exist. */
export function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * The process and its descendants (nginx's master and workers, PostgreSQL's postmaster and
 * backends). One scan of /proc; a server's tree is read again for every window, so workers
 * started later are counted too.
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid);
      if (list) list.push(Number(d));
      else children.set(ppid, [Number(d)]);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** Private (not shared) resident bytes of a process: Private_Clean + Private_Dirty. */
function privateBytes(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return get('Private_Clean') + get('Private_Dirty');
  } catch {
    return 0;
  }
}

/**
 * Resident memory of a process tree with the pages its processes share counted once: the RSS
 * of its largest process plus the private bytes of the others. For a single process this is its
 * VmRSS; for nginx it is the worker's RSS plus what the idle master holds privately (summing
 * VmRSS would count the shared memory zone and the binary twice; PSS would divide Node's
 * binary pages with the load generator's, which share them).
 */
export function treeMemory(root: number): { rss: number; processes: number } {
  const pids = processTree(root);
  const rss = pids.map((p) => {
    try {
      return { pid: p, rss: memory(p).rss };
    } catch {
      return { pid: p, rss: 0 };
    }
  });
  rss.sort((a, b) => b.rss - a.rss);
  let total = rss[0]?.rss ?? 0;
  for (const r of rss.slice(1)) total += privateBytes(r.pid);
  return { rss: total, processes: pids.length };
}

interface TreeTimes {
  user: number;
  sys: number;
  /** Nanosecond-precise run time of the live threads (schedstat), µs; NaN where unavailable. */
  run: number;
  reads: number;
  writes: number;
}

/** Run time of every live thread of a process from /proc/<pid>/task/<tid>/schedstat, in µs. */
function runTimeUs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
    }
    return ns / 1000;
  } catch {
    return NaN;
  }
}

/** CPU (all threads) and syscalls of every process of a tree. Exited processes count 0. */
function treeTimes(pids: number[]): Map<number, TreeTimes> {
  const out = new Map<number, TreeTimes>();
  for (const p of pids) {
    try {
      const c = cpuTimes(p);
      const io = syscalls(p);
      out.set(p, { user: c.user, sys: c.sys, run: runTimeUs(p), reads: io.reads, writes: io.writes });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * CPU time of a process, or of a whole process tree (`tree: true`), over a window: call
 * start(), later stop() → µs consumed. A process of the tree that appears during the window is
 * charged from zero; one that exits is charged up to its last reading.
 *
 * The total comes from the threads' schedstat run time (nanoseconds), so short windows of a
 * lightly loaded process (an idle cluster node, Redis per event) are measured, not rounded to
 * 10 ms clock ticks; utime/stime (ticks) give the user/kernel split, and stand in for the total
 * when threads exited during the window (their run time leaves schedstat with them).
 */
export class CpuMeter {
  private t0 = 0;
  private c0 = new Map<number, TreeTimes>();
  constructor(
    readonly pid: number,
    private readonly tree = false,
  ) {}
  private read(): Map<number, TreeTimes> {
    return treeTimes(this.tree ? processTree(this.pid) : [this.pid]);
  }
  start(): void {
    this.c0 = this.read();
    this.t0 = performance.now();
  }
  stop(): { cpu_us: number; user_us: number; sys_us: number; wall_ms: number; cores: number; read_calls: number; write_calls: number } {
    const now = this.read();
    let user = 0;
    let sys = 0;
    let run = 0;
    let reads = 0;
    let writes = 0;
    for (const [pid, t] of now) {
      const b = this.c0.get(pid) ?? { user: 0, sys: 0, run: 0, reads: 0, writes: 0 };
      user += t.user - b.user;
      sys += t.sys - b.sys;
      run += t.run - b.run;
      reads += t.reads - b.reads;
      writes += t.writes - b.writes;
    }
    const ticks = user + sys;
    const tick = 1e6 / clkTck;
    const cpu = Number.isFinite(run) && run >= 0 && ticks - run < 2 * tick ? run : ticks;
    const wall = performance.now() - this.t0;
    return {
      cpu_us: cpu,
      user_us: user,
      sys_us: sys,
      wall_ms: wall,
      cores: wall > 0 ? cpu / 1000 / wall : 0,
      read_calls: reads,
      write_calls: writes,
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
