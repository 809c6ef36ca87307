/**
 * The SDK's keepalive against a server that pings less often than the client assumes
 * (TPX_PING_INTERVAL_MS above the client's pingIntervalMs: the review saw default clients
 * reconnect every 40 s against a 60 s server). Scaled down: the server pings every 2 s, the
 * client assumes 400 ms + 300 ms grace.
 * - WebSocket: at the deadline the client asks (`ping` → `pong`) instead of dropping, then learns
 *   the 2 s cadence from the server's pings: no reconnect at all.
 * - SSE cannot ask: a stream that times out before its first ping doubles the interval it
 *   assumes, so after a few reconnects it knows the cadence and stays connected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import { createAccountWithKey, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '2000', TPX_PONG_TIMEOUT_MS: '2000' } });
}, 60_000);
afterAll(() => stopAll());

function client(token: string, transport: 'websocket' | 'sse') {
  const c = new TpxClient({ url: server.url, token, transport, pingIntervalMs: 400, keepaliveGraceMs: 300, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
  const drops: number[] = [];
  c.on('reconnecting', () => void drops.push(Date.now()));
  return { c, drops };
}

describe('keepalive learns the server ping cadence', () => {
  it('WebSocket: no reconnect against a server pinging 5× less often than assumed', async () => {
    const { token } = await createAccountWithKey(server);
    const { c, drops } = client(token, 'websocket');
    try {
      await c.connect();
      await sleep(7_000); // three server pings, ten times the assumed silence
      expect(drops).toEqual([]);
      expect(c.state).toBe('open');
    } finally {
      await c.close();
    }
  }, 30_000);

  it('SSE: a few reconnects at most, then the stream stays', async () => {
    const { token } = await createAccountWithKey(server);
    const { c, drops } = client(token, 'sse');
    try {
      await c.connect();
      const start = Date.now();
      // Settled: 4.5 s (two server pings) without a reconnect.
      await waitFor(() => Date.now() - (drops.at(-1) ?? start) > 4_500, 25_000, 'a stream that stays');
      expect(drops.length).toBeLessThanOrEqual(4); // 400 → 800 → 1600 → 3200 ms assumed
      expect(c.state).toBe('open');
    } finally {
      await c.close();
    }
  }, 40_000);
});
