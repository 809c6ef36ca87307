/**
 * The operator web console (console/, served by src/http/routes/console.ts) in real Chromium
 * (playwright-core driving /usr/bin/chromium) against a real `tpx serve`. The tests share one
 * page and run in order, like an operator's session.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '@tpx-realtime/protocol';
import { samplePayload } from '../helpers/payloads.js';
import { api, publish, REPO_ROOT, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];
const UI_TIMEOUT = 15_000;
const SCREENSHOT = '/tmp/tpx-console.png';

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const consoleErrors: string[] = [];
let ws: WsTestClient | undefined;
let receiver: Server | undefined;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // The deliberate 401 and 400 answers are logged by Chromium as resource errors; anything else is a bug.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[01]/.test(m.text())) consoleErrors.push(m.text());
  });
  // Deletes and revokes ask for confirmation: the operator says yes.
  page.on('dialog', (d) => void d.accept());
});

afterAll(async () => {
  await ws?.close().catch(() => undefined);
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  await browser?.close();
  await stopAll();
});

async function signIn(token = server.adminToken): Promise<void> {
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('serving the console', () => {
  it('serves the page and its assets without auth, with content types and security headers', async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    const cases: Array<[string, RegExp]> = [
      ['/console', /^text\/html/],
      ['/console/', /^text\/html/],
      ['/console/index.html', /^text\/html/],
      ['/console/app.js', /^text\/javascript/],
      ['/console/accounts.js', /^text\/javascript/],
      ['/console/console.css', /^text\/css/],
      ['/console/favicon.svg', /^image\/svg\+xml/],
    ];
    for (const [path, type] of cases) {
      const res = await fetch(server.url + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(type);
      expect(res.headers.get('content-security-policy'), path).toBe("default-src 'self'; frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect((await res.text()).length, path).toBeGreaterThan(0);
    }
  });

  it('serves every file of console/ (the whitelist is complete) and mirrors the protocol rooms', async () => {
    const files = readdirSync(path.join(REPO_ROOT, 'console'));
    expect(files).toContain('index.html');
    for (const file of files) expect((await fetch(`${server.url}/console/${file}`)).status, file).toBe(200);
    // @ts-expect-error plain browser module (JSDoc-typed), imported for its constant only
    const consoleApi = (await import('../../console/api.js')) as { EVENT_TYPES: readonly string[] };
    expect(consoleApi.EVENT_TYPES).toEqual(EVENT_TYPES);
  });

  it('serves only the whitelisted files (no traversal, no other names)', async () => {
    for (const path of [
      '/console/package.json',
      '/console/..%2fpackage.json',
      '/console/%2e%2e%2fpackage.json',
      '/console/..%2f..%2fetc%2fpasswd',
      '/console/.%2fapp.js',
      '/console/app.js%00.html',
      '/console/APP.JS',
    ]) {
      const res = await fetch(server.url + path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toMatch(/tpx-realtime|root:/);
    }
    // The data behind the console still needs the token.
    expect((await api(server, 'GET', '/admin/accounts', undefined, { token: null })).status).toBe(401);
  });
});

describe('operator session in Chromium', () => {
  it('a wrong token shows the 401 error and is not kept', async () => {
    await page.goto(`${server.url}/console`);
    await signIn('adm_not_the_token');
    const banner = page.getByRole('alert');
    await expect.poll(() => banner.textContent(), { timeout: UI_TIMEOUT }).toContain('Invalid admin token');
    expect(await banner.textContent()).toContain('UNAUTHORIZED');
    expect(await banner.textContent()).toContain('401');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#signin').isVisible()).toBe(true);
  });

  it('signs in with the admin token, kept in sessionStorage only and never in the URL', async () => {
    await signIn();
    // The start page is the overview; accounts are one click away.
    await page.locator('#overview').waitFor();
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    await page.getByRole('heading', { name: 'New account' }).waitFor();
    expect(await page.getByRole('alert').isVisible()).toBe(false);
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([server.adminToken]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).not.toContain(server.adminToken);
  });

  it('creates an account with restricted rooms and lists it', async () => {
    await page.getByLabel('Name', { exact: true }).fill('Acme Tickets');
    await page.getByLabel('Partner id', { exact: true }).fill('partner_acme');
    await page.getByLabel('All rooms').uncheck();
    await page.getByLabel('BID_REQUEST', { exact: true }).check();
    await page.getByLabel('AUCTION_RESULT', { exact: true }).check();
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('status').filter({ hasText: 'Account "Acme Tickets" created.' }).waitFor();
    const row = page.locator('#accounts tbody tr', { hasText: 'Acme Tickets' });
    await row.waitFor();
    expect(await row.textContent()).toContain('partner_acme');
    expect(await row.locator('.rooms code').allTextContents()).toEqual(['BID_REQUEST', 'AUCTION_RESULT']);

    const { body } = await api(server, 'GET', '/admin/accounts');
    const acme = body.accounts.find((a: { name: string }) => a.name === 'Acme Tickets');
    expect(acme).toMatchObject({ partner_id: 'partner_acme', rooms: ['BID_REQUEST', 'AUCTION_RESULT'] });
  });

  it('creates an API key, shows its token once, and deactivates it', async () => {
    await page.locator('#accounts tbody tr', { hasText: 'Acme Tickets' }).getByRole('link', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await page.getByLabel('Key name (optional)').fill('production');
    await page.getByRole('button', { name: 'Create API key' }).click();
    const tokenInput = page.getByLabel('New API key token');
    await tokenInput.waitFor();
    const token = await tokenInput.inputValue();
    expect(token).toMatch(/^tp_live_/);
    expect(await page.locator('#new-token').textContent()).toContain('shown only once');

    const accountId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]!);
    const keys = (await api(server, 'GET', `/admin/accounts/${accountId}/api-keys`)).body.api_keys;
    expect(keys).toHaveLength(1);
    expect(token.startsWith(keys[0].token_prefix)).toBe(true);
    const row = page.locator('#keys tbody tr', { hasText: 'production' });
    await row.getByText('active', { exact: true }).waitFor();

    // Once: dismissing the box (or reloading) leaves no trace of the token on the page.
    await page.getByRole('button', { name: 'I have stored it' }).click();
    expect(await page.locator('#new-token').count()).toBe(0);
    await page.reload();
    await page.locator('#keys tbody tr', { hasText: 'production' }).waitFor();
    expect(await page.content()).not.toContain(token);

    await page.locator('#keys tbody tr', { hasText: 'production' }).getByRole('button', { name: 'Deactivate' }).click();
    await page.locator('#keys tbody tr', { hasText: 'production' }).getByText('inactive', { exact: true }).waitFor();
    const after = await api(server, 'GET', `/admin/api-keys/${keys[0].key_id}`);
    expect(after.body.status).toBe('inactive');
    // …and back.
    await page.locator('#keys tbody tr', { hasText: 'production' }).getByRole('button', { name: 'Activate' }).click();
    await page.locator('#keys tbody tr', { hasText: 'production' }).getByRole('button', { name: 'Deactivate' }).waitFor();
    expect((await api(server, 'GET', `/admin/api-keys/${keys[0].key_id}`)).body.status).toBe('active');
  });

  it('adds a webhook and lists it; disabling it shows in the list and the API', async () => {
    const url = 'http://127.0.0.1:9/tpx-hook';
    await page.getByLabel('Endpoint URL').fill(url);
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const row = page.locator('#webhooks tbody tr', { hasText: url });
    await row.waitFor();
    await row.getByText('enabled', { exact: true }).waitFor();
    await row.getByRole('button', { name: 'Disable' }).click();
    await page.locator('#webhooks tbody tr', { hasText: url }).getByText('disabled', { exact: true }).waitFor();

    const accountId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]!);
    const hooks = (await api(server, 'GET', `/admin/accounts/${accountId}/webhooks`)).body.webhooks;
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ url, enabled: false });
    await page.getByRole('heading', { name: 'Webhook deliveries' }).waitFor();
    expect(await page.locator('#deliveries').textContent()).toContain('No deliveries match.');
  });

  it('shows an API error from { error, code } in the banner', async () => {
    await page.getByLabel('Endpoint URL').fill('ftp://127.0.0.1/nope');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const banner = page.getByRole('alert');
    await banner.waitFor({ state: 'visible' });
    expect(await banner.textContent()).toMatch(/UNSAFE_WEBHOOK_URL|VALIDATION_FAILED/);
    expect(await banner.textContent()).toContain('400');
  });

  it('lists deliveries with a status filter, retries one, and retries all failed', async () => {
    let received = 0;
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', () => r()));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await page.getByLabel('Endpoint URL').fill(hook);
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.locator('#webhooks tbody tr', { hasText: hook }).waitFor();

    const accountId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]!);
    const { msg_id } = await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
    const deliveries = page.locator('#deliveries');
    const refresh = deliveries.getByRole('button', { name: 'Refresh' });
    await expect
      .poll(async () => (await refresh.click(), await deliveries.locator('tbody tr', { hasText: msg_id }).textContent().catch(() => '')), { timeout: UI_TIMEOUT })
      .toContain('succeeded');

    await deliveries.getByLabel('Status').selectOption('failed');
    await deliveries.getByText('No deliveries match.').waitFor();
    await deliveries.getByLabel('Status').selectOption('succeeded');
    const row = deliveries.locator('tbody tr', { hasText: msg_id });
    await row.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('status').filter({ hasText: 'queued again' }).waitFor();
    await expect.poll(() => received, { timeout: UI_TIMEOUT }).toBe(2);

    await deliveries.getByRole('button', { name: 'Retry all failed' }).click();
    await page.getByRole('status').filter({ hasText: 'No failed deliveries to retry.' }).waitFor();
  });

  it('shows a live WebSocket connection in the connections view', async () => {
    const accountId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]!);
    const key = await api(server, 'POST', `/admin/accounts/${accountId}/api-keys`, { name: 'ws-test' });
    expect(key.status).toBe(201);
    ws = await WsTestClient.connect(server.wsUrl);
    await ws.authenticate(key.body.token);
    await ws.subscribe(['BID_REQUEST']);

    await page.getByRole('link', { name: 'Connections', exact: true }).click();
    const row = page.locator('#connections tbody tr', { hasText: 'Acme Tickets' });
    await row.locator('.key').waitFor();
    expect(await row.locator('a').first().getAttribute('title')).toBe(accountId);
    expect(await row.textContent()).toContain('BID_REQUEST');
    // The key by its name and prefix, not its UUID.
    expect(await row.locator('.key').textContent()).toBe(`ws-test ${key.body.token.slice(0, (await api(server, 'GET', `/admin/api-keys/${key.body.key_id}`)).body.token_prefix.length)}…`);
    expect(await row.textContent()).not.toContain(key.body.key_id);
    expect(await page.locator('#connections').textContent()).toContain('1 connection');
  });

  it('refreshes the connections view on its own (a closed connection disappears)', async () => {
    await ws!.close();
    ws = undefined;
    // No reload and no click: the 5 s auto refresh brings the empty list.
    await page.getByText('No live connections.').waitFor({ timeout: 20_000 });
  });

  it('renders an account name containing markup as text (no element is created)', async () => {
    const evil = '<img src=x onerror="window.__xss=1">';
    const created = await api(server, 'POST', '/admin/accounts', { name: evil });
    expect(created.status).toBe(201);
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    const cell = page.locator('#accounts tbody tr a.strong', { hasText: evil });
    await cell.waitFor();
    expect(await cell.textContent()).toBe(evil);
    expect(await page.locator('#accounts img').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);
    // The account page and its header too.
    await cell.click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    expect(await page.locator('#view h1').textContent()).toContain(evil);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('deletes an account after confirmation', async () => {
    await page.getByRole('button', { name: 'Delete account' }).click();
    await page.getByRole('heading', { name: /^Accounts \(/ }).waitFor();
    await page.getByRole('status').filter({ hasText: 'deleted' }).waitFor();
    const { body } = await api(server, 'GET', '/admin/accounts');
    expect(body.accounts.map((a: { name: string }) => a.name)).toEqual(['Acme Tickets']);
    expect(await page.locator('#accounts tbody tr').count()).toBe(1);
  });

  it('has a clean layout (screenshot) and sign out forgets the token', async () => {
    await page.locator('#accounts tbody tr', { hasText: 'Acme Tickets' }).getByRole('link', { name: 'Open' }).click();
    await page.getByRole('heading', { name: 'Webhook deliveries' }).waitFor();
    await page.locator('#keys tbody tr').first().waitFor();
    await page.locator('#webhooks tbody tr').first().waitFor();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#signin').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#view').textContent()).toBe('');
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
