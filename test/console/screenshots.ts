/**
 * Screenshots of the console for docs/console.md (not a test: run it by hand after a visible
 * change, then look at every picture before committing it):
 *
 *   node --conditions=tpx-source --import tsx test/console/screenshots.ts [out dir, default docs/img]
 *
 * Starts a real server, creates two partners with endpoints (one of them failing), keeps a
 * WebSocket subscribed and publishes a steady trickle for ~45 s so the overview has history,
 * then captures each view at 1280 px and two at 800 px.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { openConsole } from './browser.js';

const out = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'docs/img'));
const TYPES = ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'PAYMENT_CHARGED', 'PAYMENT_SETTLED'] as const;

const server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '30m,1h', TPX_NODE_ID: 'tpx-eu-1' } });
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url?.startsWith('/down')) res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable: maintenance until 02:00 UTC');
    else setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), 20 + Math.random() * 80);
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const acme = await createAccountWithKey(server, { name: 'Acme Tickets', partner_id: 'partner_acme' }, { name: 'production' });
const globex = await createAccountWithKey(server, { name: 'Globex Cards', partner_id: 'partner_globex', rooms: ['BID_REQUEST', 'AUCTION_RESULT', 'PAYMENT_SETTLED'] }, { name: 'eu-west' });
await api(server, 'POST', `/admin/accounts/${acme.accountId}/webhooks`, { url: `${base}/acme/tpx-events`, description: 'primary' });
await api(server, 'POST', `/admin/accounts/${acme.accountId}/webhooks`, { url: `${base}/down/acme-backup` });
await api(server, 'POST', `/admin/accounts/${globex.accountId}/webhooks`, { url: `${base}/globex/hooks/tpx` });
const clients: WsTestClient[] = [];
for (const [acct, rooms] of [
  [acme, ['ALL']],
  [acme, ['BID_REQUEST', 'BID_OUTBID']],
  [globex, ['BID_REQUEST', 'AUCTION_RESULT']],
] as const) {
  const c = await WsTestClient.connect(server.wsUrl);
  await c.authenticate(acct.token);
  await c.subscribe([...rooms]);
  clients.push(c);
}

const ui = await openConsole(server, { width: 1280, height: 860 });
const { page } = ui;
const shot = async (name: string, fullPage = false) => {
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(out, `console-${name}.png`), fullPage });
  console.log(`wrote ${path.join(out, `console-${name}.png`)}`);
};

// ~45 s of traffic with the overview open, so the charts have a history.
const until = Date.now() + 45_000;
let i = 0;
while (Date.now() < until) {
  const type = TYPES[i % TYPES.length];
  const burst = 1 + (i % 4);
  for (let k = 0; k < burst; k++) {
    await publish(server, { msg_type: type, account_ids: i % 3 ? [acme.accountId] : [acme.accountId, globex.accountId], payload: samplePayload(type) });
  }
  i++;
  await new Promise((r) => setTimeout(r, 400));
}
await shot('overview');

await page.goto(`${server.url}/console#/events`);
await page.locator('tr.event-row').first().waitFor();
const live = setInterval(() => void publish(server, { msg_type: 'BID_OUTBID', account_ids: [globex.accountId, acme.accountId], payload: samplePayload('BID_OUTBID') }).catch(() => undefined), 700);
await page.waitForTimeout(2500);
await page.locator('tr.event-row').first().getByRole('button', { name: 'payload' }).click();
await shot('events');
clearInterval(live);

await page.goto(`${server.url}/console#/deliveries?account_id=${acme.accountId}`);
await page.locator('#delivery-search tbody tr').first().waitFor();
await shot('deliveries');

const pending = (await api(server, 'GET', `/admin/deliveries?account_id=${acme.accountId}&status=pending&limit=1`)).body.deliveries[0];
await page.goto(`${server.url}/console#/deliveries/${pending.delivery_id}`);
await page.locator('#attempts tbody tr').first().waitFor();
await shot('delivery', true);

await page.goto(`${server.url}/console#/send`);
await page.getByLabel('Send to', { exact: true }).selectOption(acme.accountId);
await page.getByLabel('Event type', { exact: true }).selectOption('AUCTION_RESULT');
await page.getByRole('button', { name: 'Send event' }).click();
await page.locator('#send-result code').waitFor();
await shot('send');

await page.goto(`${server.url}/console#/connections`);
await page.locator('#connections tbody tr .key').first().waitFor();
await shot('connections');

await page.setViewportSize({ width: 800, height: 1000 });
await page.goto(`${server.url}/console#/deliveries?account_id=${acme.accountId}`);
await page.locator('#delivery-search tbody tr').first().waitFor();
await shot('deliveries-800');
await page.goto(`${server.url}/console#/overview`);
await page.locator('#chart-connections polyline').first().waitFor({ state: 'attached' });
await page.waitForTimeout(5000);
await shot('overview-800');

if (ui.errors.length) console.error('page errors:', ui.errors);
await ui.close();
for (const c of clients) await c.close();
receiver.close();
await stopAll();
