/**
 * tpx benchmark orchestrator: `npm run bench`, or straight from the sources
 * `node --import tsx bench/run.ts [--quick] [--scenarios fanout,latency,...] [--servers nchan,ws,tpx]`.
 *
 * Suites, in order:
 * - the peer table (issue 13): nginx + nchan (when installed), a bare `ws` server and tpx (synced
 *   durability), each pinned to one core with its clients on the other, every row the median of
 *   3 windows (scenarios `fanout`, `latency`, `connect`, `memory`);
 * - synced vs relaxed durability in the same run (issue 10; `durability`);
 * - cluster mode: three nodes on one PostgreSQL and one Redis (SPEC §7; `cluster`);
 * - webhook dispatch (`webhooks`), and the opt-in 10-minute soak with slow consumers (`soak`).
 * The report prints each target's verdict as a ratio measured in this run and is saved as JSON
 * in bench/results/ (latest.json is the one kept in git).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runWebhookBaseline, type WebhookBaselineResult } from './webhook-baseline.js';
import type { ProfileSummary } from './lib/cpuprofile.js';
import { IS_TS, REPO_ROOT, benchFile, sleep, type PeerKind } from './lib/children.js';
import { makePlan, parseDurationMs, type Plan } from './lib/plan.js';
import { pin } from './lib/pin.js';
import { HostCpu } from './lib/proc.js';
import { med } from './lib/repeat.js';
import { withClients } from './lib/rig.js';
import { serverReadsDurability, startTpx } from './lib/tpx.js';
import { detectNchan, type NchanInstall } from './nchan.js';
import {
  PEER_LABEL,
  PEER_ORDER,
  clusterVerdicts,
  durabilityVerdicts,
  formatCluster,
  formatDurability,
  formatPeerTable,
  formatVerdicts,
  peerRows,
  peerVerdicts,
  runTimeVerdict,
  soakVerdict,
  type PeerRow,
  type Verdict,
} from './report.js';
import { round, soak, type SoakOutcome } from './scenarios.js';
import { runCluster, type ClusterResult } from './suites/cluster.js';
import { runDurability, type DurabilityResult } from './suites/durability.js';
import { runPeer, type PeerResult, type PeerScenario } from './suites/peers.js';

export const ALL_SCENARIOS = ['fanout', 'latency', 'connect', 'memory', 'durability', 'cluster', 'webhooks', 'soak'] as const;
export type ScenarioName = (typeof ALL_SCENARIOS)[number];
const DEFAULT_SCENARIOS: ScenarioName[] = ALL_SCENARIOS.filter((s) => s !== 'soak');
const PEER_SCENARIOS: PeerScenario[] = ['fanout', 'latency', 'connect', 'memory'];
const SCENARIO_ALIASES: Record<string, ScenarioName> = {
  'fan-out': 'fanout',
  connection: 'connect',
  'connection-rate': 'connect',
  mem: 'memory',
  webhook: 'webhooks',
  publish: 'durability', // publish/s is measured per durability mode
  synced: 'durability',
};

export interface BenchOptions {
  /** Scenarios to run (default: all but `soak`). Also accepted as a comma-separated string. */
  scenarios?: string[] | string;
  scenario?: string;
  /** Smaller N, shorter windows, one repeat (≈ 2–3 minutes). */
  quick?: boolean;
  /** Median of this many windows per figure (default 3; 1 with --quick). */
  repeats?: number;
  /** Also write the JSON report to this file. */
  out?: string;
  /** Load-generator worker threads (default 1 on ≤ 2 cores, else cores/2). */
  workers?: number;
  /** Soak duration (`10m`, `90s`, or ms). Default 10 minutes (2 with --quick). */
  soakDuration?: string | number;
  /** Fast consumers alone before the soak, for the quiet p99 (default 60 s; 20 s with --quick). */
  soakQuiet?: string | number;
  /** V8 CPU profiles of the tpx peer's measured phases (written to .tmp/bench-profiles/), summarised. */
  profile?: boolean;
  /** Peers to run: `nchan,ws,tpx` (default all; `baseline` means ws). */
  servers?: string;
  /** Pin servers and clients to separate cores (default true; `--no-pin` or `--pin false`). */
  pin?: boolean;
  /** Print progress lines (default true). */
  verbose?: boolean;
  /** Print the result tables (default true). */
  table?: boolean;
  [k: string]: unknown;
}

