/**
 * The SDK against the real server (test/helpers/server.ts): resume across server restart,
 * kill -9 and random TCP cuts (every event processed exactly once, in seq order), 4001 is
 * fatal, typed events over the wire.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient, type TpxClientOptions } from '../../packages/client/src/client.js';
import { TpxAuthError } from '../../packages/client/src/errors.js';
import type { ClosedInfo, TpxEvent } from '../../packages/client/src/types.js';
import { api, createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

let server: TestServer;
const clients: TpxClient[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await stopAll();
});

const TYPES = ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'PAYMENT_CHARGED', 'PAYMENT_SETTLED'] as const;

function makeClient(opts: Partial<TpxClientOptions> & { url: string; token: string }): TpxClient {
  const client = new TpxClient({ reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...opts });
  clients.push(client);
  return client;
}

/** Records processed events and checks exactly-once/in-order invariants. */
function recorder(client: TpxClient) {
  const processed: TpxEvent[] = [];
  client.on('event', async (e) => {
    processed.push(e);
    if (processed.length % 37 === 0) await sleep(1); // an async handler now and then
  });
  return {
    processed,
    check(expectedIds: string[]) {
      const ids = processed.map((e) => e.msg_id);
      const seqs = processed.map((e) => e.seq!);
      const unique = new Set(ids);
      const expected = new Set(expectedIds);
      const lost = expectedIds.filter((id) => !unique.has(id));
      const extra = ids.filter((id) => !expected.has(id));
      return {
        sent: expectedIds.length,
        processed: processed.length,
        duplicates: ids.length - unique.size,
        lost: lost.length,
        extra: extra.length,
        inSeqOrder: seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
        inPublishOrder: ids.join(',') === expectedIds.join(','),
      };
    },
  };
}

const publishErrors = new Set<string>();

/** Publish with a caller-chosen msg_id (idempotency key): retried until accepted, so a publish racing a restart is never lost nor doubled. */
async function publishReliably(accountId: string, i: number, msgId: string): Promise<void> {
  const type = TYPES[i % TYPES.length]!;
  for (;;) {
    try {
      await publish(server, { msg_type: type, account_ids: [accountId], payload: { ...samplePayload(type), n: i }, msg_id: msgId });
      return;
    } catch (err) {
      const msg = String((err as Error).message).slice(0, 300);
      if (!publishErrors.has(msg)) {
        publishErrors.add(msg);
        console.log('[publish retry]', msg);
      }
      await sleep(25);
    }
  }
}

function publisher(accountId: string, count: number, pauseMs: number) {
  const ids: string[] = [];
  let published = 0;
  const done = (async () => {
    for (let i = 0; i < count; i++) {
      const id = randomUUID();
      ids.push(id);
      await publishReliably(accountId, i, id);
      published++;
      if (pauseMs > 0) await sleep(pauseMs);
    }
  })();
  return { ids, done, published: () => published };
}

