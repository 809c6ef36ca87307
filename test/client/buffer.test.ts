/**
 * The SDK's queue of events waiting for slow handlers, against the real server:
 * - it survives a reconnect and the resume asks only for what comes after it (before: the resume
 *   point was the last PROCESSED seq, so every queued event was sent again and queued twice);
 * - it is bounded in bytes (before: only in events, 10 000 by default: 10 000 events of 200 KB
 *   could hold ~3 GiB); past the bound the connection is dropped and resumed once the handlers
 *   caught up, and every event is still handled once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import type { TpxEvent } from '../../packages/client/src/types.js';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(() => stopAll());

async function publishMany(accountId: string, n: number, extra: Record<string, unknown> = {}): Promise<void> {
  const events = Array.from({ length: n }, () => ({ msg_type: 'BID_REQUEST', account_ids: [accountId], payload: { ...samplePayload('BID_REQUEST'), ...extra } }));
  for (let i = 0; i < events.length; i += 100) {
    const res = await api(server, 'POST', '/v1/events/batch', { events: events.slice(i, i + 100) });
    expect(res.status).toBe(202);
  }
}

describe('SDK buffer of events waiting for handlers', () => {
  it('queued events are not sent again after a reconnect, and each is handled once', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const client = new TpxClient({ url: server.url, token, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const handled: TpxEvent[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    client.on('event', async (e) => {
      await gate;
      handled.push(e);
    });
    try {
      await client.connect();
      await publishMany(accountId, 300);
      await waitFor(() => client.stats.received === 300, 10_000, 'all 300 received while the handler is blocked');
      // The operator cuts the connection: the client reconnects with its queue intact.
      const conns = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
      expect((await api(server, 'POST', `/admin/connections/${conns.body.connections[0].connection_id}/disconnect`)).status).toBe(200);
      await waitFor(() => client.stats.connections === 2 && client.state === 'open', 10_000, 'the reconnect');
      release();
      await client.drain();
      await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
      await waitFor(() => handled.length === 301, 10_000, 'the event after the reconnect');
      expect(handled.map((e) => e.seq)).toEqual(Array.from({ length: 301 }, (_, i) => i + 1));
      expect(client.stats).toMatchObject({ received: 301, processed: 301, duplicates: 0 });
    } finally {
      await client.close();
    }
  }, 60_000);

  it('bounded in bytes: 40 events of ~200 KB for a slow handler never queue more than maxBufferedBytes', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const limit = 1024 * 1024;
    const client = new TpxClient({ url: server.url, token, maxBufferedBytes: limit, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const seqs: number[] = [];
    let peak = 0;
    const overflows: string[] = [];
    client.on('reconnecting', (i) => void overflows.push(i.error?.code ?? ''));
    client.on('event', async (e) => {
      peak = Math.max(peak, client.buffered.bytes);
      await new Promise((r) => setTimeout(r, 25));
      seqs.push(e.seq!);
    });
    try {
      await client.connect();
      await publishMany(accountId, 40, { blob: 'x'.repeat(200_000) });
      await waitFor(() => seqs.length === 40, 30_000, 'all 40 handled');
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(peak).toBeLessThanOrEqual(limit);
      expect(overflows).toContain('BUFFER_OVERFLOW');
      expect(client.stats.duplicates).toBe(0);
    } finally {
      await client.close();
    }
  }, 60_000);
});
