/**
 * Webhook dispatch throughput (not a test): deliveries/s from the durable store to a fast local
 * receiver, with durability on (the real embedded store: every attempt recorded in a transaction).
 *
 *   npx tsx bench/webhooks.ts [--events 20000] [--endpoints 4] [--concurrency 32]
 *
 * The receiver runs in a child process so it does not share the dispatcher's event loop. The
 * events (one delivery each, round-robin over the endpoints) are stored first; the clock runs
 * from dispatcher start until no delivery is pending.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { createMetrics } from '../src/observability/metrics.js';
import { createStore } from '../src/store/index.js';
import type { NewEvent } from '../src/store/types.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { generateSecret } from '../src/webhooks/signing.js';

export interface WebhookBenchOptions {
  events?: number;
  endpoints?: number;
  concurrency?: number;
  quick?: boolean;
  log?: (m: string) => void;
}

export interface WebhookBenchResult {
  deliveriesPerSec: number;
  deliveries: number;
  seconds: number;
  failed: number;
  endpoints: number;
  concurrencyPerEndpoint: number;
  store: string;
  receiverRequests: number;
  /** CPU (user + system) of the dispatching process while draining, per delivery: the figure to compare on a shared, noisy machine. */
  dispatcherCpuUsPerDelivery: number;
  /** Share of one core the dispatching process used while draining (~100 % = CPU-bound). */
  dispatcherCpuPct: number;
  /** Same for the receiver process (should stay well below the dispatcher's: it must not be the bottleneck). */
  receiverCpuPct: number;
}

// Answers 200 as soon as the body has arrived, keeps connections alive, reports its request count and CPU.
const RECEIVER = `
const http = require('node:http');
let n = 0;
const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { n++; res.writeHead(200, {'content-length': '0'}); res.end(); }); });
s.keepAliveTimeout = 60000;
s.headersTimeout = 65000;
s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
process.on('message', () => { const c = process.cpuUsage(); process.send({ n, cpuUs: c.user + c.system }); });
`;

async function startReceiver(): Promise<{ url: string; count(): Promise<{ n: number; cpuUs: number }>; close(): void }> {
  const child = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8');
    child.stdout!.once('data', (d: string) => resolve(JSON.parse(d).port));
    child.once('exit', (c) => reject(new Error(`receiver exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/hook`,
    count: () =>
      new Promise((r) => {
        child.once('message', (m: { n: number; cpuUs: number }) => r(m));
        child.send('count');
      }),
    close: () => child.kill('SIGKILL'),
  };
}

export async function runWebhookBench(opts: WebhookBenchOptions = {}): Promise<WebhookBenchResult> {
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const events = opts.events ?? (opts.quick ? 5000 : 20_000);
  const endpoints = opts.endpoints ?? 4;
  const concurrency = opts.concurrency ?? 32;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tpx-whbench-'));
  const receiver = await startReceiver();
  const config = loadConfig({
    TPX_DATA_DIR: dataDir,
    TPX_DURABILITY: 'synced', // stated explicitly, like every tpx run of the benchmark (issue 13)
    TPX_WEBHOOK_ALLOW_PRIVATE: 'true',
    TPX_WEBHOOK_CONCURRENCY_PER_ENDPOINT: String(concurrency),
    TPX_WEBHOOK_TIMEOUT_MS: '10000',
  });
  const store = createStore(config);
  await store.init();
  const logger = pino({ level: 'warn' });
  try {
    const accounts: string[] = [];
    for (let i = 0; i < endpoints; i++) {
      const a = await store.createAccount({ name: `bench-${i}` });
      await store.createWebhook(a.account_id, { url: receiver.url, secret: generateSecret() });
      accounts.push(a.account_id);
    }
    const payload = JSON.stringify({ auction_id: randomUUID(), listing_id: 'l-1', ends_at: new Date().toISOString(), reserve: { amount: 12.5, currency: 'USD' } });
    const t0 = Date.now();
    for (let i = 0; i < events; i += 500) {
      const batch: NewEvent[] = [];
      for (let j = i; j < Math.min(events, i + 500); j++) {
        batch.push({ msg_id: randomUUID(), msg_type: 'BID_REQUEST', payload_json: payload, source_id: null, target: [accounts[j % endpoints]], created_at_ms: Date.now() });
      }
      await store.appendEvents(batch);
    }
    log(`webhooks: stored ${events} events in ${Date.now() - t0} ms; dispatching to ${endpoints} endpoint(s), concurrency ${concurrency}`);

    const dispatcher = new WebhookDispatcher({ store, config, logger, metrics: createMetrics(), nodeId: 'bench' });
    const rxCpu0 = (await receiver.count()).cpuUs;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    dispatcher.start();
    for (;;) {
      const c = await store.deliveryCounts();
      if (c.pending === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const rx = await receiver.count();
    await dispatcher.stop();
    const counts = await store.deliveryCounts();
    const receiverRequests = rx.n;
    const cpuUs = cpu.user + cpu.system;
    const result: WebhookBenchResult = {
      deliveriesPerSec: Math.round(events / seconds),
      deliveries: events,
      seconds: Math.round(seconds * 1000) / 1000,
      failed: counts.failed,
      endpoints,
      concurrencyPerEndpoint: concurrency,
      store: store.kind,
      receiverRequests,
      dispatcherCpuUsPerDelivery: Math.round(cpuUs / events),
      dispatcherCpuPct: Math.round(cpuUs / 1e4 / seconds),
      receiverCpuPct: Math.round((rx.cpuUs - rxCpu0) / 1e4 / seconds),
    };
    log(
      `webhooks: ${result.deliveriesPerSec} deliveries/s (${events} in ${result.seconds} s, ${counts.failed} failed); ` +
        `dispatcher ${result.dispatcherCpuUsPerDelivery} µs CPU/delivery (${result.dispatcherCpuPct} % of a core), receiver ${result.receiverCpuPct} %`,
    );
    return result;
  } finally {
    receiver.close();
    await store.close().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  runWebhookBench({ events: arg('events'), endpoints: arg('endpoints'), concurrency: arg('concurrency'), quick: process.argv.includes('--quick') })
    .then((r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