describe('TpxClient against the real server', () => {
  it('receives typed events in seq order over the wire (Node, `ws` transport)', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const client = makeClient({ url: server.wsUrl, token, rooms: ['BID_REQUEST', 'PAYMENT_CHARGED'] });
    const bidRequests: string[] = [];
    client.on('BID_REQUEST', (e) => void bidRequests.push(e.payload.conversation_id));
    const rec = recorder(client);
    await client.connect();
    expect(client.accountId).toBe(accountId);
    const pub = publisher(accountId, 10, 0);
    await pub.done;
    // Only BID_REQUEST (i%5==0) and PAYMENT_CHARGED (i%5==3) are subscribed.
    const expected = pub.ids.filter((_, i) => i % 5 === 0 || i % 5 === 3);
    await waitFor(() => rec.processed.length >= expected.length, 10_000, 'events');
    await client.drain();
    expect(rec.check(expected)).toMatchObject({ duplicates: 0, lost: 0, extra: 0, inSeqOrder: true, inPublishOrder: true });
    expect(bidRequests).toHaveLength(2);
    expect(rec.processed[0]).toMatchObject({ msg_type: 'BID_REQUEST', via: 'websocket' });
    expect(typeof rec.processed[0]!.sent_at).toBe('number');
  });

  it('an unknown token is a fatal TpxAuthError carrying the server code; never retried', async () => {
    const client = makeClient({ url: server.wsUrl, token: 'tp_live_doesnotexist' });
    let connecting = 0;
    client.on('connecting', () => void connecting++);
    await expect(client.connect()).rejects.toMatchObject({ kind: 'auth', code: 'AUTH_INVALID_API_KEY', fatal: true });
    expect(client.state).toBe('closed');
    await sleep(300);
    expect(connecting).toBe(1);
    expect(client.state).toBe('closed');
  });

  it('key deactivated mid-stream: 4001 stops the client for good', async () => {
    const { token, key } = await createAccountWithKey(server);
    const client = makeClient({ url: server.wsUrl, token });
    let connecting = 0;
    client.on('connecting', () => void connecting++);
    const closed = new Promise<ClosedInfo>((r) => client.on('closed', r));
    await client.connect();
    const res = await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(res.status).toBeLessThan(300);
    const info = await closed;
    expect(info.reason).toBe('fatal');
    expect(info.closeCode).toBe(4001);
    expect(info.error).toBeInstanceOf(TpxAuthError);
    expect((info.error as TpxAuthError).code).toMatch(/^AUTH_/);
    await sleep(300);
    expect(connecting).toBe(1);
    expect(client.state).toBe('closed');
  });

  it('resumes across a server restart (SIGTERM → 1001) mid-stream: nothing lost or doubled', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = makeClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, token, afterSeq: 0 });
    const closeCodes: Array<number | undefined> = [];
    client.on('reconnecting', (i) => void closeCodes.push(i.closeCode));
    const rec = recorder(client);
    await client.connect();
    const pub = publisher(accountId, 200, 2);
    await waitFor(() => pub.published() >= 60 && rec.processed.length >= 30, 20_000, 'stream under way');
    await server.restart();
    proxy.setTarget(server.port);
    await pub.done;
    await waitFor(() => rec.processed.length >= 200, 30_000, 'all events after restart');
    await client.drain();
    const result = rec.check(pub.ids);
    console.log('[client restart test]', JSON.stringify({ ...result, reconnects: client.stats.reconnects, skipped: client.stats.duplicates }));
    expect(result).toMatchObject({ sent: 200, processed: 200, duplicates: 0, lost: 0, extra: 0, inSeqOrder: true, inPublishOrder: true });
    expect(closeCodes).toContain(1001);
  });

  it('resumes after kill -9 of the server mid-stream: nothing lost or doubled', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = makeClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, token, afterSeq: 0 });
    const rec = recorder(client);
    await client.connect();
    const pub = publisher(accountId, 200, 2);
    await waitFor(() => pub.published() >= 60 && rec.processed.length >= 30, 20_000, 'stream under way');
    await server.kill9();
    await server.restart();
    proxy.setTarget(server.port);
    await pub.done;
    await waitFor(() => rec.processed.length >= 200, 30_000, 'all events after kill -9');
    await client.drain();
    const result = rec.check(pub.ids);
    console.log('[client kill -9 test]', JSON.stringify({ ...result, reconnects: client.stats.reconnects, skipped: client.stats.duplicates }));
    expect(result).toMatchObject({ sent: 200, processed: 200, duplicates: 0, lost: 0, extra: 0, inSeqOrder: true, inPublishOrder: true });
    expect(client.stats.reconnects).toBeGreaterThanOrEqual(1);
  });

  it('a TCP proxy cutting connections at random moments while events flow: every event exactly once, in seq order', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = makeClient({ url: `ws://127.0.0.1:${proxy.port}/ws`, token, afterSeq: 0, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    const rec = recorder(client);
    await client.connect();
    const N = 600;
    const pub = publisher(accountId, N, 1);
    const chaos = proxy.chaos({ maxCuts: 15, minIntervalMs: 40, maxIntervalMs: 300, maxDurationMs: 20_000 });
    await pub.done;
    await waitFor(() => proxy.cuts >= 3, 20_000, 'at least 3 cuts'); // chaos keeps cutting meanwhile
    proxy.stopChaos();
    await chaos;
    await waitFor(() => rec.processed.length >= N, 30_000, 'all events after the cuts');
    await client.drain();
    const result = rec.check(pub.ids);
    console.log(
      '[client cut test]',
      JSON.stringify({ ...result, cuts: proxy.cuts, connections: proxy.accepted, reconnects: client.stats.reconnects, received: client.stats.received, skipped: client.stats.duplicates }),
    );
    expect(result).toMatchObject({ sent: N, processed: N, duplicates: 0, lost: 0, extra: 0, inSeqOrder: true, inPublishOrder: true });
    expect(proxy.cuts).toBeGreaterThanOrEqual(3);
    expect(client.stats.reconnects).toBeGreaterThanOrEqual(3);
  });
});

