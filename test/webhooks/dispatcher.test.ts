/**
 * Dispatcher behaviour against a real node:http receiver on 127.0.0.1 and the real embedded
 * store (SQLite file in a temp dir, as `tpx serve` runs it). End-to-end tests through the real
 * server live in integration.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { generateSecret } from '../../src/webhooks/signing.js';
import { DispatchFixture, startReceiver, until, type Receiver } from './helpers.js';

const logger = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

async function setup(env: Record<string, string> = {}) {
  const store = await DispatchFixture.create();
  cleanups.push(() => store.close());
  const config = loadConfig({ TPX_DATA_DIR: store.dataDir, TPX_WEBHOOK_ALLOW_PRIVATE: 'true', TPX_WEBHOOK_RETRY_SCHEDULE: '50ms,50ms,50ms', TPX_WEBHOOK_TIMEOUT_MS: '2000', ...env });
  const metrics = createMetrics();
  const dispatcher = new WebhookDispatcher({ store: store.store, config, logger, metrics, nodeId: 'test' });
  dispatcher.start();
  cleanups.push(() => dispatcher.stop());
  return { store, config, metrics, dispatcher };
}

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const r = await startReceiver(...args);
  cleanups.push(() => r.close());
  return r;
}

describe('WebhookDispatcher', () => {
  it('sends the envelope with Standard Webhooks headers a partner can verify', async () => {
    const { store, dispatcher } = await setup({ TPX_SOURCE_ID: 'tpx_test' });
    const rx = await receiver();
    const secret = generateSecret();
    const ep = await store.addEndpoint(rx.url + '/hook', secret);
    const d = await store.addDelivery(ep, 'BID_REQUEST', { auction_id: 'x', price: { amount: 1.5 } });
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).delivery.status === 'succeeded', 'success');
    expect(rx.received).toHaveLength(1);
    const got = rx.received[0];
    expect(got.path).toBe('/hook');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['user-agent']).toBe('tpx-webhooks/1');
    expect(got.headers['webhook-id']).toBe(d.msg_id);
    expect(new Webhook(secret).verify(got.body, got.headers as Record<string, string>)).toEqual(got.json);
    expect(got.json).toMatchObject({ msg_type: 'BID_REQUEST', msg_id: d.msg_id, source_id: 'tpx_test', destination_id: ep.account_id, payload: { auction_id: 'x', price: { amount: 1.5 } } });
    expect(Number.isInteger(got.json.sent_at)).toBe(true);
    expect(Math.abs(got.json.sent_at - Date.now() / 1000)).toBeLessThan(60);
    expect(String(got.json.sent_at)).toBe(got.headers['webhook-timestamp']);
    const { attempts } = await store.row(d.delivery_id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status_code: 200, outcome: 'succeeded', error: null });
  });

  it('500 → 500 → 200 gives exactly one acknowledged delivery with three attempts', async () => {
    const { store, dispatcher } = await setup();
    const rx = await receiver((_req, _b, n) => (n < 2 ? 500 : 200));
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).delivery.status === 'succeeded', 'success');
    await new Promise((r) => setTimeout(r, 200)); // nothing else should arrive
    expect(rx.received.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(rx.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([d.msg_id]));
    const row = await store.row(d.delivery_id);
    expect(row.attempts.map((a) => a.outcome)).toEqual(['retry', 'retry', 'succeeded']);
    expect(row.attempts.map((a) => a.status_code)).toEqual([500, 500, 200]);
    expect(row.attempts[0].error).toMatch(/HTTP 500/);
    for (const a of row.attempts) expect(a.latency_ms).toBeGreaterThanOrEqual(0);
    expect((await store.endpoint(ep.webhook_id)).failing_since).toBeNull();
  });

  it('dead-letters after the last attempt with every attempt recorded', async () => {
    const { store, dispatcher, metrics } = await setup();
    const rx = await receiver(() => ({ status: 502, body: 'upstream broke' }));
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).delivery.status === 'failed', 'dead letter');
    const row = await store.row(d.delivery_id);
    expect(row.attempts).toHaveLength(4);
    expect(row.attempts.map((a) => a.outcome)).toEqual(['retry', 'retry', 'retry', 'failed']);
    expect(row.attempts[3].error).toContain('upstream broke');
    expect(row.delivery.next_attempt_at).toBeNull();
    expect(rx.received).toHaveLength(4);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/tpx_webhook_attempts_total\{outcome="failed",reason="5xx"\} 1/);
    expect(text).toMatch(/tpx_webhook_attempts_total\{outcome="retry",reason="5xx"\} 3/);
    expect(text).toMatch(/tpx_webhook_deliveries_failed 1/);
    expect((await store.endpoint(ep.webhook_id)).failing_since).not.toBeNull();
  });

  it('410 fails the delivery and disables the endpoint with a reason', async () => {
    const { store, dispatcher } = await setup();
    const rx = await receiver(() => 410);
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d1 = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d1.delivery_id)).delivery.status === 'failed', '410 failure');
    await until(async () => !(await store.endpoint(ep.webhook_id)).enabled, 'disabled');
    expect((await store.endpoint(ep.webhook_id)).disabled_reason).toMatch(/410/);
    expect((await store.row(d1.delivery_id)).attempts).toHaveLength(1);
    const d2 = await store.addDelivery(ep);
    dispatcher.notify();
    await new Promise((r) => setTimeout(r, 200));
    expect((await store.row(d2.delivery_id)).delivery.status).toBe('pending');
    expect(rx.received).toHaveLength(1);
  });

  it('honours Retry-After on 429 and 503 (capped at the schedule maximum)', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_RETRY_SCHEDULE: '50ms,3s' });
    const rx = await receiver((_req, _b, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : n === 1 ? { status: 503, headers: { 'retry-after': '3600' } } : 200));
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).attempts.length >= 1, 'first attempt');
    let row = await store.row(d.delivery_id);
    const first = row.attempts[0];
    expect(first.status_code).toBe(429);
    const due1 = Date.parse(row.delivery.next_attempt_at!);
    // Retry-After: 1 replaces the 50 ms schedule entry (no jitter).
    expect(due1 - Date.parse(first.attempted_at)).toBeGreaterThanOrEqual(1000);
    await until(async () => (row = await store.row(d.delivery_id)).attempts.length >= 2, 'second attempt', 5000);
    const due2 = Date.parse(row.delivery.next_attempt_at!);
    // Retry-After: 3600 is capped at the schedule maximum (3 s).
    expect(due2 - Date.parse(row.attempts[1].attempted_at)).toBeLessThanOrEqual(3000 + 2000);
    expect(due2 - Date.parse(row.attempts[1].attempted_at)).toBeGreaterThanOrEqual(2900);
    await until(async () => (row = await store.row(d.delivery_id)).delivery.status === 'succeeded', 'success', 10_000);
  });

  it('a redirect is not followed and counts as a failure', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_RETRY_SCHEDULE: '50ms' });
    const rx = await receiver((req) => (req.url === '/target' ? 200 : { status: 302, headers: { location: '/target' } }));
    const ep = await store.addEndpoint(rx.url + '/start', generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).delivery.status === 'failed', 'failure');
    expect(rx.received.every((r) => r.path === '/start')).toBe(true);
    expect((await store.row(d.delivery_id)).attempts[0].error).toMatch(/redirect not followed/);
  });

  it('times out a slow endpoint per attempt', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_TIMEOUT_MS: '200', TPX_WEBHOOK_RETRY_SCHEDULE: '50ms' });
    const rx = await receiver(() => ({ status: 200, delayMs: 1500 }));
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => (await store.row(d.delivery_id)).delivery.status === 'failed', 'failure');
    expect((await store.row(d.delivery_id)).attempts.map((a) => a.error)).toEqual(['timeout after 200 ms', 'timeout after 200 ms']);
    expect(rx.received.length).toBeLessThanOrEqual(2);
  });

  it('auto-disables an endpoint failing longer than TPX_WEBHOOK_DISABLE_AFTER, reason visible', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_DISABLE_AFTER: '100ms', TPX_WEBHOOK_RETRY_SCHEDULE: '80ms,80ms,80ms,80ms,80ms' });
    const rx = await receiver(() => 500);
    const ep = await store.addEndpoint(rx.url, generateSecret());
    await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => !(await store.endpoint(ep.webhook_id)).enabled, 'auto-disable');
    const after = await store.endpoint(ep.webhook_id);
    expect(after.disabled_reason).toMatch(/failing continuously since .* \(longer than 100ms\)/);
    expect(rx.received.length).toBeGreaterThanOrEqual(2);
  });

  it('signs with the current and, during the grace period, the previous secret', async () => {
    const { store, dispatcher } = await setup();
    const rx = await receiver();
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const ep = await store.addEndpoint(rx.url, newSecret, { previous_secret: oldSecret, previous_secret_expires_at: new Date(Date.now() + 60_000).toISOString() });
    const expired = await store.addEndpoint(rx.url + '/expired', newSecret, { previous_secret: oldSecret, previous_secret_expires_at: new Date(Date.now() - 1000).toISOString() });
    await store.addDelivery(ep);
    await store.addDelivery(expired);
    dispatcher.notify();
    await until(async () => rx.received.length === 2, 'two deliveries');
    const inGrace = rx.received.find((r) => r.path === '/')!;
    const afterGrace = rx.received.find((r) => r.path === '/expired')!;
    expect(String(inGrace.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(new Webhook(newSecret).verify(inGrace.body, inGrace.headers as Record<string, string>)).toBeTruthy();
    expect(new Webhook(oldSecret).verify(inGrace.body, inGrace.headers as Record<string, string>)).toBeTruthy();
    expect(String(afterGrace.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(() => new Webhook(oldSecret).verify(afterGrace.body, afterGrace.headers as Record<string, string>)).toThrow();
  });

  it('refuses to connect to a private address at send time when ALLOW_PRIVATE is false', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_ALLOW_PRIVATE: 'false', TPX_WEBHOOK_RETRY_SCHEDULE: '20ms' });
    const rx = await receiver();
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const byName = await store.addEndpoint(`http://localhost:${rx.port}/`, generateSecret());
    const d1 = await store.addDelivery(ep);
    const d2 = await store.addDelivery(byName);
    dispatcher.notify();
    await until(async () => (await store.row(d1.delivery_id)).delivery.status === 'failed' && (await store.row(d2.delivery_id)).delivery.status === 'failed', 'refusals');
    expect(rx.received).toHaveLength(0);
    expect((await store.row(d1.delivery_id)).attempts[0].error).toMatch(/loopback.*SSRF guard/);
    expect((await store.row(d2.delivery_id)).attempts[0].error).toMatch(/SSRF guard/);
  });

  it('sends to one endpoint in seq order with concurrency 1', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_CONCURRENCY_PER_ENDPOINT: '1' });
    const rx = await receiver();
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await store.addDelivery(ep)).msg_id);
    dispatcher.notify();
    await until(async () => rx.received.length === 30, 'all 30');
    expect(rx.received.map((r) => r.json.msg_id)).toEqual(ids);
  });

  it('a slow endpoint does not delay a fast one (per-endpoint concurrency)', async () => {
    const { store, dispatcher } = await setup({ TPX_WEBHOOK_CONCURRENCY_PER_ENDPOINT: '2', TPX_WEBHOOK_TIMEOUT_MS: '5000' });
    let slowStarted = 0;
    const slow = await receiver(() => {
      slowStarted++;
      return { status: 200, delayMs: 1500 };
    });
    const fast = await receiver();
    const slowEp = await store.addEndpoint(slow.url, generateSecret());
    const fastEp = await store.addEndpoint(fast.url, generateSecret());
    for (let i = 0; i < 40; i++) await store.addDelivery(slowEp);
    const fastIds: string[] = [];
    for (let i = 0; i < 40; i++) fastIds.push((await store.addDelivery(fastEp)).delivery_id);
    dispatcher.notify();
    await until(
      async () => (await store.store.listDeliveries({ webhook_id: fastEp.webhook_id, status: 'succeeded', limit: 1000 })).length === fastIds.length,
      'fast endpoint drained',
    );
    for (const id of fastIds) expect((await store.row(id)).delivery.status).toBe('succeeded');
    // While the fast endpoint drained completely, the slow one never had more than 2 in flight.
    expect(slowStarted).toBeLessThanOrEqual(4);
    expect(dispatcher.inFlightCount).toBeLessThanOrEqual(2);
  });

  it('stop() waits for in-flight attempts and records them', async () => {
    const { store, dispatcher } = await setup();
    const rx = await receiver(() => ({ status: 200, delayMs: 300 }));
    const ep = await store.addEndpoint(rx.url, generateSecret());
    const d = await store.addDelivery(ep);
    dispatcher.notify();
    await until(async () => dispatcher.inFlightCount === 1, 'in flight');
    await dispatcher.stop();
    expect((await store.row(d.delivery_id)).delivery.status).toBe('succeeded');
  });
});
