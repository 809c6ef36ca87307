/**
 * Review (issue 12 console: "no horizontal scroll at 800 px"): with realistic long values — a
 * descriptive account name, a long key name, a webhook URL with a long path and query string (as
 * Slack-style or signed hook URLs are) — the account page, the send-event form and the
 * deliveries list scroll sideways at 800 px. The existing layout test uses short values only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { horizontalOverflow, openConsole, type ConsolePage } from './browser.js';

let server: TestServer;
let ui: ConsolePage;
let receiver: Server;
let accountId: string;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '1h' } });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(503).end('maintenance'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const acct = await createAccountWithKey(server, { name: 'Acme Tickets International — Secondary Marketplace Integration (EU West, production)', partner_id: 'partner_acme_tickets_international_eu_west' });
  accountId = acct.accountId;
  await api(server, 'POST', `/admin/accounts/${accountId}/api-keys`, { name: 'production-eu-west-1-realtime-consumer-kubernetes-deployment-blue' });
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/services/tpx/T0A1B2C3D4E5/B5E6F7G8H9I0/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ?signature=0123456789abcdef0123456789abcdef0123456789abcdef`;
  expect((await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: hookUrl })).status).toBe(201);
  await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
  await waitFor(async () => (await api(server, 'GET', `/admin/deliveries?account_id=${accountId}`)).body.deliveries?.[0]?.attempt_count > 0, 10_000, 'an attempt');
  ui = await openConsole(server, { width: 800, height: 900 });
}, 90_000);

afterAll(async () => {
  await ui?.close();
  await new Promise((r) => receiver?.close(r));
  await stopAll();
});

describe('800 px with long but ordinary values', () => {
  it('no view scrolls sideways', async () => {
    const { page } = ui;
    const deliveryId = (await api(server, 'GET', `/admin/deliveries?account_id=${accountId}`)).body.deliveries[0].delivery_id;
    const found: Record<string, number> = {};
    for (const view of ['#/overview', '#/events', '#/deliveries', `#/deliveries/${deliveryId}`, '#/connections', '#/accounts', `#/accounts/${accountId}`, '#/send']) {
      await page.goto(`${server.url}/console${view}`);
      await sleep(1_500);
      const { overflow } = await horizontalOverflow(page);
      if (overflow > 0) {
        found[view.replace(/[0-9a-f-]{36}/, '<id>')] = overflow;
        await page.screenshot({ path: `/tmp/review-800-${view.replace(/[^a-z]+/g, '_')}.png`, fullPage: true });
      }
    }
    expect(found).toEqual({});
  }, 120_000);
});
