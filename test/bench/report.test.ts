/**
 * The peer table and the verdicts: which peer is best, tpx against the best other peer, and each
 * issue-13 / issue-10 / SPEC §7 target judged as the issue states it.
 */
import { describe, expect, it } from 'vitest';
import { repeated } from '../../bench/lib/repeat.js';
import { clusterVerdicts, durabilityVerdicts, formatVerdicts, peerRows, peerVerdicts } from '../../bench/report.js';
import { parseArgv, selectPeers } from '../../bench/run.js';
import type { ClusterResult, ClusterWindow } from '../../bench/suites/cluster.js';
import type { DurabilityResult } from '../../bench/suites/durability.js';
import type { PeerResult } from '../../bench/suites/peers.js';
import type { FanoutOutcome, LatencyOutcome } from '../../bench/scenarios.js';

const plan = { big: 10_000, small: 1_000, connect_clients: 5_000, latency_rates: [10, 50] };

function fan(cpu: number): FanoutOutcome {
  return { cpu_us_per_msg: cpu, missing: 0, other_cores: 0 } as FanoutOutcome;
}
function lat(p50: number, p99: number, cpu: number): LatencyOutcome {
  return { p50_ms: p50, p99_ms: p99, cpu_us_per_msg: cpu, missing: 0, other_cores: 0 } as LatencyOutcome;
}

function peer(kind: PeerResult['kind'], cpu: [number, number, number], latency: [number, number, number, number], connect: [number, number], rss: [number, number]): PeerResult {
  return {
    kind,
    name: kind,
    version: '',
    auth: kind === 'tpx',
    rss_before_bytes: rss[1] * 1048576,
    memory: { connections: 10_000, rss_per_conn_bytes: rss[0] * 1024 } as PeerResult['memory'],
    // Three repeats: the median must be taken, not the mean or the first.
    fanout: {
      '1000': repeated([fan(cpu[0] * 3), fan(cpu[0]), fan(cpu[0] / 3)], ['cpu_us_per_msg', 'missing']),
      '10000': repeated([fan(cpu[1])], ['cpu_us_per_msg', 'missing']),
    },
    latency: {
      '10': repeated([lat(latency[0], latency[1], cpu[2])], ['p50_ms', 'p99_ms', 'cpu_us_per_msg']),
      '50': repeated([lat(latency[2], latency[3], 1)], ['p50_ms', 'p99_ms', 'cpu_us_per_msg']),
    },
    connect: repeated([{ per_sec: connect[0], server_cpu_us_per_conn: connect[1] } as never], ['per_sec', 'server_cpu_us_per_conn'] as never),
  };
}

// The issue-13 table's figures.
const peers = {
  nchan: peer('nchan', [6.14, 15.09, 15.2], [11.8, 29.5, 28.9, 93.4], [2824, 64], [10.2, 27]),
  ws: peer('ws', [13.73, 16.28, 17.4], [12.4, 30.7, 20.2, 50.9], [2206, 378], [6.8, 50]),
  tpx: peer('tpx', [7.93, 8.13, 19.0], [15.3, 39.3, 23.2, 58.5], [1718, 512], [5.6, 112]),
};

