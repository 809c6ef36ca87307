/**
 * The SDK's SSE transport (`transport: 'sse'`, SPEC §2.10) against the real server: the same
 * events and API as over the WebSocket, resume from the last processed seq across random TCP cuts
 * and a server restart (nothing lost or doubled), `last_seq` kept from the first `subscribed`,
 * gaps of a pruned range, and loud failures (refusals with 4xx are fatal, revocation too).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient, type TpxClientOptions } from '../../packages/client/src/client.js';
import { TpxAuthError, TpxConnectionError, TpxServerError } from '../../packages/client/src/errors.js';
import type { ClosedInfo, GapInfo, TpxEvent } from '../../packages/client/src/types.js';
import { api, createAccount, createAccountWithKey, createKey, publish, publishBatch, sleep, startTestServer, stopAll, waitFor, waitUntilPruned, type TestServer } from '../helpers/server.js';
import { eventBody, samplePayload } from '../helpers/payloads.js';
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
afterAll(() => stopAll());

function sseClient(opts: Partial<TpxClientOptions> & { url: string; token: string }): TpxClient {
  const client = new TpxClient({ transport: 'sse', reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...opts });
  clients.push(client);
  return client;
}

function collect(client: TpxClient): TpxEvent[] {
  const seen: TpxEvent[] = [];
  client.on('event', (e) => void seen.push(e));
  return seen;
}

const TYPES = ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'PAYMENT_CHARGED', 'PAYMENT_SETTLED'] as const;

/** Publish `count` events with caller-chosen msg_ids, retried until accepted (survives a restart). */
function publisher(target: () => TestServer, accountId: string, count: number, pauseMs: number) {
  const ids: string[] = [];
  const done = (async () => {
    for (let i = 0; i < count; i++) {
      const msg_id = randomUUID();
      ids.push(msg_id);
      const type = TYPES[i % TYPES.length]!;
      for (;;) {
        try {
          await publish(target(), { msg_type: type, account_ids: [accountId], payload: samplePayload(type), msg_id });
          break;
        } catch {
          await sleep(25);
        }
      }
      if (pauseMs) await sleep(pauseMs);
    }
  })();
  return { ids, done };
}

