/**
 * A peer that stops reading and then half-closes (sends its FIN, keeps its socket) while the
 * server holds a backlog is never released: ws-transport.ts peerEnded() marks the transport
 * `ended` and calls socket.end() (which waits for the backlog to drain, i.e. forever) without
 * arming the close timer that sendClose() arms; afterwards every way out goes through close() or
 * abort(), which return at once because `ended` is set, so neither the keepalive (4003), nor the
 * operator's disconnect, nor the 30 s closing-handshake timer ever cut it. The socket, its
 * backlog (up to TPX_MAX_OUTBOUND_BYTES) and the Connection stay for as long as the peer's
 * kernel acknowledges zero-window probes. (`ws` ended the socket too, but the old gateway's
 * keepalive terminate()d it whatever its state.)
 * Seen: still listed in /admin/connections 35 s after the FIN, with a 1.5 s pong timeout.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publishBatch, startTestServer, stopAll, sleep, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { RawClient } from '../helpers/raw-ws.js';

afterAll(() => stopAll());

describe('a half-open peer holding a backlog', () => {
  let server: TestServer;
  it('starts', async () => {
    server = await startTestServer({
      env: { TPX_MAX_OUTBOUND_BYTES: String(64 * 1024 * 1024), TPX_PING_INTERVAL_MS: '500', TPX_PONG_TIMEOUT_MS: '1500', TPX_MAX_EVENT_BYTES: '262144' },
    });
  });

  /** A subscribed raw client that stops reading while ~24 MiB are queued for it (under the 64 MiB limit: no 4009). */
  async function backlogged(): Promise<{ c: RawClient; listed: () => Promise<number> }> {
    const { accountId, token } = await createAccountWithKey(server);
    const c = await RawClient.open(server.port);
    c.sendText(JSON.stringify({ msg_type: 'authenticate', payload: { token } }));
    await c.until(() => c.texts().some((m) => m.msg_type === 'authenticated'), 5000, 'authenticated');
    c.sendText(JSON.stringify({ msg_type: 'subscribe', payload: { rooms: ['ALL'] } }));
    await c.until(() => c.texts().some((m) => m.msg_type === 'subscribed'), 5000, 'subscribed');
    c.socket.pause();
    const padding = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 6; i++) {
      const res = await publishBatch(server, Array.from({ length: 20 }, () => {
        const body = eventBody('BID_REQUEST', [accountId]);
        (body.payload as Record<string, unknown>).padding = padding;
        return body;
      }));
      expect(res.status).toBeLessThan(300);
    }
    const listed = async () => ((await api(server, 'GET', `/admin/connections?account_id=${accountId}`)).body.connections as unknown[]).length;
    expect(await listed()).toBe(1);
    return { c, listed };
  }

  async function gone(listed: () => Promise<number>, ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    let left = await listed();
    while (left > 0 && Date.now() < deadline) {
      await sleep(500);
      left = await listed();
    }
    return left;
  }

  it('control: without the FIN, the keepalive close (4003) cuts it within seconds', async () => {
    const { c, listed } = await backlogged();
    const left = await gone(listed, 15_000);
    c.destroy();
    expect(left).toBe(0);
  });

  it('is released (socket closed, connection gone) within the closing-handshake timeout after its FIN', { timeout: 90_000 }, async () => {
    const { c, listed } = await backlogged();
    // Half-close: our FIN, and still not reading.
    c.socket.end();
    // Whatever the mechanism (keepalive 4003 + cut, or the 30 s close timer), it must go.
    const left = await gone(listed, 35_000);
    c.destroy();
    expect(left).toBe(0);
  });
});
