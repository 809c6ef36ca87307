/**
 * Cluster mode (SPEC §7, issue 13 item 3): three tpx nodes on one private PostgreSQL (durable
 * defaults) and one private Redis, all on the server core, each node with its own load generator
 * and the publisher on the client core.
 *
 * One account X. Phase h = 1, 2, 3: X's subscribers are on the first h nodes (the same number on
 * each), all three nodes are up throughout, and events are published on node A at a fixed rate.
 * Per phase: server CPU per delivered message on each node, PostgreSQL's and Redis's CPU per
 * event, Redis commands and bytes per event (INFO commandstats / stats deltas: must grow with h,
 * the nodes holding X, and not with the nodes up), publish→receive latency on each node (A local,
 * B and C across the bus), and seq order (checked per connection by the load generators).
 * A last window publishes on all three nodes at once: seq must stay in order everywhere.
 */
import { randomBytes } from 'node:crypto';
import type { BenchAccount, NodeServer } from '../lib/children.js';
import { PgMeter, startPostgres, startRedis, RedisMeter, type Datastore, type PgDelta, type RedisDelta } from '../lib/datastores.js';
import { Hist, type LatencySummary } from '../lib/hist.js';
import type { Plan } from '../lib/plan.js';
import { CpuMeter } from '../lib/proc.js';
import { withClients } from '../lib/rig.js';
import { createAccounts } from '../lib/children.js';
import { startTpx } from '../lib/tpx.js';
import { connectPhase, drain, publishRun, round, type Rig } from '../scenarios.js';
import { sleep } from '../lib/children.js';

export interface ClusterNodeWindow {
  node: string;
  connections: number;
  delivered: number;
  missing: number;
  server_cpu_us: number;
  /** Server CPU per message this node delivered (null when it holds no subscriber). */
  cpu_us_per_msg: number | null;
  /** CPU per published event, gross. */
  cpu_us_per_event: number;
  /** CPU per published event net of the node's idle CPU over the window (≈ 0 for a node that holds nobody). */
  net_cpu_us_per_event: number;
  latency: LatencySummary | null;
  seq_gaps: number;
  seq_dups: number;
}

/** CPU each process uses with nothing published (polling, keepalive, background work), µs per second. */
export interface ClusterIdle {
  window_ms: number;
  nodes: Record<string, number>;
  postgres: number;
  redis: number;
  /** Statements per second the idle nodes run on PostgreSQL (polling), and which. */
  postgres_statements_per_sec: number;
  postgres_top: PgDelta['top'];
}

export interface ClusterWindow {
  /** How many nodes hold subscribers of the account. */
  holding: number;
  publish_on: string[];
  rate: number;
  events_published: number;
  nodes: ClusterNodeWindow[];
  redis: RedisDelta & { commands_per_event: number; publish_per_event: number; in_bytes_per_event: number; out_bytes_per_event: number };
  /** CPU per event net of what the process spends idle over the same time (see ClusterIdle). */
  postgres_cpu_us_per_event: number;
  redis_cpu_us_per_event: number;
  /** PostgreSQL statements per event (all nodes; BEGIN/COMMIT included), gross and net of the idle polling. */
  postgres_statements_per_event: number;
  postgres_statements_per_event_net: number;
  postgres_top: PgDelta['top'];
  seq_ok: boolean;
}

export interface ClusterResult {
  nodes: number;
  idle?: ClusterIdle;
  connections_per_node: number;
  rate: number;
  windows: ClusterWindow[];
  /** Frame size on the wire (bytes of one event frame as the clients received it). */
  frame_bytes: number | null;
  error?: string;
}

/** Nest `withClients` over several servers sharing the same accounts. */
async function withAllClients<T>(servers: NodeServer[], plan: Plan, accounts: BenchAccount[], log: (m: string) => void, body: (rigs: Rig[]) => Promise<T>): Promise<T> {
  const rigs: Rig[] = [];
  const step = (i: number): Promise<T> =>
    i === servers.length
      ? body(rigs)
      : withClients(servers[i], plan, accounts, log, (rig) => {
          rigs.push(rig);
          return step(i + 1);
        });
  return step(0);
}

