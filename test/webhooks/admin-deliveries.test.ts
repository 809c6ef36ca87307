/**
 * The delivery log of the admin API as the operator console uses it (docs/webhooks.md): list
 * filters and `webhook_url`; the detail `{ delivery, attempts, request }`, where `request` is
 * exactly what the endpoint received at the latest attempt (or will receive); response excerpts;
 * retrying a pending delivery. The real embedded store, the real dispatcher, a real receiver.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../../src/config/index.js';
import { createApp } from '../../src/http/app.js';
import { webhookAdminRoutes } from '../../src/http/routes/webhooks.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { generateSecret } from '../../src/webhooks/signing.js';
import { DispatchFixture, startReceiver, until, type Responder } from './helpers.js';

const logger = pino({ level: 'silent' });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

async function setup(env: Record<string, string> = {}) {
  const fx = await DispatchFixture.create();
  cleanups.push(() => fx.close());
  const config = loadConfig({ TPX_DATA_DIR: fx.dataDir, TPX_WEBHOOK_ALLOW_PRIVATE: 'true', TPX_WEBHOOK_TIMEOUT_MS: '2000', TPX_SOURCE_ID: 'tpx_admin_test', ...env });
  const metrics = createMetrics();
  const dispatcher = new WebhookDispatcher({ store: fx.store, config, logger, metrics, nodeId: 'test' });
  cleanups.push(() => dispatcher.stop());
  const app = createApp({ logger, metrics });
  await app.register(webhookAdminRoutes, { prefix: '/admin', store: fx.store, config, dispatcher });
  cleanups.push(() => app.close());
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.json() };
  };
  const post = async (url: string) => {
    const res = await app.inject({ method: 'POST', url });
    return { status: res.statusCode, body: res.json() };
  };
  return { fx, config, dispatcher, get, post };
}

async function receiver(responder: Responder) {
  const rx = await startReceiver(responder);
  cleanups.push(() => rx.close());
  return rx;
}

describe('GET /admin/deliveries', () => {
  it('filters by account_id, status, webhook_id, msg_id, msg_type and limit; every delivery has webhook_url', async () => {
    const { fx, get } = await setup(); // no dispatcher running: everything stays pending
    const e1 = await fx.addEndpoint('http://127.0.0.1:9/one', generateSecret());
    const e2 = await fx.addEndpoint('http://127.0.0.1:9/two', generateSecret());
    const d1 = await fx.addDelivery(e1, 'BID_REQUEST');
    const d2 = await fx.addDelivery(e1, 'AUCTION_RESULT');
    const d3 = await fx.addDelivery(e2, 'BID_REQUEST');
    const ids = async (q: string) => ((await get(`/admin/deliveries${q}`)).body.deliveries as Array<{ delivery_id: string }>).map((d) => d.delivery_id);

    const all = (await get('/admin/deliveries')).body.deliveries;
    expect(all.map((d: { delivery_id: string }) => d.delivery_id)).toEqual([d3.delivery_id, d2.delivery_id, d1.delivery_id]); // newest first
    expect(Object.fromEntries(all.map((d: { delivery_id: string; webhook_url: string }) => [d.delivery_id, d.webhook_url]))).toEqual({
      [d1.delivery_id]: e1.url,
      [d2.delivery_id]: e1.url,
      [d3.delivery_id]: e2.url,
    });
    expect(await ids(`?msg_id=${d2.msg_id}`)).toEqual([d2.delivery_id]);
    expect(await ids('?msg_type=BID_REQUEST')).toEqual([d3.delivery_id, d1.delivery_id]);
    expect(await ids(`?webhook_id=${e1.webhook_id}&msg_type=BID_REQUEST`)).toEqual([d1.delivery_id]);
    expect(await ids(`?account_id=${e2.account_id}`)).toEqual([d3.delivery_id]);
    expect(await ids('?status=pending&limit=2')).toEqual([d3.delivery_id, d2.delivery_id]);
    expect(await ids('?status=failed')).toEqual([]);
    expect(await ids('?msg_id=no-such-message')).toEqual([]);
    expect((await get('/admin/deliveries?msg_type=NOPE')).status).toBe(400);

    // webhook_url follows the endpoint (where the next attempt goes).
    await fx.store.updateWebhook(e1.webhook_id, { url: 'http://127.0.0.1:9/moved' });
    expect((await get(`/admin/deliveries?msg_id=${d1.msg_id}`)).body.deliveries[0].webhook_url).toBe('http://127.0.0.1:9/moved');
  });
});

describe('GET /admin/deliveries/{id}', () => {
  it('before any attempt: request is what will be sent, signed, without the secret', async () => {
    const { fx, get } = await setup();
    const secret = generateSecret();
    const ep = await fx.addEndpoint('http://127.0.0.1:9/hook', secret);
    const d = await fx.addDelivery(ep, 'BID_REQUEST', { auction_id: 'a1' });
    const { status, body } = await get(`/admin/deliveries/${d.delivery_id}`);
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(['attempts', 'delivery', 'request']);
    expect(body.delivery).toMatchObject({ delivery_id: d.delivery_id, webhook_url: ep.url, status: 'pending', attempt_count: 0, seq: 1 });
    expect(body.attempts).toEqual([]);
    expect(body.request.url).toBe(ep.url);
    expect(JSON.parse(body.request.body)).toMatchObject({ msg_type: 'BID_REQUEST', msg_id: d.msg_id, seq: 1, source_id: 'tpx_admin_test', destination_id: ep.account_id, payload: { auction_id: 'a1' } });
    expect(Math.abs(Number(body.request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(new Webhook(secret).verify(body.request.body, body.request.headers)).toEqual(JSON.parse(body.request.body));
    expect(JSON.stringify(body)).not.toContain(secret.slice('whsec_'.length));
    expect((await get('/admin/deliveries/no-such-delivery')).status).toBe(404);
  });

  it('after attempts: each with its response excerpt (≤ 1 KiB of text), and request equal to what the endpoint received last', async () => {
    const { fx, get, dispatcher } = await setup({ TPX_WEBHOOK_RETRY_SCHEDULE: '20ms,20ms' });
    const big = 'é'.repeat(2000); // 4,000 bytes of two-byte characters
    const rx = await receiver((_req, _body, n) => (n < 2 ? { status: 503, body: big } : { status: 200, body: 'thanks' }));
    const secret = generateSecret();
    const ep = await fx.addEndpoint(rx.url + '/in', secret);
    const d = await fx.addDelivery(ep, 'AUCTION_RESULT');
    dispatcher.start();
    dispatcher.notify();
    await until(async () => (await fx.row(d.delivery_id)).delivery.status === 'succeeded', 'success');
    const { body } = await get(`/admin/deliveries/${d.delivery_id}`);
    expect(body.delivery).toMatchObject({ status: 'succeeded', attempt_count: 3, last_status_code: 200, webhook_url: ep.url });
    expect(body.attempts.map((a: { status_code: number; outcome: string }) => [a.status_code, a.outcome])).toEqual([
      [503, 'retry'],
      [503, 'retry'],
      [200, 'succeeded'],
    ]);
    for (const a of body.attempts) expect(Object.keys(a).sort()).toEqual(['attempt_id', 'attempted_at', 'error', 'latency_ms', 'outcome', 'response_excerpt', 'status_code']);
    const excerpt: string = body.attempts[0].response_excerpt;
    expect(Buffer.byteLength(excerpt)).toBe(1024); // 512 whole characters: none cut in two
    expect(excerpt).toBe('é'.repeat(512));
    expect(body.attempts[2].response_excerpt).toBe('thanks');
    const last = rx.received.at(-1)!;
    expect(body.request.url).toBe(rx.url + '/in');
    expect(body.request.body).toBe(last.body);
    for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'user-agent']) expect(body.request.headers[h]).toBe(last.headers[h]);
  });
});

describe('POST /admin/deliveries/{id}/retry', () => {
  it('makes a pending delivery waiting for its next attempt due now', async () => {
    const { fx, post, dispatcher } = await setup({ TPX_WEBHOOK_RETRY_SCHEDULE: '1h,1h' });
    let ok = false;
    const rx = await receiver(() => (ok ? 200 : 500));
    const ep = await fx.addEndpoint(rx.url, generateSecret());
    const d = await fx.addDelivery(ep);
    dispatcher.start();
    dispatcher.notify();
    await until(async () => (await fx.row(d.delivery_id)).delivery.attempt_count === 1, 'the first attempt');
    const waiting = (await fx.row(d.delivery_id)).delivery;
    expect(waiting.status).toBe('pending');
    expect(Date.parse(waiting.next_attempt_at!) - Date.now()).toBeGreaterThan(30 * 60_000); // ≈ 1 h ± 20 %
    ok = true;
    const res = await post(`/admin/deliveries/${d.delivery_id}/retry`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ delivery_id: d.delivery_id, status: 'pending', webhook_url: ep.url });
    expect(Date.parse(res.body.next_attempt_at)).toBeLessThanOrEqual(Date.now());
    await until(async () => (await fx.row(d.delivery_id)).delivery.status === 'succeeded', 'the retried attempt');
    expect(rx.received.map((r) => r.status)).toEqual([500, 200]);
    expect((await post('/admin/deliveries/nope/retry')).status).toBe(404);
  });
});