export interface BenchReport {
  tool: 'tpx-bench';
  version: 2;
  started_at: string;
  finished_at: string;
  duration_s: number;
  quick: boolean;
  scenarios: string[];
  host: { cpus: number; cpu_model: string; mem_gib: number; node: string; platform: string; kernel: string };
  plan: Plan;
  /** One frame as received (bytes on the wire incl. the WebSocket header), from the peers' fan-out. */
  frame_bytes: number | null;
  peers: Partial<Record<PeerKind, PeerResult | { skipped: string }>>;
  peer_table: PeerRow[];
  verdicts: Verdict[];
  targets: { met: number; missed: number; unknown: number };
  durability?: DurabilityResult;
  cluster?: ClusterResult;
  webhooks?: Record<string, unknown> | null;
  soak?: SoakOutcome | { error: string };
  /** `--profile`: per measured phase of the tpx peer (start-up excluded). */
  profiles?: Record<string, ProfileSummary>;
  notes: string[];
}

function selectScenarios(opts: BenchOptions): ScenarioName[] {
  let raw: string[] = [];
  if (Array.isArray(opts.scenarios)) raw = opts.scenarios;
  else if (typeof opts.scenarios === 'string') raw = opts.scenarios.split(',');
  if (typeof opts.scenario === 'string') raw.push(...opts.scenario.split(','));
  raw = raw.map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (raw.length === 0 || raw.includes('all')) return raw.includes('soak') ? [...DEFAULT_SCENARIOS, 'soak'] : [...DEFAULT_SCENARIOS];
  const out: ScenarioName[] = [];
  for (const r of raw) {
    const name = (SCENARIO_ALIASES[r] ?? r) as ScenarioName;
    if (!(ALL_SCENARIOS as readonly string[]).includes(name)) throw new Error(`unknown scenario "${r}" (known: ${ALL_SCENARIOS.join(', ')})`);
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

export function selectPeers(servers: unknown): PeerKind[] {
  const raw = String(servers ?? 'nchan,ws,tpx')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((s) => (s === 'baseline' || s === 'bare-ws' ? 'ws' : s));
  for (const s of raw) if (!(PEER_ORDER as string[]).includes(s)) throw new Error(`unknown server "${s}" (known: ${PEER_ORDER.join(', ')}, baseline = ws)`);
  return PEER_ORDER.filter((k) => raw.includes(k));
}

// ---- webhooks (bench/webhooks.ts from the webhook engineer, when present) ------------------------

async function runWebhooks(opts: BenchOptions, log: (m: string) => void): Promise<Record<string, unknown> | null> {
  const file = benchFile('webhooks');
  if (!existsSync(file)) {
    log('webhooks: bench/webhooks.ts not present; skipped');
    return null;
  }
  const mod = (await import(pathToFileURL(file).href)) as { runWebhookBench?: (o: Record<string, unknown>) => Promise<unknown> };
  if (typeof mod.runWebhookBench !== 'function') {
    log('webhooks: bench/webhooks.ts has no runWebhookBench export; skipped');
    return null;
  }
  log('webhooks: running runWebhookBench (real dispatcher, durable store)');
  const r = (await mod.runWebhookBench({ quick: opts.quick === true, log })) as unknown;
  const out: Record<string, unknown> = r && typeof r === 'object' ? { ...(r as Record<string, unknown>) } : { result: r };
  // Baseline: the same number of signed POSTs with the same number in flight, straight to a
  // fast receiver with no store (bench/webhook-baseline.ts).
  const deliveries = typeof out.deliveries === 'number' ? out.deliveries : opts.quick ? 5000 : 20_000;
  const endpoints = typeof out.endpoints === 'number' ? out.endpoints : 4;
  const perEndpoint = typeof out.concurrencyPerEndpoint === 'number' ? out.concurrencyPerEndpoint : 32;
  try {
    out.baseline = await runWebhookBaseline({ deliveries, inFlight: endpoints * perEndpoint });
    log(`webhooks: baseline bare sender ${(out.baseline as WebhookBaselineResult).deliveriesPerSec} deliveries/s`);
  } catch (err) {
    out.baseline_error = String((err as Error).message);
  }
  return out;
}

// ---- soak (opt-in) ------------------------------------------------------------------------------

async function runSoak(plan: Plan, log: (m: string) => void): Promise<SoakOutcome> {
  const server = await startTpx(plan, { durability: 'synced', name: 'tpx soak' });
  try {
    // 100 accounts × 10 connections, every event to all of them (the last round's soak shape).
    return await withClients(server, plan, 100, log, async (rig) => {
      const out = await soak(rig, {
        connections: plan.soak_connections,
        accounts: rig.accounts,
        rate: plan.soak_rate,
        durationMs: plan.soak_duration_ms,
        quietMs: plan.soak_quiet_ms,
        sampleMs: plan.soak_sample_ms,
        slowReadBytesPerSec: plan.soak_slow_read_bytes_per_sec,
        target: { account_ids: rig.accounts.map((a) => a.account_id) },
      });
      await rig.loadgen.closeAll();
      return out;
    });
  } finally {
    await server.stop();
  }
}

// ---- entry ---------------------------------------------------------------------------------------

function hostInfo(): BenchReport['host'] {
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    mem_gib: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
  };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const started = new Date();
  const t0 = performance.now();
  const quick = opts.quick === true;
  const verbose = opts.verbose !== false;
  const log = (msg: string) => {
    if (verbose) process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
  };
  const scenarios = selectScenarios(opts);
  const sel = new Set(scenarios);
  const plan = makePlan({ ...opts, pin: opts.pin !== false && opts.noPin !== true });
  const peersWanted = selectPeers(opts.servers);
  const notes: string[] = [];
  // The orchestrator polls the clients and reads /proc: it belongs with the clients, off the server core.
  pin(process.pid, plan.pins.clients, plan.pins);
  log(
    `scenarios: ${scenarios.join(', ')}${quick ? ' (quick)' : ''}; peers: ${peersWanted.join(', ')}; median of ${plan.repeats}; ` +
      (plan.pins.enabled ? `servers on CPU ${plan.pins.server}, clients on CPU ${plan.pins.clients}` : `not pinned: ${plan.pins.reason}`) +
      `; ${IS_TS ? 'sources via tsx' : 'built dist/'}`,
  );
  if (!plan.pins.enabled) notes.push(`servers and clients not pinned to separate cores (${plan.pins.reason})`);
  {
    const h = new HostCpu();
    h.start();
    await sleep(1000);
    const busy = h.stop().busy_cores;
    if (busy > 0.3) {
      const msg = `host already busy before the run (${round(busy, 2)} of ${os.cpus().length} cores used by other processes): absolute figures are unreliable; ratios less so`;
      notes.push(msg);
      log(`WARNING: ${msg}`);
    }
  }
  let profileDir: string | undefined;
  if (opts.profile) {
    profileDir = path.join(REPO_ROOT, '.tmp', 'bench-profiles', started.toISOString().replace(/[:.]/g, '-'));
    mkdirSync(profileDir, { recursive: true });
  }

  // ---- peers ----
  const peerSel = new Set(PEER_SCENARIOS.filter((s) => sel.has(s)));
  const peers: BenchReport['peers'] = {};
  const ran: Partial<Record<PeerKind, PeerResult>> = {};
  if (peerSel.size > 0) {
    let nchan: NchanInstall | null = null;
    if (peersWanted.includes('nchan')) {
      const found = detectNchan();
      if ('missing' in found) {
        const msg = `nchan peer skipped: ${found.missing}; bare ws remains the baseline`;
        log(msg);
        notes.push(msg);
        peers.nchan = { skipped: found.missing };
      } else nchan = found;
    }
    for (const kind of peersWanted) {
      if (kind === 'nchan' && !nchan) continue;
      const r = await runPeer(kind, { plan, scenarios: peerSel, nchan, profileDir: kind === 'tpx' ? profileDir : undefined, log });
      peers[kind] = r;
      ran[kind] = r;
      if (r.error) notes.push(`${PEER_LABEL[kind]} failed: ${r.error.split('\n')[0]}`);
    }
  }

  // ---- durability, cluster, webhooks, soak ----
  let durability: DurabilityResult | undefined;
  if (sel.has('durability')) {
    durability = await runDurability(plan, log);
    if (durability.error) notes.push(`durability failed: ${durability.error.split('\n')[0]}`);
  }
  if ((sel.has('durability') || sel.has('cluster') || sel.has('soak') || ran.tpx) && !serverReadsDurability()) {
    notes.push('the server under test does not read TPX_DURABILITY yet: every tpx row runs its current store settings (the benchmark passes the variable so the rows are right once the store work lands)');
  }
  let cluster: ClusterResult | undefined;
  if (sel.has('cluster')) {
    cluster = await runCluster(plan, log);
    if (cluster.error) notes.push(`cluster failed: ${cluster.error.split('\n')[0]}`);
  }
  let webhooks: Record<string, unknown> | null | undefined;
  if (sel.has('webhooks')) {
    try {
      webhooks = await runWebhooks(opts, log);
    } catch (err) {
      webhooks = { error: String((err as Error).stack ?? err) };
      notes.push(`webhooks failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  let soakOut: SoakOutcome | { error: string } | undefined;
  if (sel.has('soak')) {
    try {
      soakOut = await runSoak(plan, log);
    } catch (err) {
      soakOut = { error: String((err as Error).stack ?? err) };
      notes.push(`soak failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  const profiles = ran.tpx?.profiles;
  if (profileDir && !profiles) notes.push('--profile: no profile was recorded (the tpx peer did not run a measured phase)');

  // ---- report ----
  const rows = peerSel.size ? peerRows(ran, plan) : [];
  const soakOk = soakOut && !('error' in soakOut) ? soakOut : undefined;
  const verdicts: Verdict[] = [
    ...(peerSel.size ? peerVerdicts(rows, ran, plan) : []),
    soakVerdict(soakOk, soakOut ? 'soak failed' : 'soak is opt-in (--scenarios soak)'),
    ...(durability ? durabilityVerdicts(durability, plan.durability_rates) : []),
    ...(cluster ? clusterVerdicts(cluster) : []),
  ];
  for (const kind of Object.keys(ran) as PeerKind[]) {
    const noisy: string[] = [];
    for (const [what, r] of [
      ...Object.entries(ran[kind]!.fanout ?? {}).map(([k, v]) => [`fan-out N=${k}`, v] as const),
      ...Object.entries(ran[kind]!.latency ?? {}).map(([k, v]) => [`${k} ev/s`, v] as const),
    ]) {
      const worst = Math.max(0, ...r.runs.map((x) => x.other_cores));
      if (worst > 0.3) noisy.push(`${what} (up to ${round(worst, 2)} cores)`);
    }
    if (noisy.length) notes.push(`${PEER_LABEL[kind]}: other processes used CPU during ${noisy.join(', ')}: expect noise`);
  }
  const frameRun = ran.tpx?.fanout?.[String(plan.small)]?.runs[0] ?? ran.ws?.fanout?.[String(plan.small)]?.runs[0];
  const wallS = (performance.now() - t0) / 1000;
  const fullDefault = !quick && DEFAULT_SCENARIOS.every((s) => sel.has(s)) && !sel.has('soak') && plan.repeats === 3;
  verdicts.push(...runTimeVerdict(wallS, fullDefault));
  const report: BenchReport = {
    tool: 'tpx-bench',
    version: 2,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    duration_s: round(wallS, 1),
    quick,
    scenarios,
    host: hostInfo(),
    plan,
    frame_bytes: frameRun?.frame_bytes ?? null,
    peers,
    peer_table: rows,
    verdicts,
    targets: {
      met: verdicts.filter((v) => v.met === true).length,
      missed: verdicts.filter((v) => v.met === false).length,
      unknown: verdicts.filter((v) => v.met === null).length,
    },
    ...(durability ? { durability } : {}),
    ...(cluster ? { cluster } : {}),
    ...(webhooks !== undefined ? { webhooks } : {}),
    ...(soakOut ? { soak: soakOut } : {}),
    ...(profiles ? { profiles } : {}),
    notes,
  };

  const dir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(report, null, 2) + '\n';
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}${quick ? '-quick' : ''}.json`), json);
  writeFileSync(path.join(dir, 'latest.json'), json);
  if (typeof opts.out === 'string' && opts.out) writeFileSync(path.resolve(opts.out), json);
  if (opts.table !== false) process.stdout.write(formatReport(report, `bench/results/${stamp}${quick ? '-quick' : ''}.json`) + '\n');
  return report;
}

export function formatReport(report: BenchReport, file: string): string {
  const plan = report.plan;
  const lines = [
    '',
    `tpx-realtime benchmark — ${report.started_at}${report.quick ? ' (quick)' : ''} — ${report.host.cpus} × ${report.host.cpu_model}, node ${report.host.node}`,
    `${plan.pins.enabled ? `server pinned to CPU ${plan.pins.server}, load generator and publisher on CPU ${plan.pins.clients}` : `not pinned (${plan.pins.reason})`}; ` +
      `median of ${plan.repeats}; ${Math.round(report.duration_s)} s; results: ${file}`,
  ];
  const kinds = PEER_ORDER.filter((k) => report.peers[k] && !('skipped' in report.peers[k]!));
  if (report.peer_table.length) {
    const versions = kinds.map((k) => `${PEER_LABEL[k]} = ${(report.peers[k] as PeerResult).version}`).join('; ');
    lines.push(
      '',
      `Peer table (issue 13): subscribers of one account, ≈ 900 B frames; * = best. No auth in nchan or bare ws.`,
      `  ${versions}`,
      ...(report.peers.nchan && 'skipped' in report.peers.nchan ? [`  nchan skipped: ${report.peers.nchan.skipped}`] : []),
      '',
      formatPeerTable(report.peer_table, kinds),
    );
  }
  const section = (title: string, source: Verdict['source'][]) => {
    const vs = report.verdicts.filter((v) => source.includes(v.source));
    if (vs.length) lines.push('', title, formatVerdicts(vs));
  };
  section('Targets of issue 13 (ratios from this run):', ['issue 13']);
  if (report.durability) {
    lines.push('', `Synced vs relaxed durability (issue 10)${report.durability.server_reads_durability ? '' : ' — NOTE: this server ignores TPX_DURABILITY, both columns are the same settings'}:`);
    if (report.durability.error) lines.push(`  failed: ${report.durability.error.split('\n')[0]}`);
    else lines.push(formatDurability(report.durability, plan.durability_rates));
    section('Targets of issue 10:', ['issue 10']);
  }
  if (report.cluster) {
    const c = report.cluster;
    const single = med(report.durability?.modes.synced?.latency[String(plan.cluster_rate)], 'cpu_us_per_msg') ?? (report.peers.tpx && !('skipped' in report.peers.tpx) ? med(report.peers.tpx.latency?.[String(plan.cluster_rate)], 'cpu_us_per_msg') : null);
    lines.push(
      '',
      `Cluster mode: ${c.nodes} tpx nodes (synced), one PostgreSQL (fsync on), one Redis, all on the server core; ` +
        `${c.connections_per_node.toLocaleString('en-US')} subscribers of one account per holding node; ${c.rate} events/s published` +
        (single !== null ? `; "vs single" = against the single tpx node on SQLite at N=${plan.small.toLocaleString('en-US')} × ${plan.cluster_rate} ev/s (${single} µs)` : ''),
    );
    if (c.error) lines.push(`  failed: ${c.error.split('\n')[0]}`);
    if (c.windows.length) lines.push(formatCluster(c, single));
    section('Cluster verdicts:', ['SPEC §7']);
  }
  if (report.webhooks && !('error' in report.webhooks)) {
    const w = report.webhooks as { deliveriesPerSec?: number; baseline?: WebhookBaselineResult };
    lines.push('', `Webhooks: ${w.deliveriesPerSec?.toLocaleString('en-US') ?? '?'} deliveries/s (bare signed sender: ${w.baseline?.deliveriesPerSec?.toLocaleString('en-US') ?? '?'}/s)`);
  }
  if (report.soak && !('error' in report.soak)) {
    const s = report.soak;
    lines.push(
      '',
      `Soak: ${s.connections} connections (${s.slow_consumers} slow), ${s.rate} events/s for ${Math.round(s.duration_ms / 1000)} s; quiet fast p99 ${s.quiet.fast.p99_ms} ms;` +
        ` worst 10 s window ${s.worst_window_vs_quiet}× quiet (${s.windows_over_2x} windows over 2×); fast missing ${s.fast_missing}; RSS ${round(s.rss_start / 1048576, 0)} → ${round(s.rss_end / 1048576, 0)} MiB (peak ${round(s.rss_max / 1048576, 0)})`,
      '  per 10 s window, fast p99 ms (× quiet): ' + s.samples.map((x) => `${x.fast_p99_ms}${x.vs_quiet !== null ? ` (${x.vs_quiet}×)` : ''}`).join(', '),
    );
  }
  section('Run:', ['bench']);
  lines.push('', `targets met: ${report.targets.met}, missed: ${report.targets.missed}${report.targets.unknown ? `, not measured: ${report.targets.unknown}` : ''}`);
  for (const [phase, p] of Object.entries(report.profiles ?? {})) {
    lines.push('', `tpx CPU profile, ${phase} (${path.relative(REPO_ROOT, p.file)}), busy ${round(100 - p.idle_pct, 1)} % — self time (inclusive):`);
    for (const e of p.top_self.slice(0, 12)) lines.push(`  ${String(e.self_pct).padStart(5)} % (${String(e.total_pct).padStart(5)} %)  ${e.function}  (${e.location})`);
  }
  for (const n of report.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

// ---- direct execution: node dist/bench/run.js [options] / node --import tsx bench/run.ts -----------

export function parseArgv(argv: string[]): BenchOptions {
  const out: BenchOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const [rawKey, inline] = a.slice(2).split(/=(.*)/s, 2);
    if (rawKey === 'no-pin') {
      out.pin = false;
      continue;
    }
    const key = rawKey.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());
    let value: unknown = inline;
    if (value === undefined) value = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true;
    if (value === 'false') value = false;
    if (typeof value === 'string' && /^\d+$/.test(value) && !['soakDuration', 'soakQuiet', 'latencyRates'].includes(key)) value = Number(value);
    out[key] = value;
  }
  return out;
}

export const USAGE = [
  'usage: npm run bench -- [options]   (or: node --import tsx bench/run.ts [options])',
  '  --quick                      smaller N, shorter windows, one repeat (~2–3 min)',
  `  --scenarios a,b              any of ${ALL_SCENARIOS.join(', ')} (default: all but soak)`,
  '  --servers nchan,ws,tpx       peers of the table (baseline = ws); nchan is skipped when not installed',
  '  --repeats N                  median of N windows per figure (default 3, 1 with --quick)',
  '  --latency-rates 10,50        event rates of the latency rows (the first also gives CPU per message at a low rate)',
  '  --no-pin                     do not pin servers and clients to separate cores',
  '  --soak-duration 10m          soak length (soak is opt-in: --scenarios soak)',
  '  --soak-quiet 60s             fast consumers alone first: the quiet p99 the soak is judged against',
  '  --workers N                  load-generator worker threads',
  '  --profile                    V8 CPU profile of each measured phase of the tpx peer, summarised',
  '  --out FILE                   also write the JSON report to FILE',
  '',
].join('\n');

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const stop = (sig: NodeJS.Signals) => {
    process.stderr.write(`bench: ${sig}, stopping the servers it started\n`);
    process.exit(130); // the exit hooks kill every child by PID and remove its temp dir
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let opts: BenchOptions;
  try {
    opts = parseArgv(args);
    parseDurationMs(opts.soakDuration as string | undefined, 0);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  runBench(opts).then(
    (r) => process.exit(r.notes.some((n) => / failed/.test(n)) ? 1 : 0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
