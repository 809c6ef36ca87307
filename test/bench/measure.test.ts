/**
 * The benchmark's instruments: Redis command/byte counting from INFO deltas (checked against the
 * exact bytes of known commands on a real redis-server), CPU and memory of a process tree, and
 * medians across repeats.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRedisInfo, RedisMeter, startRedis } from '../../bench/lib/datastores.js';
import { CpuMeter, processTree, treeMemory } from '../../bench/lib/proc.js';
import { figure, median, repeated } from '../../bench/lib/repeat.js';
import { sleep } from '../../bench/lib/children.js';

describe('Redis INFO deltas', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
  });

  it('parses commandstats and the byte counters', () => {
    const c = parseRedisInfo(
      '# Stats\r\ntotal_net_input_bytes:1234\r\ntotal_net_output_bytes:99\r\npubsub_channels:3\r\n# Commandstats\r\n' +
        'cmdstat_publish:calls=7,usec=10,usec_per_call=1.43,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=2,usec=5\r\n',
    );
    expect(c).toEqual({ calls: { publish: 7, info: 2 }, net_input_bytes: 1234, net_output_bytes: 99, pubsub_channels: 3 });
  });

  it('counts exactly the commands and bytes of a window, not its own INFO calls', async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const client = new Redis(redis.url);
    stops.push(async () => void (await client.quit()));
    await client.ping();
    const meter = new RedisMeter(redis.url);
    stops.push(() => meter.close());
    await meter.start();
    const message = 'x'.repeat(900);
    for (let i = 0; i < 10; i++) await client.publish('tpx:acct:abc', message);
    const d = await meter.stop();
    expect(d.commands).toEqual({ publish: 10 });
    // "*3\r\n$7\r\npublish\r\n$12\r\ntpx:acct:abc\r\n$900\r\n<900 B>\r\n" in; ":0\r\n" out (no subscriber).
    const request = Buffer.byteLength(`*3\r\n$7\r\npublish\r\n$12\r\ntpx:acct:abc\r\n$900\r\n${message}\r\n`);
    expect(d.net_input_bytes).toBe(10 * request);
    expect(d.net_output_bytes).toBe(10 * Buffer.byteLength(':0\r\n'));
  });
});

describe('process tree CPU and memory', () => {
  it('charges a busy child to the tree of its parent', async () => {
    // sh → node: the root is idle; the child burns 300 ms of its own CPU, says so, then waits.
    const burn = `let t = process.cpuUsage(); while (process.cpuUsage(t).user + process.cpuUsage(t).system < 300000) {} console.log('done'); setTimeout(() => {}, 10000)`;
    const root = spawn('sh', ['-c', `${process.execPath} -e "${burn}"; true`], { stdio: ['ignore', 'pipe', 'ignore'] });
    const tree = new CpuMeter(root.pid!, true);
    const alone = new CpuMeter(root.pid!);
    tree.start();
    alone.start();
    await new Promise<void>((resolve) => root.stdout!.on('data', (d: Buffer) => d.includes('done') && resolve()));
    const t = tree.stop();
    const a = alone.stop();
    expect(processTree(root.pid!).length).toBe(2);
    expect(treeMemory(root.pid!).processes).toBe(2);
    for (const pid of processTree(root.pid!).reverse()) process.kill(pid, 'SIGKILL');
    expect(t.cpu_us).toBeGreaterThanOrEqual(300_000);
    expect(a.cpu_us).toBeLessThan(50_000);
  });

  it('counts memory shared within a tree once', () => {
    const m = treeMemory(process.pid);
    expect(m.processes).toBeGreaterThanOrEqual(1);
    expect(m.rss).toBeGreaterThan(10 * 1024 * 1024);
  });
});

describe('repeats', () => {
  it('takes the median of each field, ignoring missing values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1])).toBe(2.5);
    expect(median([])).toBeNull();
    expect(figure([5, null, 1, undefined, 3])).toEqual({ median: 3, min: 1, max: 5, values: [5, 1, 3] });
    const r = repeated([{ a: 1, b: 9 }, { a: 3, b: 7 }, { a: 2, b: 8 }], ['a']);
    expect(r.figures.a.median).toBe(2);
    expect(r.figures.b).toBeUndefined();
  });
});
