/**
 * No sideways scroll at 800 px (issue 12) with the longest values the APIs accept and that the
 * review test does not use: names without a single space (200 characters), the longest
 * partner_id, a 2 KB webhook URL and a 500-character description, a 128-character source_id, a
 * long node id (a Kubernetes pod name), a live connection with the long key name, and live-tail
 * rows arriving while the page is open (with their payload expanded).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { horizontalOverflow, openConsole, type ConsolePage } from './browser.js';

const LONG_NAME = 'AcmeTicketsInternational_SecondaryMarketplaceIntegration_EUWest_Production_'.repeat(3).slice(0, 200);
const LONG_KEY = 'production-eu-west-1_realtime_consumer_kubernetes_deployment_blue_green_canary_'.repeat(3).slice(0, 200).replace(/-/g, '_');
const LONG_PARTNER = `p${'artner_acme_tickets_international'.repeat(3)}`.slice(0, 64);
const LONG_SOURCE = 'marketplace.bidding-service.eu-west-1.production:'.repeat(3).slice(0, 128);
const NODE_ID = 'tpx-realtime-7d9f8b6c5d-x2kqp.eu-west-1.compute.internal.tpx-realtime-production';

let server: TestServer;
let ui: ConsolePage;
let receiver: Server;
let accountId: string;
let ws: WsTestClient;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '1h', TPX_NODE_ID: NODE_ID } });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(500).end(`upstream_error_${'x'.repeat(400)}`));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const acct = await createAccountWithKey(server, { name: LONG_NAME, partner_id: LONG_PARTNER });
  accountId = acct.accountId;
  const key = await api(server, 'POST', `/admin/accounts/${accountId}/api-keys`, { name: LONG_KEY });
  expect(key.status).toBe(201);
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/`;
  const hookUrl = `${base}${'a1B2c3D4e5F6g7H8'.repeat(200)}`.slice(0, 2048);
  const hook = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: hookUrl, description: 'd'.repeat(500) });
  expect(hook.status).toBe(201);
  ws = await WsTestClient.connect(server.wsUrl);
  await ws.authenticate(key.body.token);
  await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST'), source_id: LONG_SOURCE });
  await waitFor(async () => (await api(server, 'GET', `/admin/deliveries?account_id=${accountId}`)).body.deliveries?.[0]?.attempt_count > 0, 10_000, 'an attempt');
  ui = await openConsole(server, { width: 800, height: 900 });
}, 90_000);

afterAll(async () => {
  ws?.close();
  await ui?.close();
  await new Promise((r) => receiver?.close(r));
  await stopAll();
});

async function overflowOf(view: string): Promise<{ overflow: number; culprits: string[] }> {
  const result = await horizontalOverflow(ui.page);
  if (result.overflow > 0) await ui.page.screenshot({ path: `/tmp/long-values-800-${view.replace(/[^a-z]+/g, '_')}.png`, fullPage: true });
  return result;
}

describe('800 px with the longest accepted values', () => {
  it('no view scrolls sideways', async () => {
    const { page } = ui;
    const deliveryId = (await api(server, 'GET', `/admin/deliveries?account_id=${accountId}`)).body.deliveries[0].delivery_id;
    const found: Record<string, { overflow: number; culprits: string[] }> = {};
    const views = ['#/overview', '#/deliveries', `#/deliveries?account_id=${accountId}`, `#/deliveries/${deliveryId}`, '#/connections', '#/accounts', `#/accounts/${accountId}`, `#/send?account_id=${accountId}`];
    for (const view of views) {
      await page.goto(`${server.url}/console${view}`);
      await sleep(1_500);
      const result = await overflowOf(view);
      if (result.overflow > 0) found[view.replace(/[0-9a-f-]{36}/g, '<id>')] = result;
    }
    // The connection with the long key name is listed (the view had something long to show).
    await page.goto(`${server.url}/console#/connections`);
    await page.getByText(LONG_KEY).waitFor();
    // Live tail: rows arrive while the page is open; one payload expanded.
    await page.goto(`${server.url}/console#/events`);
    await sleep(1_000);
    for (let i = 0; i < 3; i++) await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST'), source_id: LONG_SOURCE });
    await page.locator('tr.event-row').first().waitFor();
    await page.getByRole('button', { name: 'payload', exact: true }).first().click();
    await sleep(500);
    const tail = await overflowOf('#/events');
    if (tail.overflow > 0) found['#/events'] = tail;
    expect(found).toEqual({});
  }, 120_000);
});
