/**
 * The browser bundle (scripts/build-browser.mjs) in real Chromium (playwright-core driving
 * Debian's /usr/bin/chromium): the example page connects with the platform WebSocket and
 * receives events published to the real server.
 *
 * SSE (SPEC §2.10) from a page on another origin:
 * - the SDK bundle with `transport: 'sse'` (fetch streaming with the X-API-Key header, CORS);
 * - the browser's own EventSource with the key as `?api_key=` (it cannot send headers): events
 *   with their ids, an automatic reconnect resuming by Last-Event-ID with nothing lost or doubled,
 *   and a revoked key ending in an `error` event, then a 403 that stops EventSource for good.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody, samplePayload } from '../helpers/payloads.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let server: TestServer;
let web: Server;
let webUrl: string;
let browser: Browser;
let outDir: string;
let bundle: string;

beforeAll(async () => {
  outDir = mkdtempSync(path.join(tmpdir(), 'tpx-browser-'));
  // @ts-expect-error plain .mjs build script without types
  const { buildBrowser } = await import('../../scripts/build-browser.mjs');
  const built = await buildBrowser({ outfile: path.join(outDir, 'tpx-client.js') });
  bundle = readFileSync(built.outfile, 'utf8');
  const page = readFileSync(path.join(REPO_ROOT, 'examples', 'browser', 'index.html'), 'utf8');
  web = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    } else if (url.pathname === '/tpx-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else if (url.pathname === '/blank') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>blank</title>');
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  server = await startTestServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((r) => (web ? web.close(() => r()) : r()));
  await stopAll();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('browser build', () => {
  it('does not contain the ws package or zod, and is an ES module', () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    expect(bundle).not.toMatch(/node_modules\/ws\//);
    expect(bundle).not.toMatch(/from ["']ws["']|require\(["']ws["']\)/);
    expect(bundle).not.toMatch(/zod/i);
    expect(bundle).toMatch(/export\s*\{/);
  });

  it('receives events in real Chromium with the platform WebSocket', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${webUrl}/?url=${encodeURIComponent(server.wsUrl)}&token=${encodeURIComponent(token)}&afterSeq=0`);
    await page.waitForFunction(() => (window as any).tpxClient?.state === 'open', undefined, { timeout: 15_000 });
    const types = ['BID_REQUEST', 'AUCTION_RESULT', 'PAYMENT_SETTLED'] as const;
    const ids: string[] = [];
    for (const type of types) ids.push((await publish(server, { msg_type: type, account_ids: [accountId], payload: samplePayload(type) })).msg_id);
    await page.waitForFunction((n) => (window as any).tpxEvents.length >= n, ids.length, { timeout: 15_000 });
    const events = (await page.evaluate(() => (window as any).tpxEvents)) as Array<{ msg_type: string; msg_id: string; seq: number; via: string }>;
    expect(events.map((e) => e.msg_id)).toEqual(ids);
    expect(events.map((e) => e.msg_type)).toEqual([...types]);
    expect(events.every((e, i) => e.via === 'websocket' && (i === 0 || e.seq > events[i - 1]!.seq))).toBe(true);
    expect(await page.locator('#log').textContent()).toContain('auction started');
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});

describe('SSE in Chromium', () => {
  it('the SDK with transport "sse" receives events cross-origin (fetch streaming, X-API-Key, CORS)', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${webUrl}/?url=${encodeURIComponent(server.url)}&token=${encodeURIComponent(token)}&afterSeq=0&transport=sse`);
    await page.waitForFunction(() => (window as any).tpxClient?.state === 'open', undefined, { timeout: 15_000 });
    const ids: string[] = [];
    for (const type of ['BID_REQUEST', 'AUCTION_RESULT', 'PAYMENT_SETTLED'] as const) {
      ids.push((await publish(server, { msg_type: type, account_ids: [accountId], payload: samplePayload(type) })).msg_id);
    }
    await page.waitForFunction((n) => (window as any).tpxEvents.length >= n, ids.length, { timeout: 15_000 });
    const events = (await page.evaluate(() => (window as any).tpxEvents)) as Array<{ msg_id: string; seq: number; via: string }>;
    expect(events.map((e) => e.msg_id)).toEqual(ids);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(events.every((e) => e.via === 'sse')).toBe(true);
    expect(await page.evaluate(() => (window as any).tpxClient.accountId)).toBe(accountId);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('EventSource with ?api_key=: events with ids, a reconnect resumed by Last-Event-ID, a revoked key stopped for good', { timeout: 60_000 }, async () => {
    const { accountId, key, token } = await createAccountWithKey(server);
    const page = await browser.newPage();
    await page.goto(`${webUrl}/blank`);
    const streamUrl = `${server.url}/v1/events/stream?rooms=ALL&api_key=${encodeURIComponent(token)}`;
    await page.evaluate((url) => {
      const w = window as any;
      w.got = [];
      w.errors = 0;
      const es = new EventSource(url);
      w.es = es;
      for (const type of ['subscribed', 'error', 'gap', 'BID_REQUEST', 'PAYMENT_SETTLED']) {
        es.addEventListener(type, (ev) => w.got.push({ type, id: (ev as MessageEvent).lastEventId, data: JSON.parse((ev as MessageEvent).data) }));
      }
      es.onerror = () => void w.errors++;
    }, streamUrl);
    const got = () => page.evaluate(() => (window as any).got) as Promise<Array<{ type: string; id: string; data: any }>>;
    await waitFor(async () => (await got()).length === 1, 10_000, 'subscribed');
    const first = [await publish(server, eventBody('BID_REQUEST', [accountId])), await publish(server, eventBody('PAYMENT_SETTLED', [accountId]))];
    await waitFor(async () => (await got()).length === 3, 10_000, 'two events');

    // The operator ends the stream; events published meanwhile come after EventSource's own reconnect.
    const list = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
    expect(list.body.connections).toHaveLength(1);
    expect(list.body.connections[0].transport).toBe('sse');
    await api(server, 'POST', `/admin/connections/${list.body.connections[0].connection_id}/disconnect`);
    await waitFor(async () => (await page.evaluate(() => (window as any).errors)) >= 1, 5000, 'the stream ended');
    const missed = [await publish(server, eventBody('BID_REQUEST', [accountId])), await publish(server, eventBody('BID_REQUEST', [accountId]))];
    await waitFor(async () => (await got()).length === 6, 15_000, 'resubscribed and the two missed events');
    const all = await got();
    expect(all.map((m) => [m.type, m.id])).toEqual([
      ['subscribed', '0'],
      ['BID_REQUEST', '1'],
      ['PAYMENT_SETTLED', '2'],
      ['subscribed', '2'],
      ['BID_REQUEST', '3'],
      ['BID_REQUEST', '4'],
    ]);
    expect(all[3]!.data.payload).toMatchObject({ resumed_from: 2, last_seq: 4 });
    expect(all.filter((m) => m.type !== 'subscribed').map((m) => m.data.msg_id)).toEqual([...first, ...missed].map((r) => r.msg_id));

    // Revoked: an error event with the code, the stream ends, the reconnect gets 403: EventSource stops.
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    await waitFor(async () => (await got()).some((m) => m.type === 'error'), 5000, 'the error event');
    expect((await got()).find((m) => m.type === 'error')!.data.payload.code).toBe('AUTH_API_KEY_INACTIVE');
    await waitFor(async () => (await page.evaluate(() => (window as any).es.readyState)) === 2, 15_000, 'EventSource closed for good');
    await page.close();
  });
});
