/**
 * The peer table of issue 13: the same rows for nginx + nchan, bare `ws` and tpx-realtime (synced
 * durability), each server pinned to one core with its clients on the other, every row the
 * median of `plan.repeats` windows. All subscribers belong to ONE account (one nchan channel).
 *
 * Order per peer (one server process for all rows, like a deployment that has been up a while):
 * RSS before any connection → connect 5,000 (repeat 1, cold) → up to 10,000 idle → RSS per
 * connection → fan-out N=10,000 × repeats → close → connect 5,000 × (repeats − 1) → 1,000
 * connections → fan-out N=1,000 × repeats → latency at each rate × repeats.
 */
import path from 'node:path';
import { NodeServer, REPO_ROOT, sleep, type BenchServer, type PeerKind } from '../lib/children.js';
import { summarizeCpuProfile, type ProfileSummary } from '../lib/cpuprofile.js';
import type { Plan } from '../lib/plan.js';
import { treeMemory } from '../lib/proc.js';
import { repeated, type Repeated } from '../lib/repeat.js';
import { withClients } from '../lib/rig.js';
import { startTpx } from '../lib/tpx.js';
import { NchanServer, type NchanInstall } from '../nchan.js';
import {
  connectPhase,
  fanout,
  latency,
  memoryOutcome,
  memorySample,
  type ConnectOutcome,
  type FanoutOutcome,
  type LatencyOutcome,
  type MemoryOutcome,
} from '../scenarios.js';

export type PeerScenario = 'fanout' | 'latency' | 'connect' | 'memory';

export interface PeerResult {
  kind: PeerKind;
  name: string;
  /** Software and version (e.g. "nginx/1.22.1 + nchan 1.3.6"). */
  version: string;
  /** Whether clients authenticate (tpx: API key; nchan and the bare-ws baseline: no auth at all). */
  auth: boolean;
  /** Resident memory of the server's processes after start-up, before any connection. */
  rss_before_bytes?: number;
  memory?: MemoryOutcome;
  connect?: Repeated<ConnectOutcome>;
  fanout?: Record<string, Repeated<FanoutOutcome>>;
  latency?: Record<string, Repeated<LatencyOutcome>>;
  /** `--profile`: a V8 CPU profile per measured phase (Node servers), summarised. */
  profiles?: Record<string, ProfileSummary>;
  error?: string;
}

export const FANOUT_FIELDS: Array<keyof FanoutOutcome & string> = [
  'cpu_us_per_msg',
  'user_us_per_msg',
  'sys_us_per_msg',
  'writes_per_msg',
  'delivered_per_sec',
  'missing',
  'other_cores',
];
export const LATENCY_FIELDS: Array<keyof LatencyOutcome & string> = [
  'p50_ms',
  'p90_ms',
  'p99_ms',
  'max_ms',
  'cpu_us_per_msg',
  'missing',
  'server_loop_delay_max_ms',
  'server_gc_max_ms',
  'other_cores',
];
const CONNECT_FIELDS: Array<keyof ConnectOutcome & string> = ['per_sec', 'server_cpu_us_per_conn', 'failed'];

export interface PeerContext {
  plan: Plan;
  scenarios: Set<PeerScenario>;
  nchan: NchanInstall | null;
  profileDir?: string;
  log(m: string): void;
}

async function startPeer(kind: PeerKind, ctx: PeerContext): Promise<{ server: BenchServer; version: string }> {
  if (kind === 'nchan') {
    const s = await NchanServer.start(ctx.nchan!, { pins: ctx.plan.pins });
    return { server: s, version: ctx.nchan!.version };
  }
  if (kind === 'ws') {
    const s = await NodeServer.start({ kind: 'ws', name: 'bare ws', pins: ctx.plan.pins });
    return { server: s, version: `ws 8 (node ${process.version})` };
  }
  const s = await startTpx(ctx.plan, { durability: 'synced', name: 'tpx' });
  return { server: s, version: `tpx-realtime, TPX_DURABILITY=synced (node ${process.version})` };
}