describe('TpxClient over SSE', () => {
  it('receives the same events as a WebSocket client of the account, typed, in seq order, via "sse"', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const viaSse = sseClient({ url: server.url, token, rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    const viaWs = new TpxClient({ url: server.url, token, rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    clients.push(viaWs);
    const a = collect(viaSse);
    const b = collect(viaWs);
    const conversations: string[] = [];
    viaSse.on('BID_REQUEST', (e) => void conversations.push(e.payload.conversation_id));
    const opened = new Promise((r) => viaSse.on('open', r));
    await Promise.all([viaSse.connect(), viaWs.connect()]);
    expect(await opened).toMatchObject({ accountId, rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    expect(viaSse.accountId).toBe(accountId);
    expect(viaSse.url).toBe(`${server.url}/v1/events/stream`);
    const pub = publisher(() => server, accountId, 20, 0);
    await pub.done;
    await waitFor(() => a.length === 8 && b.length === 8, 10_000, 'both clients');
    expect(a.map((e) => e.via)).toEqual(Array(8).fill('sse'));
    expect(a.map(({ via: _v, ...rest }) => rest)).toEqual(b.map(({ via: _v, ...rest }) => rest));
    expect(a.map((e) => e.seq)).toEqual([...a.map((e) => e.seq!)].sort((x, y) => x - y));
    expect(conversations).toHaveLength(4);
    expect(viaSse.lastSeq).toBe(a.at(-1)!.seq);
  });

  it('random TCP cuts while events flow: every event exactly once, in seq order (resume by Last-Event-ID)', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = sseClient({ url: `http://127.0.0.1:${proxy.port}`, token, afterSeq: 0 });
    const seen = collect(client);
    await client.connect();
    const N = 300;
    const pub = publisher(() => server, accountId, N, 1);
    const chaos = proxy.chaos({ maxCuts: 10, minIntervalMs: 40, maxIntervalMs: 250, maxDurationMs: 15_000 });
    await pub.done;
    await waitFor(() => proxy.cuts >= 3, 20_000, 'at least 3 cuts');
    proxy.stopChaos();
    await chaos;
    await waitFor(() => seen.length >= N, 30_000, 'every event after the cuts');
    await client.drain();
    expect(seen.map((e) => e.msg_id)).toEqual(pub.ids);
    expect(client.stats.reconnects).toBeGreaterThanOrEqual(3);
  });

  it("resumes across a server restart (SIGTERM: the stream ends with `: close 1001`): nothing lost or doubled", async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = sseClient({ url: `http://127.0.0.1:${proxy.port}`, token, afterSeq: 0 });
    const codes: Array<number | string | undefined> = [];
    client.on('reconnecting', (i) => void codes.push(i.closeCode ?? i.error?.code));
    const seen = collect(client);
    await client.connect();
    const pub = publisher(() => server, accountId, 120, 3);
    await waitFor(() => seen.length >= 30, 20_000, 'stream under way');
    await server.restart();
    proxy.setTarget(server.port);
    await pub.done;
    await waitFor(() => seen.length >= 120, 30_000, 'every event after the restart');
    await client.drain();
    expect(seen.map((e) => e.msg_id)).toEqual(pub.ids);
    expect(codes).toContain(1001);
  });

  it('keeps last_seq from the first subscribed: a stream lost before any event misses nothing', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, [eventBody('BID_REQUEST', [accountId]), eventBody('BID_REQUEST', [accountId])]);
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const client = sseClient({ url: `http://127.0.0.1:${proxy.port}`, token, reconnect: { initialDelayMs: 300, maxDelayMs: 300 } });
    const seen = collect(client);
    await client.connect();
    expect(client.lastSeq).toBe(2);
    const reconnecting = new Promise((r) => client.on('reconnecting', r));
    proxy.cutAll();
    await reconnecting;
    const missed = await publish(server, eventBody('PAYMENT_FAILED', [accountId]));
    await waitFor(() => seen.length === 1, 10_000, 'the event published while disconnected');
    expect(seen[0]).toMatchObject({ msg_id: missed.msg_id, seq: 3 });
  });

  it('fails loudly: unknown key, deactivated key, rooms the account cannot access and a wrong URL are fatal at once', async () => {
    const { key, token } = await createAccountWithKey(server);
    const limited = await createAccount(server, { rooms: ['PAYMENT_SETTLED'] });
    const limitedKey = await createKey(server, limited.account_id);
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const cases: Array<[Partial<TpxClientOptions> & { url: string; token: string }, (err: unknown) => void]> = [
      [{ url: server.url, token: 'tp_live_nope' }, (err) => expect(err).toMatchObject({ kind: 'auth', code: 'AUTH_INVALID_API_KEY', fatal: true })],
      [{ url: server.url, token }, (err) => expect(err).toMatchObject({ kind: 'auth', code: 'AUTH_API_KEY_INACTIVE', fatal: true })],
      [{ url: server.url, token: limitedKey.token, rooms: ['BID_REQUEST'] }, (err) => {
        expect(err).toBeInstanceOf(TpxServerError);
        expect(err).toMatchObject({ code: 'NO_VALID_ROOMS', fatal: true });
      }],
      [{ url: `${server.url}/somewhere/else`, token }, (err) => {
        expect(err).toBeInstanceOf(TpxConnectionError);
        expect(err).toMatchObject({ code: 'HANDSHAKE_REJECTED', httpStatus: 404, fatal: true });
        expect((err as Error).message).toMatch(/v1\/events\/stream/);
      }],
    ];
    for (const [opts, check] of cases) {
      const client = sseClient(opts);
      client.on('error', () => undefined);
      let connecting = 0;
      client.on('connecting', () => void connecting++);
      const err = await client.connect().then(() => undefined, (e: unknown) => e);
      check(err);
      expect(client.state).toBe('closed');
      await sleep(100);
      expect(connecting).toBe(1);
    }
    expect(() => new TpxClient({ url: server.url, token, transport: 'sse', rooms: [] })).toThrow(/at least one room/);
  });

  it('a key deactivated mid-stream stops the client for good with the AUTH_ code (close 4001)', async () => {
    const { key, token } = await createAccountWithKey(server);
    const client = sseClient({ url: server.url, token });
    client.on('error', () => undefined);
    const closed = new Promise<ClosedInfo>((r) => client.on('closed', r));
    await client.connect();
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const info = await closed;
    expect(info).toMatchObject({ reason: 'fatal', closeCode: 4001 });
    expect(info.error).toBeInstanceOf(TpxAuthError);
    expect(info.error!.code).toBe('AUTH_API_KEY_INACTIVE');
  });
});

describe('TpxClient over SSE and retention', () => {
  let pruning: TestServer;
  beforeAll(async () => {
    pruning = await startTestServer({ env: { TPX_EVENT_RETENTION: '2s' } });
  });

  it('reports a pruned range as gap, then resumes after it', async () => {
    const { accountId, token } = await createAccountWithKey(pruning);
    await publishBatch(pruning, Array.from({ length: 4 }, () => eventBody('BID_REQUEST', [accountId])));
    await waitUntilPruned(pruning, token);
    await publish(pruning, eventBody('BID_REQUEST', [accountId]));
    const client = sseClient({ url: pruning.url, token, afterSeq: 1 });
    const order: string[] = [];
    client.on('gap', (g: GapInfo) => void order.push(`gap ${g.from_seq}-${g.to_seq}`));
    client.on('event', (e) => void order.push(`#${e.seq}`));
    await client.connect();
    await waitFor(() => order.length === 2, 5000, 'gap then event');
    expect(order).toEqual(['gap 2-4', '#5']);
    expect(client.lastSeq).toBe(5);
  });
});