describe('peer table', () => {
  const rows = peerRows(peers, plan);
  const row = (id: string) => rows.find((r) => r.id === id)!;

  it('takes the median of the repeats and compares tpx with the best other peer', () => {
    expect(row('cpu_small_max').values).toEqual({ nchan: 6.14, ws: 13.73, tpx: 7.93 });
    expect(row('cpu_small_max').best).toBe('nchan');
    expect(row('cpu_small_max').tpx_vs_best).toBeCloseTo(1.29, 2);
    expect(row('cpu_big_max').best).toBe('tpx');
    expect(row('cpu_big_max').tpx_vs_best).toBeCloseTo(8.13 / 15.09, 3);
    expect(row('p50_50').best_other).toBe('ws');
  });

  it('counts "higher is better" rows the other way round', () => {
    expect(row('connect_rate').best).toBe('nchan');
    expect(row('connect_rate').tpx_vs_best).toBeCloseTo(2824 / 1718, 3);
  });

  it('judges each issue-13 target as a ratio from the same run', () => {
    const v = Object.fromEntries(peerVerdicts(rows, peers, plan).map((x) => [x.id, x]));
    expect(v.cpu_small_max.value).toBeCloseTo(1.29, 2);
    expect(v.cpu_small_max.met).toBe(false);
    expect(v.cpu_big_max.met).toBe(true);
    expect(v.cpu_small_low.met).toBe(false);
    expect(v.p50_10.value).toBeCloseTo(15.3 / 11.8, 3); // nchan is the best other peer here
    expect(v.p99_50.value).toBeCloseTo(58.5 / 50.9, 3); // bare ws here
    expect(v.connect_cpu.value).toBeCloseTo(512 / 378, 3); // against bare ws, the Node ceiling
    expect(v.connect_rate.met).toBe(false);
    expect(v.rss_per_conn.met).toBe(true); // 5.6 KiB ≤ 5.6 KiB
    expect(v.rss_before.met).toBe(false); // 112 MiB > 60 MiB
    expect(formatVerdicts([v.cpu_small_max])).toBe('  tpx/nchan CPU per msg N=1,000 max rate: 1.29× (target ≤ 1.00) MISSED');
  });

  it('cannot judge the nchan targets without nchan, and says why', () => {
    const { nchan: _omit, ...noNchan } = peers;
    const v = peerVerdicts(peerRows(noNchan, plan), noNchan, plan).find((x) => x.id === 'cpu_small_max')!;
    expect(v.met).toBeNull();
    expect(v.note).toBe('nchan not run');
  });
});

describe('durability and cluster verdicts', () => {
  it('judges batched publish/s and the synced−relaxed p50 gap (issue 10)', () => {
    const l = (p50: number) => ({ '20': repeated([lat(p50, 10, 1)], ['p50_ms']), '100': repeated([lat(p50 + 1, 10, 1)], ['p50_ms']) });
    const d: DurabilityResult = {
      server_reads_durability: true,
      connections: 1000,
      modes: {
        synced: { latency: l(5), publish_batch: repeated([{ events_per_sec: 21_000 } as never], ['events_per_sec'] as never) },
        relaxed: { latency: l(3) },
      },
    };
    const v = durabilityVerdicts(d, [20, 100]);
    expect(v.map((x) => [x.id, x.value, x.met])).toEqual([
      ['batch_synced', 21_000, true],
      ['p50_gap_20', 2, false],
      ['p50_gap_100', 2, false],
    ]);
  });

  it('says Redis traffic is O(nodes holding the account) when 1 holder costs a third of 3', () => {
    const w = (holding: number, out: number, seqOk = true): ClusterWindow =>
      ({ holding, publish_on: ['a'], redis: { out_bytes_per_event: out }, seq_ok: seqOk, nodes: [] }) as unknown as ClusterWindow;
    const good = { windows: [w(1, 1200), w(2, 2400), w(3, 3600)] } as ClusterResult;
    expect(clusterVerdicts(good).map((x) => [x.id, x.met])).toEqual([
      ['cluster_seq', true],
      ['cluster_redis_scaling', true],
    ]);
    // O(nodes): every event goes to every node whatever holds the account.
    const bad = { windows: [w(1, 3600), w(2, 3600), w(3, 3600, false)] } as ClusterResult;
    expect(clusterVerdicts(bad).map((x) => x.met)).toEqual([false, false]);
  });
});

describe('options', () => {
  it('parses the command line and the peer list', () => {
    expect(parseArgv(['--quick', '--scenarios', 'fanout,cluster', '--no-pin', '--repeats=5', '--soak-duration', '90'])).toEqual({
      quick: true,
      scenarios: 'fanout,cluster',
      pin: false,
      repeats: 5,
      soakDuration: '90',
    });
    expect(selectPeers(undefined)).toEqual(['nchan', 'ws', 'tpx']);
    expect(selectPeers('tpx,baseline')).toEqual(['ws', 'tpx']);
    expect(() => selectPeers('socketio')).toThrow(/unknown server/);
  });
});
