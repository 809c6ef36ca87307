/**
 * Console views that need the store engineer's delivery API (issue 12): `GET /admin/deliveries`
 * filtered by msg_id and msg_type with `webhook_url` on each delivery, and
 * `GET /admin/deliveries/:id` answering `{ delivery, attempts (with response_excerpt), request }`.
 * These fail until that work lands on the branch.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { openConsole, UI_TIMEOUT, type ConsolePage } from './browser.js';

let server: TestServer;
let ui: ConsolePage;
let receiver: Server;
let hookUrl: string;
let accountId: string;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '1h' } });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"maintenance window","retry_after":30}'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/partner/hook`;
  const acct = await createAccountWithKey(server, { name: 'Initech', partner_id: 'partner_initech' });
  accountId = acct.accountId;
  expect((await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: hookUrl })).status).toBe(201);
  ui = await openConsole(server);
}, 60_000);

afterAll(async () => {
  await ui?.close();
  await new Promise((r) => receiver?.close(r));
  await stopAll();
});

describe('deliveries from the store API', () => {
  it('finds the deliveries of one msg_id, and filters by event type; rows carry webhook_url', async () => {
    const wanted = await publish(server, { msg_type: 'PAYMENT_FAILED', account_ids: [accountId], payload: samplePayload('PAYMENT_FAILED') });
    await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
    const listed = await waitFor(async () => {
      const r = await api(server, 'GET', `/admin/deliveries?msg_id=${wanted.msg_id}`);
      return r.body.deliveries?.length === 1 && r.body.deliveries[0].attempt_count > 0 ? r.body.deliveries : null;
    }, 10_000, 'the delivery of msg_id, attempted');
    expect(listed[0]).toMatchObject({ msg_id: wanted.msg_id, webhook_url: hookUrl });

    const { page } = ui;
    await page.goto(`${server.url}/console#/deliveries?msg_id=${wanted.msg_id}`);
    const search = page.locator('#delivery-search');
    await expect.poll(() => search.locator('tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await search.locator('tbody tr .id').first().getAttribute('data-id')).toBe(wanted.msg_id);
    expect(await search.getByLabel('msg_id', { exact: true }).inputValue()).toBe(wanted.msg_id);

    await search.getByLabel('msg_id', { exact: true }).fill('');
    await search.getByLabel('Event type', { exact: true }).selectOption('BID_REQUEST');
    await search.getByRole('button', { name: 'Search' }).click();
    await expect.poll(async () => new Set((await search.locator('tbody tr code.type').allTextContents())), { timeout: UI_TIMEOUT }).toEqual(new Set(['BID_REQUEST']));
  });

  it('shows the request sent (URL, signed headers, body) and the response excerpt of each attempt', async () => {
    const sent = await publish(server, { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: samplePayload('PAYMENT_SETTLED') });
    const delivery = await waitFor(async () => {
      const r = await api(server, 'GET', `/admin/deliveries?msg_id=${sent.msg_id}`);
      return r.body.deliveries?.[0]?.attempt_count > 0 ? r.body.deliveries[0] : null;
    }, 10_000, 'an attempt');
    const { page } = ui;
    await page.goto(`${server.url}/console#/deliveries/${delivery.delivery_id}`);
    const request = page.locator('#request');
    await request.locator('pre.json').waitFor();
    expect(await request.textContent()).toContain(`POST ${hookUrl}`);
    expect(await request.locator('tbody').textContent()).toMatch(/webhook-signature\s*v1,/);
    expect(await request.locator('tbody').textContent()).toContain(sent.msg_id);
    const body = JSON.parse((await request.locator('pre.json').textContent())!);
    expect(body).toMatchObject({ msg_type: 'PAYMENT_SETTLED', msg_id: sent.msg_id, destination_id: 'partner_initech' });
    const attempt = page.locator('#attempts tbody tr').first();
    expect(await attempt.textContent()).toContain('503');
    expect(await attempt.locator('pre.excerpt').textContent()).toContain('maintenance window');
    await page.screenshot({ path: '/tmp/tpx-console-delivery-request.png', fullPage: true });
    expect(ui.errors).toEqual([]);
  });
});
