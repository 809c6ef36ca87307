/**
 * What synced durability costs on this machine, synced vs relaxed, in one run (not a test; the
 * full benchmark is `npm run bench`). Bounded: ≈ 1 minute.
 *
 *   node --conditions=tpx-source --import tsx scripts/measure-durability.ts [--rounds 2]
 *
 * Store level (SqliteStore on a temp file, one account with one webhook endpoint):
 *   - append latency: 2,000 sequential single-event appends (await each): p50 / p99;
 *   - concurrent single appends: 16 callers for 3 s (group commit): events/s, p50 / p99;
 *   - batched appends: 4 callers × 100 events per call for 3 s: events/s.
 * Publish API (`tpx serve` child process from the sources, keep-alive client):
 *   - POST /v1/events one after the other, 1,000 times: p50 / p99 of request → 202;
 *   - POST /v1/events/batch ×100 with 4 in flight for 5 s: events/s.
 * Alternatives (raw better-sqlite3, one 1 KB row per commit, 2,000 commits each): the time a
 * commit holds the event loop, and until it is durable, for WAL + NORMAL (no sync), WAL + FULL
 * (fsync inside COMMIT, on the loop) and WAL + NORMAL + fdatasync on the thread pool (ours).
 * Modes alternate (relaxed, synced, synced, relaxed …) so drifting machine load hits both.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { SqliteStore } from '../src/store/sqlite/store.js';
import type { Durability, NewEvent } from '../src/store/types.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 1;
const PAYLOAD = JSON.stringify({ auction_id: randomUUID(), product: { sku: 'x'.repeat(600) }, price: { amount: 12.5, currency: 'EUR' } });

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x: number) => `${x.toFixed(3)} ms`;
const now = () => performance.now();

function event(accountId: string): NewEvent {
  return { msg_id: randomUUID(), msg_type: 'BID_REQUEST', payload_json: PAYLOAD, source_id: null, target: [accountId], created_at_ms: Date.now() };
}

async function storeRun(durability: Durability, dir: string) {
  const store = new SqliteStore({ filename: path.join(dir, `${durability}-${randomUUID()}.sqlite`), durability });
  await store.init();
  try {
    const a = await store.createAccount({});
    await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
    const seq: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = now();
      await store.appendEvents([event(a.account_id)]);
      seq.push(now() - t);
    }
    const concurrent: number[] = [];
    let end = now() + 3000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (now() < end) {
          const t = now();
          await store.appendEvents([event(a.account_id)]);
          concurrent.push(now() - t);
        }
      }),
    );
    let batched = 0;
    const t0 = now();
    end = t0 + 3000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (now() < end) {
          await store.appendEvents(Array.from({ length: 100 }, () => event(a.account_id)));
          batched += 100;
        }
      }),
    );
    const batchedPerSec = batched / ((now() - t0) / 1000);
    return {
      append_p50: pct(seq, 50),
      append_p99: pct(seq, 99),
      concurrent_per_s: concurrent.length / 3,
      concurrent_p50: pct(concurrent, 50),
      concurrent_p99: pct(concurrent, 99),
      batched_per_s: batchedPerSec,
      wal_syncs: store.status().counters.wal_syncs,
    };
  } finally {
    await store.close();
  }
}

async function rawCommitCosts(dir: string) {
  const Database = (await import('better-sqlite3')).default;
  const { fdatasyncOnThreadPool } = await import('../src/store/sqlite/wal-sync.js');
  const { openSync, closeSync } = await import('node:fs');
  const out: Record<string, { loop_p50: number; loop_p99: number; durable_p50: number; durable_p99: number }> = {};
  for (const variant of ['NORMAL', 'FULL', 'NORMAL + fdatasync off the loop'] as const) {
    const file = path.join(dir, `raw-${randomUUID()}.sqlite`);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${variant === 'FULL' ? 'FULL' : 'NORMAL'}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
    const fd = openSync(`${file}-wal`, 'r');
    const loop: number[] = [];
    const durable: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = now();
      ins.run(PAYLOAD);
      loop.push(now() - t);
      if (variant === 'NORMAL + fdatasync off the loop') await fdatasyncOnThreadPool(fd);
      durable.push(now() - t);
    }
    closeSync(fd);
    db.close();
    out[variant] = { loop_p50: pct(loop, 50), loop_p99: pct(loop, 99), durable_p50: pct(durable, 50), durable_p99: pct(durable, 99) };
  }
  return out;
}

async function httpRun(durability: Durability, dir: string) {
  const token = `tpx_admin_${randomUUID().replace(/-/g, '')}`;
  const proc = spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: REPO,
    env: { ...process.env, TPX_DATA_DIR: path.join(dir, `srv-${durability}-${randomUUID()}`), TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: token, TPX_DURABILITY: durability },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        const m = /"msg":"listening".*?"url":"([^"]+)"|"url":"([^"]+)".*?"msg":"listening"/.exec(buf);
        if (m) resolve(m[1] ?? m[2]);
      });
      proc.once('exit', () => reject(new Error('server exited')));
    });
    const pool = new Pool(url, { connections: 8, pipelining: 1 });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const post = async (p: string, body: unknown) => {
      const res = await pool.request({ method: 'POST', path: p, headers, body: JSON.stringify(body) });
      const text = await res.body.text();
      if (res.statusCode >= 300) throw new Error(`${p}: ${res.statusCode} ${text}`);
      return JSON.parse(text);
    };
    const account = await post('/admin/accounts', {});
    const payload = { auction_id: randomUUID(), product_id: 'p1', expires_at: new Date(Date.now() + 3600_000).toISOString() };
    const one = () => ({ msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload() });
    void payload;
    const lat: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = now();
      await post('/v1/events', one());
      lat.push(now() - t);
    }
    let events = 0;
    const t0 = now();
    const end = t0 + 5000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (now() < end) {
          await post('/v1/events/batch', { events: Array.from({ length: 100 }, one) });
          events += 100;
        }
      }),
    );
    const perSec = events / ((now() - t0) / 1000);
    await pool.close();
    return { publish_p50: pct(lat, 50), publish_p99: pct(lat, 99), batch_events_per_s: perSec };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

let sample: Record<string, unknown> | null = null;
function samplePayload(): Record<string, unknown> {
  return sample!;
}

async function main() {
  const { samplePayload: makeSample } = await import('../test/helpers/payloads.js');
  sample = makeSample('BID_REQUEST');
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-durability-measure-'));
  const order: Durability[] = [];
  for (let r = 0; r < rounds; r++) order.push(...(r % 2 === 0 ? (['relaxed', 'synced'] as const) : (['synced', 'relaxed'] as const)));
  try {
    for (const [variant, r] of Object.entries(await rawCommitCosts(dir))) {
      const durable = variant === 'NORMAL' ? 'never synced' : `durable after p50 ${ms(r.durable_p50)} p99 ${ms(r.durable_p99)}`;
      console.log(`raw   ${variant.padEnd(31)} loop held p50 ${ms(r.loop_p50)} p99 ${ms(r.loop_p99)} | ${durable}`);
    }
    for (const mode of order) {
      const s = await storeRun(mode, dir);
      console.log(
        `store ${mode.padEnd(7)} append p50 ${ms(s.append_p50)} p99 ${ms(s.append_p99)} | 16 concurrent: ${Math.round(s.concurrent_per_s)} ev/s p50 ${ms(s.concurrent_p50)} p99 ${ms(s.concurrent_p99)} | batched ×100: ${Math.round(s.batched_per_s)} ev/s | wal syncs ${s.wal_syncs}`,
      );
    }
    for (const mode of order) {
      const h = await httpRun(mode, dir);
      console.log(`http  ${mode.padEnd(7)} POST /v1/events p50 ${ms(h.publish_p50)} p99 ${ms(h.publish_p99)} | batch ×100, 4 in flight: ${Math.round(h.batch_events_per_s)} ev/s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
