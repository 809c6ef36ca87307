/**
 * The console's operator views in real Chromium against a real `tpx serve` with real traffic:
 * overview charts, live event tail with filters, send-test-event, deliveries with their endpoint,
 * delivery detail with attempts and "retry now", keys shown by name and prefix, and the layout at
 * 800 px (no sideways scroll, identifiers on one line). Screenshots go to /tmp/tpx-console-*.png.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { horizontalOverflow, openConsole, UI_TIMEOUT, type ConsolePage } from './browser.js';

// Each test here takes several UI steps, each allowed UI_TIMEOUT (15 s) on a loaded 2-core
// machine: the suite-wide 30 s per test was shorter than two such steps (a CI run on Node 24 timed
// out in 'send a test event' while the whole suite ran; run alone on Node 24 it passed 3 times of 3).
vi.setConfig({ testTimeout: 90_000 });

let server: TestServer;
let ui: ConsolePage;
let ok: Server;
let flaky: Server;
let flakyFails = true;
let ws: WsTestClient;
let acme: Awaited<ReturnType<typeof createAccountWithKey>>;
let globex: Awaited<ReturnType<typeof createAccountWithKey>>;
const shot = (name: string) => ui.page.screenshot({ path: `/tmp/tpx-console-${name}.png`, fullPage: true });

const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  // A long retry schedule keeps a failed first attempt pending (for "retry now").
  server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '1h,2h', TPX_WEBHOOK_TIMEOUT_MS: '3000' } });
  ok = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}'));
  });
  flaky = createServer((req, res) => {
    req.resume();
    req.on('end', () => (flakyFails ? res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream exploded') : res.writeHead(200).end('ok')));
  });
  const okUrl = await listen(ok);
  const flakyUrl = await listen(flaky);
  acme = await createAccountWithKey(server, { name: 'Acme Tickets', partner_id: 'partner_acme' }, { name: 'production' });
  globex = await createAccountWithKey(server, { name: 'Globex Cards' }, { name: 'staging' });
  // Two endpoints for Acme: one event → two deliveries, told apart by their endpoint.
  expect((await api(server, 'POST', `/admin/accounts/${acme.accountId}/webhooks`, { url: `${okUrl}/acme-hook` })).status).toBe(201);
  expect((await api(server, 'POST', `/admin/accounts/${acme.accountId}/webhooks`, { url: `${flakyUrl}/acme-backup` })).status).toBe(201);
  ws = await WsTestClient.connect(server.wsUrl);
  await ws.authenticate(acme.token);
  await ws.subscribe(['ALL']);
  ui = await openConsole(server);
}, 60_000);

afterAll(async () => {
  await ws?.close().catch(() => undefined);
  await ui?.close();
  await Promise.all([ok, flaky].map((s) => new Promise((r) => s?.close(r))));
  await stopAll();
});

describe('overview', () => {
  it('is the start page and charts connections, events in/out, delivery success and latency as traffic flows', async () => {
    const { page } = ui;
    await page.locator('#overview').waitFor();
    expect(new URL(page.url()).hash).toBe('');
    await page.locator('#tiles .tile').first().waitFor();
    for (let i = 0; i < 4; i++) await publish(server, { msg_type: 'BID_REQUEST', account_ids: [acme.accountId], payload: samplePayload('BID_REQUEST') });
    // Two samples with traffic between them give rates; a webhook success gives the rate and latency.
    await expect
      .poll(async () => page.locator('#chart-events .legend strong').first().textContent(), { timeout: UI_TIMEOUT })
      .not.toBe('—');
    await expect.poll(() => page.locator('#chart-success .legend strong').textContent(), { timeout: UI_TIMEOUT }).toMatch(/\d+ %/);
    await expect.poll(() => page.locator('#chart-latency .legend strong').first().textContent(), { timeout: UI_TIMEOUT }).toMatch(/\d+(\.\d)? (ms|s)/);
    expect(await page.locator('#tiles').textContent()).toContain('Connections1');
    expect(await page.locator('#chart-connections polyline').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-events polyline').count()).toBeGreaterThan(0);
    expect(await page.locator('#overview-status').textContent()).toMatch(/Node node-\d+/);
    // Half of the attempts failed (the flaky endpoint answers 500): the rate says so.
    await expect.poll(async () => Number((await page.locator('#chart-success .legend strong').textContent())!.replace(/\D/g, '')), { timeout: UI_TIMEOUT }).toBeLessThan(100);
    await shot('overview');
  });
});

describe('live event tail', () => {
  it('shows events as they are published, newest first, with account and type filters', async () => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Live events' }).click();
    await page.locator('#tail-status', { hasText: 'Live' }).waitFor();
    const a = await publish(server, { msg_type: 'AUCTION_RESULT', account_ids: [acme.accountId], payload: samplePayload('AUCTION_RESULT') });
    const b = await publish(server, { msg_type: 'PAYMENT_SETTLED', account_ids: [globex.accountId], payload: samplePayload('PAYMENT_SETTLED') });
    await page.locator(`tr.event-row[data-msg-id="${b.msg_id}"]`).waitFor();
    await page.locator(`tr.event-row[data-msg-id="${a.msg_id}"]`).waitFor();
    const order = await page.locator('tr.event-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-msg-id')));
    expect(order.indexOf(b.msg_id)).toBeLessThan(order.indexOf(a.msg_id));
    const row = page.locator(`tr.event-row[data-msg-id="${b.msg_id}"]`);
    expect(await row.textContent()).toContain('Globex Cards');
    await row.getByRole('button', { name: 'payload' }).click();
    expect(await page.locator('tr.payload-row:not([hidden]) pre').first().textContent()).toContain('"seller_payout_cents"');

    // Type filter: only PAYMENT_SETTLED rows, also for what is published after.
    await page.getByLabel('Event type', { exact: true }).selectOption('PAYMENT_SETTLED');
    await expect.poll(() => page.locator('tr.event-row').count(), { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
    const c = await publish(server, { msg_type: 'BID_OUTBID', account_ids: [globex.accountId], payload: samplePayload('BID_OUTBID') });
    const d = await publish(server, { msg_type: 'PAYMENT_SETTLED', account_ids: [acme.accountId], payload: samplePayload('PAYMENT_SETTLED') });
    await page.locator(`tr.event-row[data-msg-id="${d.msg_id}"]`).waitFor();
    expect(await page.locator(`tr.event-row[data-msg-id="${c.msg_id}"]`).count()).toBe(0);
    expect(new Set(await page.locator('tr.event-row td:nth-child(2)').allTextContents())).toEqual(new Set(['PAYMENT_SETTLED']));
    expect(new URL(page.url()).hash).toBe('#/events?type=PAYMENT_SETTLED');

    // Account filter (with the type filter still on).
    await page.getByLabel('Account', { exact: true }).selectOption({ label: 'Globex Cards' });
    await page.locator(`tr.event-row[data-msg-id="${b.msg_id}"]`).waitFor();
    expect(await page.locator(`tr.event-row[data-msg-id="${d.msg_id}"]`).count()).toBe(0);
    await shot('tail');
    await page.getByLabel('Event type', { exact: true }).selectOption('');
    await page.getByLabel('Account', { exact: true }).selectOption('');
  });
});

describe('send a test event', () => {
  it('fills the sample payload of the chosen type, publishes it for real, and links to its deliveries', async () => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Send event' }).click();
    await page.getByLabel('Event type', { exact: true }).selectOption('PAYMENT_CHARGED');
    const payload = page.getByLabel('Payload (JSON)');
    await expect.poll(async () => payload.inputValue(), { timeout: UI_TIMEOUT }).toContain('"charged_at"');
    await page.getByLabel('Send to', { exact: true }).selectOption(acme.accountId);
    await page.getByRole('button', { name: 'Send event' }).click();
    await page.getByRole('status').filter({ hasText: 'Accepted: PAYMENT_CHARGED for 1 recipient.' }).waitFor();
    const msgId = (await page.locator('#send-result code').textContent())!;
    const frame = await ws.next((f) => f.msg_type === 'PAYMENT_CHARGED', 10_000);
    expect(frame.msg_id).toBe(msgId);
    expect(frame.payload).toEqual(JSON.parse(await payload.inputValue()));

    // Broken JSON is refused in the page, before any call.
    await payload.fill('{ "not": json');
    await page.getByRole('button', { name: 'Send event' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: UI_TIMEOUT }).toContain('The payload is not valid JSON');
    // An invalid payload is refused by the server with the failing fields.
    await payload.fill('{}');
    await page.getByRole('button', { name: 'Send event' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), { timeout: UI_TIMEOUT }).toMatch(/VALIDATION_FAILED.*400/);
    await page.getByRole('button', { name: 'Reset to sample' }).click();
    expect(await payload.inputValue()).toContain('"charged_at"');
    await shot('send');
  });
});

describe('deliveries', () => {
  it('lists each delivery with its endpoint, so two endpoints make two distinguishable rows', async () => {
    const { page } = ui;
    const sent = await publish(server, { msg_type: 'BID_OUTBID', account_ids: [acme.accountId], payload: samplePayload('BID_OUTBID') });
    await page.goto(`${server.url}/console#/accounts/${acme.accountId}`);
    const rows = page.locator('#deliveries tbody tr', { hasText: 'BID_OUTBID' });
    await expect.poll(async () => (await page.locator('#deliveries').getByRole('button', { name: 'Refresh' }).click(), rows.count()), { timeout: UI_TIMEOUT }).toBe(2);
    const endpoints = await rows.locator('.url-cell').allTextContents();
    expect(endpoints.map((u) => u.split('/').pop()).sort()).toEqual(['acme-backup', 'acme-hook']);
    expect(await rows.first().locator('.url-cell').getAttribute('title')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/acme-(hook|backup)\n/);
    expect(await rows.first().locator('.id').getAttribute('data-id')).toBe(sent.msg_id);
  });

  it('searches by account and status in the Deliveries view; the filters live in the address', async () => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Deliveries' }).click();
    const search = page.locator('#delivery-search');
    await search.waitFor();
    await search.getByLabel('Account', { exact: true }).selectOption({ label: 'Acme Tickets' });
    await search.getByLabel('Status', { exact: true }).selectOption('pending');
    await search.getByRole('button', { name: 'Search' }).click();
    expect(new URL(page.url()).hash).toBe(`#/deliveries?account_id=${acme.accountId}&status=pending`);
    const rows = search.locator('tbody tr');
    const expected = (await api(server, 'GET', `/admin/deliveries?account_id=${acme.accountId}&status=pending`)).body.deliveries.length;
    expect(expected).toBeGreaterThan(1);
    await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT }).toBe(expected);
    for (const text of await rows.allTextContents()) {
      expect(text).toContain('acme-backup'); // only the failing endpoint has pending deliveries
      expect(text).toContain('pending');
    }
    // One account chosen: no account column (it would say the same on every row).
    expect(await search.locator('thead th').allTextContents()).not.toContain('Account');

    // Opened from an address (a link or a bookmark), the filters apply to the first load too.
    await page.goto(`${server.url}/console#/deliveries?account_id=${globex.accountId}`);
    await page.locator('#delivery-search').getByText('No deliveries match.').waitFor();
    expect(await page.locator('#delivery-search').getByLabel('Account', { exact: true }).inputValue()).toBe(globex.accountId);
    await page.goto(`${server.url}/console#/deliveries?account_id=${acme.accountId}&status=pending`);
    await expect.poll(() => page.locator('#delivery-search tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(expected);
    await shot('deliveries');
  });

  it('opens a delivery: each attempt with status, duration and error; "retry now" sends a pending one at once', async () => {
    const { page } = ui;
    await page.locator('#delivery-search tbody tr', { hasText: 'BID_OUTBID' }).first().getByRole('link', { name: 'Open' }).click();
    await page.locator('#attempts').waitFor();
    const attempt = page.locator('#attempts tbody tr').first();
    await attempt.waitFor();
    expect(await attempt.textContent()).toContain('500');
    expect(await attempt.textContent()).toMatch(/\d+ ms/);
    expect(await attempt.textContent()).toContain('retry');
    expect(await page.locator('#delivery').textContent()).toContain('pending');
    expect(await page.locator('#delivery .url-cell').textContent()).toMatch(/\/acme-backup$/);

    flakyFails = false;
    await page.locator('#delivery').getByRole('button', { name: 'Retry now' }).click();
    await page.getByRole('status').filter({ hasText: 'queued for now' }).waitFor();
    await expect
      .poll(async () => (await page.locator('#delivery').getByRole('button', { name: 'Refresh' }).click(), page.locator('#delivery').textContent()), { timeout: UI_TIMEOUT })
      .toContain('succeeded');
    await expect.poll(() => page.locator('#attempts tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(2);
    expect(await page.locator('#attempts tbody tr').nth(1).textContent()).toContain('200');
    await shot('delivery');
  });
});

describe('connections', () => {
  it('shows the key by name and token prefix, never its UUID', async () => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Connections' }).click();
    const row = page.locator('#connections tbody tr', { hasText: 'Acme Tickets' });
    await row.locator('.key').waitFor();
    const key = (await api(server, 'GET', `/admin/api-keys/${acme.key.key_id}`)).body;
    expect(await row.locator('.key').textContent()).toBe(`production ${key.token_prefix}…`);
    expect(await row.textContent()).not.toContain(acme.key.key_id);
    expect(await row.getByRole('button', { name: 'Disconnect' }).count()).toBe(1);
  });
});

describe('layout', () => {
  it('never scrolls sideways at 1280 or 800 px, and identifiers stay on one line (ellipsis, full value on hover and copy)', async () => {
    const { page } = ui;
    const views = ['#/overview', '#/events', '#/deliveries', `#/deliveries?account_id=${acme.accountId}`, '#/send', '#/connections', '#/accounts', `#/accounts/${acme.accountId}`];
    for (const [width, hash] of [1280, 800].flatMap((w) => views.map((v) => [w, v] as const))) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${server.url}/console${hash}`);
      await page.locator('#view > *').first().waitFor();
      await page.waitForLoadState('networkidle').catch(() => undefined);
      await page.waitForTimeout(300);
      const { overflow, culprits } = await horizontalOverflow(page);
      expect(overflow, `${width} px ${hash}: ${culprits.join(', ')}`).toBeLessThanOrEqual(0);
      const wrapped = await page.locator('.id').evaluateAll((els) =>
        els.filter((e) => (e as HTMLElement).offsetParent !== null && e.getClientRects().length > 1).map((e) => e.textContent),
      );
      expect(wrapped, hash).toEqual([]);
      const tall = await page.locator('.id').evaluateAll((els) =>
        els.filter((e) => (e as HTMLElement).offsetParent !== null && e.getBoundingClientRect().height > 24).map((e) => e.textContent),
      );
      expect(tall, hash).toEqual([]);
      if (width === 800 && hash === '#/deliveries') await shot('deliveries-800');
      if (width === 800 && hash.startsWith('#/accounts/')) await shot('account-800');
      if (width === 1280 && hash === '#/deliveries') await shot('deliveries-1280');
    }
    // A cut identifier still carries its whole value: tooltip, text for selection, and the copy.
    const id = page.locator('h1 .id');
    expect(await id.getAttribute('title')).toContain(acme.accountId);
    expect(await id.textContent()).toBe(acme.accountId);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await id.click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(acme.accountId);
    expect(ui.errors).toEqual([]);
  });
});
