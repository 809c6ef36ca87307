/**
 * Disconnect one connection from the console (the gateway engineer's
 * `POST /admin/connections/:connection_id/disconnect`, issue 12). Fails until that endpoint lands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { openConsole, UI_TIMEOUT, type ConsolePage } from './browser.js';

let server: TestServer;
let ui: ConsolePage;

beforeAll(async () => {
  server = await startTestServer();
  ui = await openConsole(server);
}, 60_000);

afterAll(async () => {
  await ui?.close();
  await stopAll();
});

describe('disconnect a connection', () => {
  it('closes exactly the chosen connection; the other one of the same key stays', async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'Hooli' }, { name: 'edge' });
    const doomed = await WsTestClient.connect(server.wsUrl);
    await doomed.authenticate(token);
    await doomed.subscribe(['BID_REQUEST']);
    const kept = await WsTestClient.connect(server.wsUrl);
    await kept.authenticate(token);
    await kept.subscribe(['PAYMENT_FAILED']);

    const { page } = ui;
    await page.goto(`${server.url}/console#/connections`);
    const rows = page.locator('#connections tbody tr', { hasText: 'Hooli' });
    await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT }).toBe(2);
    await rows.filter({ hasText: 'BID_REQUEST' }).getByRole('button', { name: 'Disconnect' }).click();
    await page.getByRole('status').filter({ hasText: 'Connection closed.' }).waitFor();
    const closed = await doomed.waitClosed(5000);
    expect(closed.code).toBeGreaterThanOrEqual(1000);
    await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT }).toBe(1);
    expect(await rows.textContent()).toContain('PAYMENT_FAILED');
    expect(kept.isOpen).toBe(true);
    expect(accountId).toBeTruthy();
    await kept.close();
    expect(ui.errors).toEqual([]);
  });
});