export async function runPeer(kind: PeerKind, ctx: PeerContext): Promise<PeerResult> {
  const { plan, scenarios: sel, log } = ctx;
  const { server, version } = await startPeer(kind, ctx);
  const out: PeerResult = { kind, name: server.name, version, auth: kind === 'tpx' };
  const name = server.name;
  // `--profile`: one CPU profile per phase, of the measured windows only.
  const profiled = <T>(label: string, body: () => Promise<T>): Promise<T> => {
    if (!ctx.profileDir || !(server instanceof NodeServer)) return body();
    const file = path.join(ctx.profileDir, `${kind}-${label.replace(/[^\w.-]+/g, '_')}.cpuprofile`);
    return server.profiled(file, body).then((r) => {
      (out.profiles ??= {})[label] = summarizeCpuProfile(file, REPO_ROOT);
      return r;
    });
  };
  try {
    await withClients(server, plan, 1, log, async (rig) => {
      const only = rig.accounts.slice(0, 1);
      const target = { account_ids: [only[0].account_id] };
      log(`${name}: pid ${server.pid}, port ${server.port} (${version})`);
      await sleep(1000);
      out.rss_before_bytes = treeMemory(server.pid).rss;
      log(`${name}: RSS before any connection ${(out.rss_before_bytes / 1048576).toFixed(1)} MiB`);

      const connectRuns: ConnectOutcome[] = [];
      const needBig = sel.has('connect') || sel.has('memory') || sel.has('fanout');
      if (needBig) {
        const before = sel.has('memory') ? await memorySample(rig) : null;
        const first = sel.has('connect') ? plan.connect_clients : 0;
        const total = sel.has('memory') || sel.has('fanout') ? plan.big : first;
        if (first > 0) {
          const c = await profiled('connect (cold)', () => connectPhase(rig, 0, first, only));
          connectRuns.push(c);
          log(`${name}: connect ${c.ready}/${first} → ${c.per_sec}/s, ${c.server_cpu_us_per_conn} µs CPU/connection`);
        }
        if (total > first) await connectPhase(rig, first, total, only);
        const ready = (await rig.loadgen.stats()).ready;
        if (before) {
          await sleep(2000);
          out.memory = memoryOutcome(ready, before, await memorySample(rig));
          log(`${name}: ${ready} idle connections: +${out.memory.rss_per_conn_bytes} B RSS each`);
        }
        if (sel.has('fanout')) {
          const runs: FanoutOutcome[] = [];
          for (let i = 0; i < plan.repeats; i++) {
            const f = await profiled(`fan-out N=${ready}`, () => fanout(rig, {
              connections: ready,
              windowMs: plan.fanout_window_ms,
              warmupMs: plan.fanout_warmup_ms,
              concurrency: plan.fanout_concurrency,
              target,
            }));
            runs.push(f);
            log(`${name}: fan-out N=${ready} max rate: ${f.delivered_per_sec} msg/s, ${f.cpu_us_per_msg} µs CPU/msg, missing ${f.missing}`);
          }
          (out.fanout ??= {})[String(plan.big)] = repeated(runs, FANOUT_FIELDS);
        }
        await rig.loadgen.closeAll();
        await sleep(500);
        if (sel.has('connect')) {
          for (let i = 1; i < plan.repeats; i++) {
            const c = await profiled('connect (warm)', () => connectPhase(rig, 0, plan.connect_clients, only));
            connectRuns.push(c);
            log(`${name}: connect ${c.ready}/${plan.connect_clients} → ${c.per_sec}/s, ${c.server_cpu_us_per_conn} µs CPU/connection`);
            await rig.loadgen.closeAll();
            await sleep(500);
          }
          out.connect = repeated(connectRuns, CONNECT_FIELDS);
        }
      }

      if (sel.has('fanout') || sel.has('latency')) {
        const c = await connectPhase(rig, 0, plan.small, only);
        log(`${name}: ${c.ready}/${plan.small} subscribers connected`);
        if (sel.has('fanout')) {
          const runs: FanoutOutcome[] = [];
          for (let i = 0; i < plan.repeats; i++) {
            const f = await profiled(`fan-out N=${c.ready}`, () => fanout(rig, {
              connections: c.ready,
              windowMs: plan.fanout_window_ms,
              warmupMs: plan.fanout_warmup_ms,
              concurrency: plan.fanout_concurrency,
              target,
            }));
            runs.push(f);
            log(`${name}: fan-out N=${c.ready} max rate: ${f.delivered_per_sec} msg/s, ${f.cpu_us_per_msg} µs CPU/msg, missing ${f.missing}`);
          }
          (out.fanout ??= {})[String(plan.small)] = repeated(runs, FANOUT_FIELDS);
        }
        if (sel.has('latency')) {
          out.latency = {};
          for (const rate of plan.latency_rates) {
            const runs: LatencyOutcome[] = [];
            for (let i = 0; i < plan.repeats; i++) {
              const l = await profiled(`${rate} ev/s × ${c.ready}`, () =>
                latency(rig, { connections: c.ready, rate, windowMs: plan.latency_window_ms, warmupMs: plan.latency_warmup_ms, target }),
              );
              runs.push(l);
              log(`${name}: ${rate} ev/s × ${c.ready}: p50 ${l.p50_ms} p99 ${l.p99_ms} ms, ${l.cpu_us_per_msg} µs CPU/msg, missing ${l.missing}`);
            }
            out.latency[String(rate)] = repeated(runs, LATENCY_FIELDS);
          }
        }
        await rig.loadgen.closeAll();
      }
    });
  } catch (err) {
    out.error = String((err as Error).stack ?? err);
    log(`${name}: FAILED: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await server.stop();
  }
  return out;
}