describe('WebSocket + webhooks with one Deduplicator', () => {
  it('each event is handled exactly once although both paths deliver it', async () => {
    const { createServer } = await import('node:http');
    const { Deduplicator } = await import('../../packages/client/src/dedup.js');
    const { createNodeWebhookHandler } = await import('../../packages/client/src/webhooks.js');
    const { accountId, token } = await createAccountWithKey(server);

    const dedup = new Deduplicator();
    const handled: Array<{ msg_id: string; via: string }> = [];
    const handle = async (e: TpxEvent) => {
      await sleep(1);
      handled.push({ msg_id: e.msg_id, via: e.via });
    };
    const webhookIds = new Set<string>();
    const statuses: number[] = [];
    let secret = '';
    const http = createServer((req, res) => {
      const id = req.headers['webhook-id'];
      res.on('finish', () => {
        statuses.push(res.statusCode);
        if (res.statusCode === 200 && typeof id === 'string') webhookIds.add(id);
      });
      createNodeWebhookHandler({ secret, dedup, onEvent: handle })(req, res);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (http.address() as { port: number }).port;
      const wh = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `http://127.0.0.1:${port}/hook` });
      expect(wh.status).toBe(201);
      secret = wh.body.secret;
      expect(secret).toMatch(/^whsec_/);

      // Phase 1: the WebSocket client is offline; webhooks handle the first events.
      const first = publisher(accountId, 5, 0);
      await first.done;
      await waitFor(() => first.ids.every((id) => webhookIds.has(id)), 20_000, 'webhooks of phase 1');

      // Phase 2: the client connects and resumes from 0: the replayed copies are duplicates.
      const client = makeClient({ url: server.wsUrl, token, afterSeq: 0, dedup });
      client.on('event', handle);
      await client.connect();
      const second = publisher(accountId, 15, 2);
      await second.done;
      const all = [...first.ids, ...second.ids];
      await waitFor(() => all.every((id) => webhookIds.has(id)), 20_000, 'all webhooks');
      await waitFor(() => client.stats.processed + client.stats.duplicates >= all.length, 20_000, 'all websocket copies');
      await client.drain();

      const ids = handled.map((h) => h.msg_id);
      console.log(
        '[client dual-path test]',
        JSON.stringify({
          events: all.length,
          handled: handled.length,
          viaWebsocket: handled.filter((h) => h.via === 'websocket').length,
          viaWebhook: handled.filter((h) => h.via === 'webhook').length,
          wsDuplicatesSkipped: client.stats.duplicates,
        }),
      );
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort()).toEqual([...all].sort());
      expect(handled.slice(0, 5).every((h) => h.via === 'webhook')).toBe(true);
      expect(client.stats.duplicates).toBeGreaterThanOrEqual(5);
      expect(client.lastSeq).toBeGreaterThanOrEqual(20);
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      await new Promise<void>((r) => http.close(() => r()));
    }
  });
});
