/**
 * The browser bundle (scripts/build-browser.mjs) in real Chromium (playwright-core driving
 * Debian's /usr/bin/chromium): the example page connects with the platform WebSocket and
 * receives events published to the real server.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

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
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  server = await startTestServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
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
