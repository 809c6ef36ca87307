/**
 * Graceful drain on SIGTERM (SPEC §5, issue 12 item 2), on a real server child process:
 * /readyz answers 503 at once, new WebSocket upgrades are refused with 503 and SSE streams end at
 * once with a `retry:` (EventSource gives up after a 503), the
 * 1001 closes of the open WebSockets (and the ends of the SSE streams) are spread over
 * TPX_SHUTDOWN_DRAIN_MS, a webhook attempt in flight when the signal came (a slow real receiver)
 * finishes and is recorded, the process exits 0, and after a restart that delivery is not sent
 * again. Timing assertions are coarse (spread across the window, no crowding in one tenth).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllSse, SseTestClient } from '../helpers/sse-client.js';
import { closeAllClients, connectAuthed, WsTestClient } from '../helpers/ws-client.js';
import { startReceiver } from '../webhooks/helpers.js';

afterAll(async () => {
  closeAllSse();
  await closeAllClients();
  await stopAll();
});

const DRAIN_MS = 2000;
const WEBSOCKETS = 24;
const STREAMS = 4;
/** The receiver answers the attempt this long after it arrived: it is in flight during the drain. */
const RECEIVER_DELAY_MS = 1500;

describe('graceful drain on SIGTERM', () => {
  it('readyz 503 at once, new connections 503, closes spread over the window, in-flight webhook finished and recorded, exit 0, no resend after restart', { timeout: 90_000 }, async () => {
    let arrivedAt = 0;
    const receiver = await startReceiver(() => {
      arrivedAt ||= Date.now();
      return { status: 200, delayMs: RECEIVER_DELAY_MS };
    });
    const server = await startTestServer({ env: { TPX_SHUTDOWN_DRAIN_MS: String(DRAIN_MS), TPX_WEBHOOK_TIMEOUT_MS: '10000' } });
    try {
      const hooked = await createAccountWithKey(server, { name: 'webhook' });
      const created = await api(server, 'POST', `/admin/accounts/${hooked.accountId}/webhooks`, { url: `${receiver.url}/hook` });
      expect(created.status).toBe(201);
      const { token } = await createAccountWithKey(server, { name: 'streams' });
      const sockets: WsTestClient[] = [];
      for (let i = 0; i < WEBSOCKETS; i++) sockets.push(await connectAuthed(server.wsUrl, token, ['ALL']));
      const streams: SseTestClient[] = [];
      for (let i = 0; i < STREAMS; i++) {
        const s = await SseTestClient.open(server, { token });
        await s.next();
        streams.push(s);
      }
      const wsClosed = sockets.map((c) => c.closed.then((info) => ({ ...info, at: Date.now() })));

      const { msg_id } = await publish(server, eventBody('PAYMENT_SETTLED', [hooked.accountId]));
      await waitFor(() => arrivedAt > 0, 10_000, 'the webhook attempt in flight');

      const signalledAt = Date.now();
      const exited = server.stop('SIGTERM');
      // /readyz turns 503 as soon as the signal is handled (fresh connections, no keep-alive).
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 503, 1000, '/readyz 503', 10);
      const readyzAt = Date.now();
      const upgrade = await WsTestClient.connect(server.wsUrl).then(
        () => 'connected',
        (err: Error) => err.message,
      );
      expect(upgrade).toMatch(/unexpected HTTP 503/);
      // A stream request is answered by a stream that ends at once, never a 503 (EventSource gives
      // up for good on any non-200): a jittered `retry:` and the drain's close comment.
      const refusedStream = await SseTestClient.open(server, { token });
      await refusedStream.ended(2000);
      expect(refusedStream.status).toBe(200);
      expect(refusedStream.messages).toEqual([]);
      expect(refusedStream.raw).toMatch(/^retry: (\d+)\n\n: close 1001 server shutting down\n\n$/);
      expect(Number(/^retry: (\d+)/.exec(refusedStream.raw)![1])).toBeGreaterThanOrEqual(1000);
      // Plain HTTP requests are still served during the drain (publishers are not cut off).
      expect((await api(server, 'GET', '/healthz', undefined, { token: null })).status).toBe(200);

      const closes = await Promise.all(wsClosed);
      const ends = await Promise.all(streams.map((s) => s.ended(DRAIN_MS + 5000)));
      const exit = await exited;
      expect(exit, server.output().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(closes.every((c) => c.code === 1001)).toBe(true);
      for (const s of streams) expect(s.comments).toContain('close 1001 server shutting down');
      expect(readyzAt - signalledAt).toBeLessThan(DRAIN_MS / 2);

      // Spread: first and last at least 60 % of the window apart, no tenth holding over a quarter.
      const times = [...closes.map((c) => c.at), ...ends].sort((a, b) => a - b);
      const n = times.length;
      expect(times.at(-1)! - times[0]!, `close times ${times.map((t) => t - signalledAt).join(',')}`).toBeGreaterThanOrEqual(0.6 * DRAIN_MS);
      const tenths = new Array<number>(10).fill(0);
      for (const t of times) tenths[Math.min(9, Math.floor(((t - times[0]!) / DRAIN_MS) * 10))]!++;
      expect(Math.max(...tenths), `closes per tenth ${tenths.join(',')}`).toBeLessThanOrEqual(Math.ceil(n / 4));

      // The attempt in flight was answered during the drain, and recorded before the exit.
      expect(receiver.received).toHaveLength(1);
      expect(receiver.received[0]!.json.msg_id).toBe(msg_id);
      await server.restart();
      const deliveries = await api(server, 'GET', `/admin/deliveries?account_id=${hooked.accountId}`);
      expect(deliveries.body.deliveries).toHaveLength(1);
      expect(deliveries.body.deliveries[0]).toMatchObject({ msg_id, status: 'succeeded', attempt_count: 1, last_status_code: 200 });
      // Not sent again by the restarted server.
      await sleep(1500);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});
