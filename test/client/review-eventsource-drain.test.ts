/**
 * Review (SPEC §2.10 "shutdown behave[s] as on the WebSocket", §5 drain, §2.9 1001 "clients should
 * reconnect"): a browser's own EventSource — a client §2.10 names — is cut with `: close 1001` at
 * the start of a drain and reconnects by itself a few seconds later. If that reconnect lands on the
 * node while it is still draining (one node restarting, or before the load balancer noticed), the
 * node answers 503, and EventSource treats any non-200 answer as final (WHATWG: "fail the
 * connection"): it never reconnects again, not even once the server is back.
 * Expected: the stream survives a deploy (e.g. the 1001 message sets `retry:` beyond the drain, or
 * a draining node refuses in a way EventSource retries).
 * Real Chromium, a real server stopped with SIGTERM and started again on the same port.
 */
import { createServer as createNetServer } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventBody } from '../helpers/payloads.js';
import { createAccountWithKey, publish, sleep, startTestServer, stopAll } from '../helpers/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
  await stopAll();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('browser EventSource across a drain', () => {
  it('keeps (or regains) its stream when the server drains and comes back', async () => {
    const port = await freePort();
    const env = { TPX_PORT: String(port), TPX_SHUTDOWN_DRAIN_MS: '8000' };
    const server = await startTestServer({ env });
    const { accountId, token } = await createAccountWithKey(server);
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${server.url}/console`); // any page of the server's origin
    await page.evaluate(
      ({ token }) => {
        const w = window as unknown as { log: string[]; es: EventSource };
        w.log = [];
        const es = new EventSource(`/v1/events/stream?rooms=ALL&api_key=${encodeURIComponent(token)}`);
        w.es = es;
        es.onopen = () => w.log.push('open');
        es.onerror = () => w.log.push(`error readyState=${es.readyState}`);
        es.addEventListener('subscribed', () => w.log.push('subscribed'));
        es.addEventListener('BID_REQUEST', (m) => w.log.push(`BID_REQUEST id=${(m as MessageEvent).lastEventId}`));
      },
      { token },
    );
    await page.waitForFunction(() => (window as unknown as { log: string[] }).log.includes('subscribed'), undefined, { timeout: 10_000 });
    // Thirty WebSockets opened after it: the drain closes the EventSource first, then spreads the rest over 8 s.
    const sockets = await Promise.all(
      Array.from({ length: 30 }, () => {
        const ws = new WebSocket(server.wsUrl);
        ws.on('error', () => undefined);
        return new Promise<WebSocket>((resolve) => ws.once('open', () => resolve(ws)));
      }),
    );
    const exited = server.exited();
    server.proc.kill('SIGTERM');
    await exited;
    for (const ws of sockets) ws.terminate();
    // Back on the same port, same data: a deploy.
    await server.restart(env);
    await sleep(1_000);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    await sleep(8_000); // EventSource's own reconnect delay is about 3 s
    const { log, readyState } = await page.evaluate(() => ({ log: (window as unknown as { log: string[] }).log, readyState: (window as unknown as { es: EventSource }).es.readyState }));
    expect({ readyState, received: log.filter((l) => l.startsWith('BID_REQUEST')).length }, JSON.stringify(log)).toEqual({ readyState: 1, received: 1 });
  }, 90_000);
});
