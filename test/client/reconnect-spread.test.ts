/**
 * Reconnect timing of the SDK (scripted sockets, fake timers: no wall-clock assertions).
 * - After a 1001 (a node draining, SPEC §5), thousands of clients must not come back in the
 *   same instant: each waits a uniformly random delay (full jitter) before reconnecting.
 * - A transport that cannot exist in this runtime (no WebSocket, `ws` not installed) is fatal
 *   at once, not retried forever; other factory failures are retried.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import { TpxConnectionError } from '../../packages/client/src/errors.js';
import type { ReconnectingInfo } from '../../packages/client/src/types.js';
import { fakeFactory } from './helpers/fake-socket.js';

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());
const tick = () => vi.advanceTimersByTimeAsync(0);

describe('reconnect after 1001 (server draining)', () => {
  it('400 clients dropped in the same instant spread their reconnects over the first backoff window', async () => {
    const N = 400;
    const delays: number[] = [];
    const clients: TpxClient[] = [];
    const sockets: Array<ReturnType<typeof fakeFactory>> = [];
    for (let i = 0; i < N; i++) {
      const f = fakeFactory();
      const client = new TpxClient({ url: 'ws://fake/ws', token: 'tp_live_x', webSocketFactory: f.factory });
      client.on('reconnecting', (info: ReconnectingInfo) => void delays.push(info.delayMs));
      void client.connect();
      await tick();
      f.last().handshake({ last_seq: 0 });
      clients.push(client);
      sockets.push(f);
    }
    // Stable connections (the backoff resets after stableAfterMs), then the node drains.
    await vi.advanceTimersByTimeAsync(10_001);
    for (const f of sockets) f.last().drop(1001, 'server shutting down');
    expect(delays).toHaveLength(N);
    // Full jitter over [0, 1 s): every 100 ms slice gets between a third and three times its share.
    const buckets = new Array<number>(10).fill(0);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(1_000);
      buckets[Math.floor(d / 100)]!++;
    }
    for (const b of buckets) {
      expect(b).toBeGreaterThan(N / 10 / 3);
      expect(b).toBeLessThan((N / 10) * 3);
    }
    expect(new Set(delays).size).toBeGreaterThan(N / 2);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('the reconnect waits for its delay: nothing is opened before it, one socket after it', async () => {
    const f = fakeFactory();
    const client = new TpxClient({ url: 'ws://fake/ws', token: 'tp_live_x', webSocketFactory: f.factory, reconnect: { random: () => 0.5 } });
    const infos: ReconnectingInfo[] = [];
    client.on('reconnecting', (i) => void infos.push(i));
    void client.connect();
    await tick();
    f.last().handshake({ last_seq: 0 });
    f.last().drop(1001);
    expect(infos).toMatchObject([{ attempt: 1, delayMs: 500, closeCode: 1001 }]);
    await vi.advanceTimersByTimeAsync(499);
    expect(f.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.sockets).toHaveLength(2);
    await client.close();
  });
});

describe('transport failures', () => {
  it('a fatal factory error (no WebSocket implementation) stops the client at once', async () => {
    const noWs = new TpxConnectionError('NO_WEBSOCKET', 'run `npm install ws`', { fatal: true });
    let calls = 0;
    const client = new TpxClient({
      url: 'ws://fake/ws',
      token: 'tp_live_x',
      webSocketFactory: () => {
        calls++;
        throw noWs;
      },
    });
    const errors: unknown[] = [];
    client.on('error', (e) => void errors.push(e));
    await expect(client.connect()).rejects.toBe(noWs);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(1);
    expect(errors).toEqual([noWs]);
    expect(client.state).toBe('closed');
  });

  it('any other factory failure is retried', async () => {
    let calls = 0;
    const client = new TpxClient({
      url: 'ws://fake/ws',
      token: 'tp_live_x',
      webSocketFactory: () => {
        calls++;
        throw new Error('EMFILE');
      },
    });
    void client.connect();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(client.state).toBe('reconnecting');
    await client.close();
  });
});
