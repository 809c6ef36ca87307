/**
 * A/B of two tpx builds in the same run: `base` (another checkout, built) and this one, both
 * started with this repository's probe, both pinned to the server core, their windows
 * alternating (A B, then B A, ...), so a busy shared machine loads both alike. This is how
 * docs/performance.md (round 3) measures each change's before/after; absolute figures on the
 * shared VM move between runs, the ratio B/A of medians much less.
 *
 *   git worktree add /tmp/base <commit> && (cd /tmp/base && ln -s "$PWD/node_modules" . && npx tsc -b)
 *   npm run build && node dist/bench/ab.js --base /tmp/base [--n 1000] [--rates 10,50] [--repeats 3]
 *       [--connect 5000] [--memory 10000] [--fanout] [--out file.json]
 *
 * Rows: server RSS before any connection; connect storms (server CPU per connect, connects/s);
 * idle RSS and heap per connection after a full GC; CPU per delivered message (user/kernel),
 * p50/p99 at each rate with N subscribers of one account; max-rate fan-out CPU per message.
 */
import { writeFileSync } from 'node:fs';
import { NodeServer, sleep } from './lib/children.js';
import { makePlan } from './lib/plan.js';
import { pin } from './lib/pin.js';
import { treeMemory } from './lib/proc.js';
import { median } from './lib/repeat.js';
import { withClients } from './lib/rig.js';
import { connectPhase, fanout, latency, memoryOutcome, memorySample, type Rig } from './scenarios.js';

type Side = 'A' | 'B';

function parse(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const next = argv[i + 1];
    out[a.slice(2)] = next !== undefined && !next.startsWith('--') ? argv[++i] : true;
  }
  return out;
}

