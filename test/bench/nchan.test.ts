/**
 * The nchan peer of the benchmark: detection, the generated nginx config, and the whole path the
 * benchmark measures (real nginx + nchan, the real load generator and publisher processes).
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Loadgen, Publisher, sleep } from '../../bench/lib/children.js';
import { BENCH_PAYLOAD } from '../../bench/lib/payload.js';
import { processTree } from '../../bench/lib/proc.js';
import { detectNchan, moduleFromLoadLine, nchanConfig, NchanServer } from '../../bench/nchan.js';
import { connectSpec, publishRun, type Rig } from '../../bench/scenarios.js';

const found = detectNchan();

/** A process that still runs (a zombie waiting for its reaper holds no port and no memory). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('nchan detection', () => {
  it('resolves a Debian modules-enabled line to the module file', () => {
    expect(moduleFromLoadLine('load_module modules/ngx_nchan_module.so;\n', '/usr/lib/nginx/modules')).toBe('/usr/lib/nginx/modules/ngx_nchan_module.so');
    expect(moduleFromLoadLine('  load_module /opt/m/ngx_nchan_module.so ;', '/x')).toBe('/opt/m/ngx_nchan_module.so');
    expect(moduleFromLoadLine('load_module modules/ngx_http_echo_module.so;', '/x')).toBeNull();
  });

  it('finds nginx and the nchan module, or says what to install', () => {
    if ('missing' in found) expect(found.missing).toMatch(/apt-get install .*nchan/);
    else {
      expect(existsSync(found.nginx)).toBe(true);
      expect(existsSync(found.module)).toBe(true);
      expect(found.version).toMatch(/nginx\/\d/);
    }
  });
});

describe('generated nginx config', () => {
  const conf = nchanConfig({ module: '/m/ngx_nchan_module.so', port: 12345, dir: '/tmp/x', user: 'nobody nogroup', nofile: 20_000 });

  it('binds to loopback only, in the foreground, one worker', () => {
    expect(conf).toMatch(/^\s*listen 127\.0\.0\.1:12345;$/m);
    expect(conf.match(/^\s*listen /gm)).toHaveLength(1);
    expect(conf).toMatch(/^daemon off;$/m);
    expect(conf).toMatch(/^worker_processes 1;$/m);
    expect(conf).toMatch(/^load_module \/m\/ngx_nchan_module\.so;$/m);
    // worker_connections stays under the file limit the worker may raise itself to
    const wc = Number(/worker_connections (\d+);/.exec(conf)![1]);
    expect(wc).toBeLessThan(20_000);
  });

  it('is accepted by `nginx -t` when nginx is installed', () => {
    if ('missing' in found) return expect(found.missing).toBeTruthy();
    const dir = mkdtempSync(path.join(tmpdir(), 'tpx-nchan-conf-'));
    try {
      const file = path.join(dir, 'nginx.conf');
      writeFileSync(file, nchanConfig({ module: found.module, port: 1, dir, user: null, nofile: 4096 }));
      const r = spawnSync(found.nginx, ['-t', '-c', file, '-p', dir], { encoding: 'utf8' });
      expect(r.stderr).toMatch(/test is successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('nchan as a running peer', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
  });

  it('delivers every published frame to every subscriber, then stops every process by PID', async () => {
    if ('missing' in found) return expect(found.missing).toBeTruthy();
    const server = await NchanServer.start(found);
    stops.push(() => server.stop());
    const loadgen = await Loadgen.start(1);
    stops.push(() => loadgen.stop());
    const publisher = await Publisher.start();
    stops.push(() => publisher.stop());
    const account = { account_id: 'acct-1', token: 'unused' };
    const rig: Rig = { server, loadgen, publisher, accounts: [account], payload: BENCH_PAYLOAD, localAddresses: ['127.0.0.1'], log: () => {} };

    const c = await loadgen.connect({ ...connectSpec(rig, 0, 20, [account]), timeoutMs: 10_000 });
    expect(c.ready).toBe(20);
    const res = await publisher.run(publishRun(rig, { mode: 'max', concurrency: 2, maxEvents: 25, durationMs: 10_000, target: { account_ids: [account.account_id] } }));
    expect(res.events_accepted).toBe(25);
    let st = await loadgen.stats();
    for (let i = 0; i < 100 && st.events < 25 * 20; i++) {
      await sleep(50);
      st = await loadgen.stats();
    }
    expect(st.events).toBe(25 * 20);
    // The frame is the ~900 B event every peer sends.
    expect(st.bytes / st.events).toBeGreaterThan(800);
    expect(st.bytes / st.events).toBeLessThan(1000);

    const tree = processTree(server.pid);
    expect(tree.length).toBe(2); // master + one worker
    await server.stop();
    for (const pid of tree) expect(alive(pid)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it('leaves no nginx process or temp dir behind when the benchmark dies without stopping it', async () => {
    if ('missing' in found) return expect(found.missing).toBeTruthy();
    // A benchmark process that starts the peer and exits abruptly (an uncaught error: no stop()).
    const script = `
      const { detectNchan, NchanServer } = await import(${JSON.stringify(path.resolve('bench/nchan.ts'))});
      const { processTree } = await import(${JSON.stringify(path.resolve('bench/lib/proc.ts'))});
      const s = await NchanServer.start(detectNchan());
      console.log(JSON.stringify({ pids: processTree(s.pid), dir: s.dir, port: s.port }));
      throw new Error('benchmark crashed');`;
    const r = spawnSync(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).not.toBe(0);
    const { pids, dir, port } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { pids: number[]; dir: string; port: number };
    expect(pids.length).toBe(2);
    await sleep(200);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // Nobody holds the port any more (a worker forked again by a dying master would).
    const refused = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port });
      sock.once('connect', () => (sock.destroy(), resolve(false)));
      sock.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
