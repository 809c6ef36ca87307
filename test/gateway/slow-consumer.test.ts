/**
 * Slow-consumer policy (SPEC §2.9, 4009): a connection that stops reading is cut off once its
 * outbound buffer passes TPX_MAX_OUTBOUND_BYTES, so server memory stays bounded, and other
 * connections of the same account are not held back.
 */
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publishBatch, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, isEventFrame, WsTestClient } from '../helpers/ws-client.js';

afterAll(() => stopAll());
afterEach(() => closeAllClients());

function closesWith(metrics: string, code: number): number {
  const m = new RegExp(`^tpx_ws_closes_total\\{code="${code}"\\} (\\d+)`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

/**
 * ~8 KiB per event (unknown payload fields pass through), in batches of 20: far beyond what the
 * kernel buffers of a paused reader absorb, each batch well under the outbound limit.
 */
async function publishPadded(server: TestServer, accountId: string, total: number): Promise<void> {
  const padding = 'x'.repeat(8192);
  for (let i = 0; i < total / 20; i++) {
    await publishBatch(server, Array.from({ length: 20 }, () => {
      const body = eventBody('BID_REQUEST', [accountId]);
      (body.payload as Record<string, unknown>).padding = padding;
      return body;
    }));
  }
}

/** Stop (or resume) reading on a test client's socket. */
function socketOf(client: WsTestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

describe('slow consumer', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: '1048576' } });
  });

  it('a connection that stops reading is closed (4009) while a reading one receives every event', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const slow = await WsTestClient.connect(server.wsUrl);
    await slow.authenticate(token);
    await slow.subscribe(['ALL']);
    const fast = await WsTestClient.connect(server.wsUrl);
    await fast.authenticate(token);
    await fast.subscribe(['ALL']);

    // Stop reading on the slow client: the kernel buffers fill, then the server's buffer grows.
    socketOf(slow).pause();
    const total = 3000; // ~24 MiB
    await publishPadded(server, accountId, total);
    await waitFor(async () => closesWith((await api(server, 'GET', '/metrics', undefined, { token: null })).text, 4009) >= 1, 15_000, 'a 4009 close');
    await waitFor(() => fast.history.filter(isEventFrame).length >= total, 20_000, `all ${total} events on the fast client`);
    const seqs = fast.history.filter(isEventFrame).map((f) => f.seq as number);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(fast.isOpen).toBe(true);

    // The slow connection is gone from the server (its buffer released), the fast one remains.
    await waitFor(async () => {
      const res = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
      return res.body.connections.length === 1 ? res : null;
    }, 10_000, 'slow connection removed');
    socketOf(slow).resume();
    const closed = await slow.waitClosed(10_000);
    expect([4009, 1006]).toContain(closed.code);
  });

  it('a keepalive close of a connection holding a large backlog cuts it in about a second, not after the 30 s close handshake', async () => {
    // Outbound limit far above the backlog, so the keepalive (4003) is what closes it.
    const ka = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(256 * 1024 * 1024), TPX_PING_INTERVAL_MS: '1000', TPX_PONG_TIMEOUT_MS: '1000' } });
    const { accountId, token } = await createAccountWithKey(ka);
    const stalled = await WsTestClient.connect(ka.wsUrl);
    await stalled.authenticate(token);
    await stalled.subscribe(['ALL']);
    socketOf(stalled).pause();
    await publishPadded(ka, accountId, 3000);
    await waitFor(async () => closesWith((await api(ka, 'GET', '/metrics', undefined, { token: null })).text, 4003) >= 1, 15_000, 'a 4003 close');
    // Its close frame sits behind megabytes the peer does not read: the server drops the socket
    // (and the queued frames) instead of holding them until ws gives up on the handshake at 30 s.
    await waitFor(async () => {
      const res = await api(ka, 'GET', `/admin/connections?account_id=${accountId}`);
      return res.body.connections.length === 0 ? res : null;
    }, 10_000, 'the stalled connection removed');
    socketOf(stalled).resume();
    const closed = await stalled.waitClosed(20_000);
    expect([4003, 1006]).toContain(closed.code);
  });
});