async function clusterWindow(
  rigs: Rig[],
  names: string[],
  holding: number,
  publishers: number[],
  conns: number,
  plan: Plan,
  stores: Stores,
  target: { account_ids: string[] },
  idle: ClusterIdle,
): Promise<ClusterWindow> {
  const rate = plan.cluster_rate;
  // Warm-up: a second of the same stream, drained everywhere.
  const w0 = await Promise.all(rigs.map((r) => r.loadgen.stats()));
  const warm = await Promise.all(
    publishers.map((p) => rigs[p].publisher.run(publishRun(rigs[p], { mode: 'rate', rate: rate / publishers.length, durationMs: 1000, concurrency: 16, target }))),
  );
  const warmEvents = warm.reduce((a, w) => a + w.events_accepted, 0);
  await Promise.all(rigs.slice(0, holding).map((r, i) => drain(r, w0[i].events, warmEvents * conns, 3000, 30_000)));

  for (const r of rigs) await r.loadgen.latency(true);
  const s0 = await Promise.all(rigs.map((r) => r.loadgen.stats(true)));
  const cpu = rigs.map((r) => new CpuMeter(r.server.pid, true));
  const pgCpu = new CpuMeter(stores.pg.pid, true);
  const redisCpu = new CpuMeter(stores.redis.pid, true);
  await stores.meter.start();
  await stores.pgMeter.start();
  for (const c of [...cpu, pgCpu, redisCpu]) c.start();
  const res = await Promise.all(
    publishers.map((p) =>
      rigs[p].publisher.run(publishRun(rigs[p], { mode: 'rate', rate: rate / publishers.length, durationMs: plan.cluster_window_ms, concurrency: 16, target })),
    ),
  );
  const events = res.reduce((a, r) => a + r.events_accepted, 0);
  const s1 = await Promise.all(rigs.map((r, i) => (i < holding ? drain(r, s0[i].events, events * conns, 3000, 30_000) : r.loadgen.stats(true))));
  const c1 = cpu.map((c) => c.stop());
  const pg = pgCpu.stop();
  const rd = redisCpu.stop();
  const redis = await stores.meter.stop();
  const statements = await stores.pgMeter.stop();
  for (const r of rigs) await r.loadgen.latency(false);
  const nodes = rigs.map((_, i): ClusterNodeWindow => {
    const holds = i < holding;
    const delivered = s1[i].events - s0[i].events;
    const h = new Hist();
    h.merge(s1[i].latency);
    return {
      node: names[i],
      connections: holds ? conns : 0,
      delivered,
      missing: holds ? Math.max(0, events * conns - delivered) : 0,
      server_cpu_us: Math.round(c1[i].cpu_us),
      cpu_us_per_msg: holds && delivered ? round(c1[i].cpu_us / delivered, 3) : null,
      cpu_us_per_event: events ? round(c1[i].cpu_us / events, 1) : 0,
      net_cpu_us_per_event: events ? round((c1[i].cpu_us - (idle.nodes[names[i]] * c1[i].wall_ms) / 1000) / events, 1) : 0,
      latency: holds ? h.summaryMs() : null,
      seq_gaps: s1[i].seq_gaps - s0[i].seq_gaps,
      seq_dups: s1[i].seq_dups - s0[i].seq_dups,
    };
  });
  const per = (v: number) => (events ? round(v / events, 2) : 0);
  const net = (c: { cpu_us: number; wall_ms: number }, idleRate: number) => per(c.cpu_us - (idleRate * c.wall_ms) / 1000);
  return {
    holding,
    publish_on: publishers.map((p) => names[p]),
    rate,
    events_published: events,
    nodes,
    redis: {
      ...redis,
      commands_per_event: per(redis.total_commands),
      publish_per_event: per(redis.commands.publish ?? 0),
      in_bytes_per_event: per(redis.net_input_bytes),
      out_bytes_per_event: per(redis.net_output_bytes),
    },
    postgres_cpu_us_per_event: net(pg, idle.postgres),
    redis_cpu_us_per_event: net(rd, idle.redis),
    postgres_statements_per_event: per(statements.calls),
    postgres_statements_per_event_net: per(statements.calls - (idle.postgres_statements_per_sec * pg.wall_ms) / 1000),
    postgres_top: statements.top.map((t) => ({ ...t, calls: per(t.calls) })),
    seq_ok: nodes.every((n) => n.seq_gaps === 0 && n.seq_dups === 0 && n.missing === 0),
  };
}

interface Stores {
  pg: Datastore;
  redis: Datastore;
  meter: RedisMeter;
  pgMeter: PgMeter;
}

/** Every process's CPU, and the statements PostgreSQL runs, with nothing published and nobody subscribed. */
async function idleWindow(rigs: Rig[], names: string[], stores: Stores, ms: number): Promise<ClusterIdle> {
  const meters = rigs.map((r) => new CpuMeter(r.server.pid, true));
  const pg = new CpuMeter(stores.pg.pid, true);
  const redis = new CpuMeter(stores.redis.pid, true);
  await stores.pgMeter.start();
  for (const m of [...meters, pg, redis]) m.start();
  await sleep(ms);
  const rate = (m: CpuMeter) => {
    const r = m.stop();
    return round((r.cpu_us / r.wall_ms) * 1000, 0);
  };
  const nodes = Object.fromEntries(meters.map((m, i) => [names[i], rate(m)]));
  const pgRate = rate(pg);
  const redisRate = rate(redis);
  const st = await stores.pgMeter.stop();
  const perSec = (v: number) => round((v / ms) * 1000, 2);
  return {
    window_ms: ms,
    nodes,
    postgres: pgRate,
    redis: redisRate,
    postgres_statements_per_sec: perSec(st.calls),
    postgres_top: st.top.map((t) => ({ ...t, calls: perSec(t.calls) })),
  };
}

