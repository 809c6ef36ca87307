/**
 * Synced vs relaxed durability in the same run (issue 10): two tpx servers, one started with
 * TPX_DURABILITY=synced and one with relaxed, both pinned to the server core, each with 1,000
 * subscribers of one account. The windows alternate between the two (synced first in odd
 * repeats, relaxed first in even ones) so drift on the shared host hits both alike.
 *
 * Per mode: fan-out CPU per message (N=1,000, max rate), latency p50/p99 at each of
 * `plan.durability_rates` (20 and 100 events/s), single and batched publish/s to an account with
 * no connection (accept + validate + persist, the cost durability adds).
 */
import type { NodeServer } from '../lib/children.js';
import type { Plan } from '../lib/plan.js';
import { repeated, type Repeated } from '../lib/repeat.js';
import { withClients } from '../lib/rig.js';
import { serverReadsDurability, startTpx, type Durability } from '../lib/tpx.js';
import {
  connectPhase,
  fanout,
  latency,
  publishApi,
  type FanoutOutcome,
  type LatencyOutcome,
  type PublishOutcome,
  type Rig,
} from '../scenarios.js';
import { FANOUT_FIELDS, LATENCY_FIELDS } from './peers.js';

export interface DurabilityMode {
  fanout?: Repeated<FanoutOutcome>;
  latency: Record<string, Repeated<LatencyOutcome>>;
  publish_single?: Repeated<PublishOutcome>;
  publish_batch?: Repeated<PublishOutcome>;
}

export interface DurabilityResult {
  /** False while the server under test ignores TPX_DURABILITY (both columns are then the same server). */
  server_reads_durability: boolean;
  connections: number;
  modes: Partial<Record<Durability, DurabilityMode>>;
  error?: string;
}

const PUBLISH_FIELDS: Array<keyof PublishOutcome & string> = ['events_per_sec', 'response_p50_ms', 'response_p99_ms', 'server_cpu_us_per_event'];
const MODES: Durability[] = ['synced', 'relaxed'];

async function measureMode(rig: Rig, plan: Plan, connections: number, acc: { runs: Record<string, unknown[]> }, label: string): Promise<void> {
  const push = (k: string, v: unknown) => (acc.runs[k] ??= []).push(v);
  const subscribers = { account_ids: [rig.accounts[0].account_id] };
  const empty = { account_ids: [rig.accounts[1].account_id] };
  const f = await fanout(rig, {
    connections,
    windowMs: Math.min(plan.fanout_window_ms, plan.durability_window_ms),
    warmupMs: plan.fanout_warmup_ms,
    concurrency: plan.fanout_concurrency,
    target: subscribers,
  });
  push('fanout', f);
  rig.log(`${label}: fan-out N=${connections}: ${f.cpu_us_per_msg} µs CPU/msg, ${f.publish_per_sec} events/s`);
  for (const rate of plan.durability_rates) {
    const l = await latency(rig, { connections, rate, windowMs: plan.durability_window_ms, warmupMs: plan.latency_warmup_ms, target: subscribers });
    push(`latency_${rate}`, l);
    rig.log(`${label}: ${rate} ev/s × ${connections}: p50 ${l.p50_ms} p99 ${l.p99_ms} ms`);
  }
  const single = await publishApi(rig, {
    batch: 1,
    concurrency: plan.publish_concurrency_single,
    windowMs: plan.publish_window_ms,
    warmupMs: plan.publish_warmup_ms,
    target: empty,
  });
  push('publish_single', single);
  const batch = await publishApi(rig, {
    batch: plan.publish_batch,
    concurrency: plan.publish_concurrency_batch,
    windowMs: plan.publish_window_ms,
    warmupMs: plan.publish_warmup_ms,
    target: empty,
  });
  push('publish_batch', batch);
  rig.log(`${label}: publish single ${single.events_per_sec}/s, batch ×${plan.publish_batch} ${batch.events_per_sec}/s`);
}

export async function runDurability(plan: Plan, log: (m: string) => void): Promise<DurabilityResult> {
  const out: DurabilityResult = { server_reads_durability: serverReadsDurability(), connections: 0, modes: {} };
  if (!out.server_reads_durability) {
    log('durability: the server does not read TPX_DURABILITY yet: both modes run the same store settings');
  }
  const servers: Partial<Record<Durability, NodeServer>> = {};
  try {
    for (const m of MODES) servers[m] = await startTpx(plan, { durability: m, name: `tpx ${m}` });
    await withClients(servers.synced!, plan, 2, log, (synced) =>
      withClients(servers.relaxed!, plan, 2, log, async (relaxed) => {
        const rigs: Record<Durability, Rig> = { synced, relaxed };
        for (const m of MODES) {
          const c = await connectPhase(rigs[m], 0, plan.small, rigs[m].accounts.slice(0, 1));
          out.connections = c.ready;
        }
        const acc: Record<Durability, { runs: Record<string, unknown[]> }> = { synced: { runs: {} }, relaxed: { runs: {} } };
        for (let i = 0; i < plan.repeats; i++) {
          const order = i % 2 === 0 ? MODES : [...MODES].reverse();
          for (const m of order) await measureMode(rigs[m], plan, out.connections, acc[m], `tpx ${m}`);
        }
        for (const m of MODES) {
          const r = acc[m].runs;
          out.modes[m] = {
            fanout: repeated(r.fanout as FanoutOutcome[], FANOUT_FIELDS),
            latency: Object.fromEntries(
              plan.durability_rates.map((rate) => [String(rate), repeated(r[`latency_${rate}`] as LatencyOutcome[], LATENCY_FIELDS)]),
            ),
            publish_single: repeated(r.publish_single as PublishOutcome[], PUBLISH_FIELDS),
            publish_batch: repeated(r.publish_batch as PublishOutcome[], PUBLISH_FIELDS),
          };
        }
        for (const m of MODES) await rigs[m].loadgen.closeAll();
      }),
    );
  } catch (err) {
    out.error = String((err as Error).stack ?? err);
    log(`durability: FAILED: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await Promise.allSettled(MODES.map((m) => servers[m]?.stop()));
  }
  return out;
}