export async function runAb(args: Record<string, string | true>): Promise<Record<Side, Record<string, number[]>>> {
  if (typeof args.base !== 'string') throw new Error('--base <checkout of the other build> is required');
  const num = (k: string, d: number) => (typeof args[k] === 'string' ? Number(args[k]) : d);
  const n = num('n', 1000);
  const repeats = num('repeats', 3);
  const rates = typeof args.rates === 'string' ? args.rates.split(',').filter(Boolean).map(Number) : args.rates === true ? [] : [10, 50];
  const plan = makePlan({ pin: true });
  pin(process.pid, plan.pins.clients, plan.pins);
  const log = (m: string) => process.stderr.write(`[ab] ${m}\n`);
  const results: Record<Side, Record<string, number[]>> = { A: {}, B: {} };
  const push = (side: Side, key: string, v: number | null | undefined) => {
    if (typeof v === 'number' && Number.isFinite(v)) (results[side][key] ??= []).push(v);
  };
  const start = (side: Side) =>
    NodeServer.start({ kind: 'tpx', name: `tpx ${side}`, env: { TPX_DURABILITY: 'synced' }, pins: plan.pins, root: side === 'A' ? args.base as string : undefined });
  const servers = { A: await start('A'), B: await start('B') };
  try {
    await sleep(1000);
    for (const side of ['A', 'B'] as const) push(side, 'RSS before any connection (MiB)', treeMemory(servers[side].pid).rss / 1048576);
    await withClients(servers.A, plan, 1, log, (rigA) =>
      withClients(servers.B, plan, 1, log, async (rigB) => {
        const rigs: Record<Side, Rig> = { A: rigA, B: rigB };
        const target = (side: Side) => ({ account_ids: [rigs[side].accounts[0].account_id] });
        const only = (side: Side) => rigs[side].accounts.slice(0, 1);
        const order = (i: number): Side[] => (i % 2 === 0 ? ['A', 'B'] : ['B', 'A']);
        const connects = num('connect', 0);
        for (let i = 0; connects > 0 && i < repeats; i++) {
          for (const side of order(i)) {
            const c = await connectPhase(rigs[side], 0, connects, only(side));
            push(side, `connect ${connects}: server CPU µs per connect`, c.server_cpu_us_per_conn);
            push(side, `connect ${connects}: connects/s`, c.per_sec);
            log(`${side} connect: ${c.per_sec}/s, ${c.server_cpu_us_per_conn} µs`);
            await rigs[side].loadgen.closeAll();
            await sleep(500);
          }
        }
        const idle = num('memory', 0);
        for (let i = 0; idle > 0 && i < Math.max(1, Math.floor(repeats / 2)); i++) {
          for (const side of order(i)) {
            const before = await memorySample(rigs[side]);
            await connectPhase(rigs[side], 0, idle, only(side));
            await sleep(2000);
            const ready = (await rigs[side].loadgen.stats()).ready;
            const m = memoryOutcome(ready, before, await memorySample(rigs[side]));
            push(side, `idle ${idle}: RSS per connection (B)`, m.rss_per_conn_bytes);
            push(side, `idle ${idle}: heap per connection (B)`, m.heap_per_conn_bytes);
            log(`${side} idle ${ready}: ${m.rss_per_conn_bytes} B RSS, ${m.heap_per_conn_bytes} B heap per connection`);
            await rigs[side].loadgen.closeAll();
            await sleep(500);
          }
        }
        if (n > 0 && (rates.length > 0 || args.fanout)) {
          for (const side of ['A', 'B'] as const) await connectPhase(rigs[side], 0, n, only(side));
          for (let i = 0; args.fanout && i < repeats; i++) {
            for (const side of order(i)) {
              const f = await fanout(rigs[side], { connections: n, windowMs: 4000, warmupMs: 1000, concurrency: 8, target: target(side) });
              push(side, `fan-out N=${n} max rate: CPU µs per msg`, f.cpu_us_per_msg);
              push(side, `fan-out N=${n} max rate: writes per msg`, f.writes_per_msg);
              log(`${side} fan-out: ${f.cpu_us_per_msg} µs/msg`);
            }
          }
          for (const rate of rates) {
            for (let i = 0; i < repeats; i++) {
              for (const side of order(i)) {
                const l = await latency(rigs[side], { connections: n, rate, windowMs: 5000, warmupMs: 1000, target: target(side) });
                const k = `N=${n} × ${rate} ev/s`;
                push(side, `${k}: CPU µs per msg`, l.cpu_us_per_msg);
                push(side, `${k}:   user`, l.user_us_per_msg);
                push(side, `${k}:   kernel`, l.sys_us_per_msg);
                push(side, `${k}: p50 ms`, l.p50_ms);
                push(side, `${k}: p99 ms`, l.p99_ms);
                push(side, `${k}: other processes (cores)`, l.other_cores);
                log(`${side} ${k}: ${l.cpu_us_per_msg} µs/msg, p50 ${l.p50_ms} p99 ${l.p99_ms} ms (others ${l.other_cores} cores)`);
              }
            }
          }
        }
      }),
    );
  } finally {
    await Promise.allSettled([servers.A.stop(), servers.B.stop()]);
  }
  return results;
}

export function formatAb(results: Record<Side, Record<string, number[]>>): string {
  const r = (v: number | null) => (v === null ? '—' : String(Math.round(v * 100) / 100));
  const rows = Object.keys(results.A).map((key) => {
    const a = median(results.A[key] ?? []);
    const b = median(results.B[key] ?? []);
    return [key, `${r(a)} [${(results.A[key] ?? []).map(r).join(', ')}]`, `${r(b)} [${(results.B[key] ?? []).map(r).join(', ')}]`, a && b !== null ? (b / a).toFixed(2) + '×' : '—'];
  });
  const head = ['', 'A (base): median [values]', 'B (this build)', 'B/A'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [head, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const args = parse(process.argv.slice(2));
  runAb(args).then(
    (results) => {
      process.stdout.write(formatAb(results) + '\n');
      if (typeof args.out === 'string') writeFileSync(args.out, JSON.stringify(results, null, 2) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`ab failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
