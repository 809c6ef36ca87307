/** Summarise a V8 .cpuprofile (from `node --cpu-prof`): self and inclusive time per function. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  function: string;
  location: string;
  self_pct: number;
  total_pct: number;
}

export interface ProfileSummary {
  file: string;
  duration_ms: number;
  /** Share of samples where the process was idle (waiting in epoll). */
  idle_pct: number;
  top_self: ProfileEntry[];
  /** Self time grouped by source file/package. */
  by_file: Array<{ file: string; self_pct: number }>;
}

function shortUrl(url: string, repoRoot: string): string {
  if (!url) return '(native)';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  if (u.startsWith(repoRoot)) u = path.relative(repoRoot, u);
  return u;
}

/** Group for the by-file table: package name for node_modules, path for project files. */
function groupOf(n: ProfileNode, repoRoot: string): string {
  const name = n.callFrame.functionName;
  if (!n.callFrame.url) return name.startsWith('(') ? name : '(native)';
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return 'pkg:' + (parts[0].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/').slice(0, 2).join('/');
  return url.startsWith(repoRoot) ? path.relative(repoRoot, url) : url;
}

export function summarizeCpuProfile(file: string, repoRoot: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Self time per node from samples × time deltas (falls back to hit counts).
  const selfTime = new Map<number, number>();
  if (prof.samples && prof.timeDeltas && prof.samples.length === prof.timeDeltas.length) {
    for (let i = 0; i < prof.samples.length; i++) {
      const dt = prof.timeDeltas[i + 1] ?? 0;
      selfTime.set(prof.samples[i], (selfTime.get(prof.samples[i]) ?? 0) + Math.max(0, dt));
    }
  } else {
    for (const n of prof.nodes) selfTime.set(n.id, n.hitCount ?? 0);
  }
  let total = 0;
  for (const v of selfTime.values()) total += v;
  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'}\u0000${shortUrl(n.callFrame.url, repoRoot)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  for (const [id, t] of selfTime) {
    const n = byId.get(id);
    if (!n) continue;
    const k = key(n);
    self.set(k, (self.get(k) ?? 0) + t);
    const name = n.callFrame.functionName;
    if (name === '(idle)') idle += t;
    const fileKey = groupOf(n, repoRoot);
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + t);
    // Inclusive: charge every distinct function on the stack once.
    const seen = new Set<string>();
    let cur: number | undefined = id;
    while (cur !== undefined) {
      const node = byId.get(cur);
      if (!node) break;
      const kk = key(node);
      if (!seen.has(kk)) {
        seen.add(kk);
        incl.set(kk, (incl.get(kk) ?? 0) + t);
      }
      cur = parent.get(cur);
    }
  }
  const busy = total - idle || 1;
  const pct = (v: number) => Math.round((v / busy) * 1000) / 10;
  const entries = [...self.entries()]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => {
      const [fn, loc] = k.split('\u0000');
      return { function: fn, location: loc, self_pct: pct(v), total_pct: pct(incl.get(k) ?? v) };
    });
  const files = [...byFile.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([f, v]) => ({ file: f, self_pct: pct(v) }));
  return {
    file,
    duration_ms: Math.round((prof.endTime - prof.startTime) / 1000),
    idle_pct: total ? Math.round((idle / total) * 1000) / 10 : 0,
    top_self: entries,
    by_file: files,
  };
}