export async function runCluster(plan: Plan, log: (m: string) => void): Promise<ClusterResult> {
  const out: ClusterResult = { nodes: plan.cluster_nodes, connections_per_node: plan.cluster_conns_per_node, rate: plan.cluster_rate, windows: [], frame_bytes: null };
  const started: Array<{ stop(): Promise<void> }> = [];
  let meter: RedisMeter | null = null;
  let pgMeter: PgMeter | null = null;
  try {
    const [pg, redis] = await Promise.all([startPostgres(plan.pins), startRedis(plan.pins)]);
    started.push(pg, redis);
    log(`cluster: PostgreSQL pid ${pg.pid} (fsync on), Redis pid ${redis.pid}`);
    const adminToken = 'bench_' + randomBytes(18).toString('hex');
    const names = Array.from({ length: plan.cluster_nodes }, (_, i) => String.fromCharCode(97 + i));
    const start = (n: string) =>
      startTpx(plan, {
        durability: 'synced',
        name: `tpx node ${n}`,
        adminToken,
        env: { TPX_DATABASE_URL: pg.url, TPX_REDIS_URL: redis.url, TPX_NODE_ID: `bench-${n}` },
      });
    // The first node creates the schema; the others start together (SPEC §7 allows both).
    const first = await start(names[0]);
    started.push(first);
    const rest = await Promise.all(names.slice(1).map(start));
    started.push(...rest);
    const servers = [first, ...rest];
    log(`cluster: nodes ${servers.map((s) => `${s.name} pid ${s.pid}`).join(', ')}`);
    const accounts = await createAccounts(first, 1);
    const target = { account_ids: [accounts[0].account_id] };
    meter = new RedisMeter(redis.url);
    pgMeter = new PgMeter(pg.url);
    const stores: Stores = { pg, redis, meter, pgMeter };
    await withAllClients(servers, plan, accounts, log, async (rigs) => {
      const conns = plan.cluster_conns_per_node;
      const idle = await idleWindow(rigs, names, stores, Math.max(2000, plan.cluster_window_ms / 2));
      out.idle = idle;
      log(
        `cluster: idle CPU (µs/s): ${Object.entries(idle.nodes)
          .map(([n, v]) => `node ${n} ${v}`)
          .join(', ')}, PostgreSQL ${idle.postgres}, Redis ${idle.redis}; PostgreSQL statements/s ${idle.postgres_statements_per_sec}`,
      );
      for (let h = 1; h <= servers.length; h++) {
        const c = await connectPhase(rigs[h - 1], 0, conns, accounts);
        if (c.ready !== conns) throw new Error(`node ${names[h - 1]}: only ${c.ready}/${conns} subscribers connected (${JSON.stringify(c.failures)})`);
        const w = await clusterWindow(rigs, names, h, [0], conns, plan, stores, target, idle);
        out.windows.push(w);
        log(
          `cluster: ${h} node(s) holding, publish on a: ` +
            w.nodes.map((n) => `${n.node} ${n.cpu_us_per_msg ?? '-'} µs/msg p50 ${n.latency?.p50_ms ?? '-'} p99 ${n.latency?.p99_ms ?? '-'} ms`).join('; ') +
            `; Redis ${w.redis.commands_per_event} cmd, ${w.redis.out_bytes_per_event} B out per event; seq ${w.seq_ok ? 'ok' : 'BROKEN'}`,
        );
      }
      const all = await clusterWindow(rigs, names, servers.length, servers.map((_, i) => i), conns, plan, stores, target, idle);
      out.windows.push(all);
      log(`cluster: publish on every node at once: seq ${all.seq_ok ? 'ok' : 'BROKEN'} (${all.events_published} events)`);
      const st = await rigs[0].loadgen.stats();
      out.frame_bytes = st.events ? Math.round(st.bytes / st.events) : null;
      for (const r of rigs) await r.loadgen.closeAll();
    });
  } catch (err) {
    out.error = String((err as Error).stack ?? err);
    log(`cluster: FAILED: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await meter?.close();
    await pgMeter?.close();
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
  }
  return out;
}
