/**
 * Repeated webhook failures reach the log collapsed: the first failure of an endpoint at once,
 * then one summary line per endpoint per interval, instead of one long line per retry.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { FailureLog, type FailureInfo } from '../../src/webhooks/failure-log.js';
import { generateSecret } from '../../src/webhooks/signing.js';
import { DispatchFixture, startReceiver } from './helpers.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

function capture() {
  const lines: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const failure = (webhookId: string, n: number, over: Partial<FailureInfo> = {}): FailureInfo => ({
  webhook_id: webhookId,
  account_id: 'acct',
  delivery_id: `d${n}`,
  msg_id: `m${n}`,
  attempt: 1,
  of: 10,
  status: 503,
  error: 'HTTP 503: ' + 'x'.repeat(600),
  dead_letter: false,
  next_attempt_at: null,
  ...over,
});

describe('FailureLog', () => {
  it('logs the first failure of an endpoint at once, then one short summary per endpoint per interval', async () => {
    const { lines, logger } = capture();
    const log = new FailureLog(logger, 100);
    cleanups.push(async () => log.stop());
    for (let i = 0; i < 37; i++) log.failure(failure('ep-1', i, i === 36 ? { status: 500, error: 'HTTP 500' } : {}));
    for (let i = 0; i < 3; i++) log.failure(failure('ep-2', i, { dead_letter: i === 2 }));
    await sleep(20);
    expect(lines.map((l) => l.webhook_id)).toEqual(['ep-1', 'ep-2']); // one line each so far
    expect(lines[0]).toMatchObject({ delivery_id: 'd0', msg_id: 'm0', status: 503 });
    await sleep(150);
    const summaries = lines.slice(2);
    expect(summaries).toHaveLength(2);
    const one = summaries.find((l) => l.webhook_id === 'ep-1')!;
    expect(one.msg).toBe('webhook endpoint ep-1: 36 failures in the last 100 ms, last: HTTP 500');
    expect(one).toMatchObject({ failures: 36, dead_letters: 0 });
    expect(summaries.find((l) => l.webhook_id === 'ep-2')!.msg).toMatch(/^webhook endpoint ep-2: 2 failures in the last 100 ms \(1 dead-lettered\), last: HTTP 503/);
    for (const l of lines) expect(JSON.stringify(l).length).toBeLessThan(600); // the 600-character error is cut
    // A quiet interval ends the episode: the next failure is logged at once again.
    await sleep(250);
    const before = lines.length;
    log.failure(failure('ep-1', 99));
    expect(lines.length).toBe(before + 1);
    expect(lines.at(-1)).toMatchObject({ webhook_id: 'ep-1', delivery_id: 'd99' });
  });

  it('through the dispatcher: an endpoint failing every attempt logs one line, not one per retry', async () => {
    const { lines, logger } = capture();
    const fx = await DispatchFixture.create();
    cleanups.push(() => fx.close());
    const rx = await startReceiver(() => ({ status: 503, body: 'maintenance' }));
    cleanups.push(() => rx.close());
    const config = loadConfig({ TPX_DATA_DIR: fx.dataDir, TPX_WEBHOOK_ALLOW_PRIVATE: 'true', TPX_WEBHOOK_RETRY_SCHEDULE: '10ms,10ms,10ms,10ms' });
    const dispatcher = new WebhookDispatcher({ store: fx.store, config, logger, metrics: createMetrics(), nodeId: 'test' });
    cleanups.push(() => dispatcher.stop());
    const ep = await fx.addEndpoint(rx.url, generateSecret());
    const deliveries = [await fx.addDelivery(ep), await fx.addDelivery(ep), await fx.addDelivery(ep)];
    dispatcher.start();
    dispatcher.notify();
    for (let i = 0; i < 500 && (await Promise.all(deliveries.map((d) => fx.row(d.delivery_id)))).some((r) => r.delivery.status !== 'failed'); i++) await sleep(10);
    expect(rx.received).toHaveLength(15); // 3 deliveries × 5 attempts
    const failureLines = lines.filter((l) => l.webhook_id === ep.webhook_id);
    expect(failureLines).toHaveLength(1);
    expect(failureLines[0].msg).toMatch(/^webhook attempt failed; further failures of this endpoint are summarised/);
    await dispatcher.stop(); // flushes the summary
    const summary = lines.filter((l) => l.webhook_id === ep.webhook_id).at(-1)!;
    expect(summary).toMatchObject({ failures: 14, dead_letters: 3 });
    expect(summary.msg).toMatch(/: 14 failures in the last 60 s \(3 dead-lettered\), last: HTTP 503: maintenance$/);
  });
});
