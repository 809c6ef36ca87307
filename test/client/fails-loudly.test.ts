/**
 * A client that fails loudly (issue 11 item 2), against the real server and real HTTP servers
 * that refuse the upgrade:
 * - the base URL (`http://host:port`, `ws://host:port`) and the `/ws` URL all work;
 * - an upgrade answered 3xx/4xx is one fatal `error` with a hint, not endless retries (before
 *   this change: an endless "connecting / reconnecting" loop with no error), with `ws` (status
 *   in its error) and with the WHATWG WebSocket of Node ≥ 22 (undici: status hidden, probed);
 * - 503 (a draining node) and refused connections stay retryable;
 * - a bad key rejects connect() and emits error/closed, never an unhandled rejection, and is
 *   written to the console when nobody listens to `error`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket as UndiciWebSocket } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TpxClient, type TpxClientOptions } from '../../packages/client/src/client.js';
import { TpxConnectionError, type TpxError } from '../../packages/client/src/errors.js';
import type { WebSocketLike } from '../../packages/client/src/transport.js';
import type { ClosedInfo, ReconnectingInfo } from '../../packages/client/src/types.js';
import { createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

let server: TestServer;
const clients: TpxClient[] = [];
const httpServers: Server[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(httpServers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});
afterAll(() => stopAll());

function makeClient(opts: Partial<TpxClientOptions> & { url: string }) {
  const client = new TpxClient({ token: 'tp_live_x', reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, ...opts });
  clients.push(client);
  const errors: TpxError[] = [];
  const reconnecting: ReconnectingInfo[] = [];
  let connecting = 0;
  client.on('error', (e) => void errors.push(e));
  client.on('reconnecting', (i) => void reconnecting.push(i));
  client.on('connecting', () => void connecting++);
  const closed = new Promise<ClosedInfo>((r) => client.on('closed', r));
  return { client, errors, reconnecting, closed, connecting: () => connecting };
}

/** An HTTP server that answers every WebSocket upgrade with `status` (like a proxy in front). */
async function refusingServer(status: number, headers = ''): Promise<{ port: number; upgrades: () => number }> {
  let upgrades = 0;
  const http = createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND"}'));
  http.on('upgrade', (_req, socket) => {
    upgrades++;
    socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\n${headers}Content-Length: 0\r\n\r\n`);
  });
  httpServers.push(http);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { port: (http.address() as AddressInfo).port, upgrades: () => upgrades };
}

/** The WHATWG WebSocket of Node ≥ 22 (undici's), which hides the HTTP status of a refused upgrade. */
const undiciFactory = (url: string) => new UndiciWebSocket(url) as unknown as WebSocketLike;

describe('URLs the client accepts', () => {
  const forms = (port: number) => [
    `http://127.0.0.1:${port}`,
    `http://127.0.0.1:${port}/`,
    `ws://127.0.0.1:${port}`,
    `ws://127.0.0.1:${port}/ws`,
    `http://127.0.0.1:${port}/ws`,
  ];

  it('the base URL (http or ws) and the /ws URL all reach /ws and receive events', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    for (const url of forms(server.port)) {
      const { client } = makeClient({ url, token });
      expect(client.url).toBe(`ws://127.0.0.1:${server.port}/ws`);
      const got = new Promise<string>((r) => client.on('PAYMENT_CHARGED', (e) => r(e.msg_id)));
      await client.connect();
      const { msg_id } = await publish(server, { msg_type: 'PAYMENT_CHARGED', account_ids: [accountId], payload: samplePayload('PAYMENT_CHARGED') });
      expect(await got).toBe(msg_id);
      await client.close();
    }
  });

  it('https becomes wss; a query string is kept; anything else is a TypeError at construction', () => {
    expect(new TpxClient({ url: 'https://rt.example.com', token: 't' }).url).toBe('wss://rt.example.com/ws');
    expect(new TpxClient({ url: 'wss://rt.example.com/edge/ws?x=1', token: 't' }).url).toBe('wss://rt.example.com/edge/ws?x=1');
    expect(() => new TpxClient({ url: 'not a url', token: 't' })).toThrow(/invalid url "not a url"/);
    expect(() => new TpxClient({ url: 'ftp://rt.example.com', token: 't' })).toThrow(/ws:\/\/, wss:\/\/, http:\/\/ or https:\/\//);
  });
});

describe('an upgrade refused with 3xx/4xx is fatal, with a hint', () => {
  it('a path with no WebSocket endpoint (404 from the real server): one error, no retry, the /ws URL suggested', async () => {
    const { client, errors, closed, connecting, reconnecting } = makeClient({ url: `ws://127.0.0.1:${server.port}/api` });
    const err = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TpxConnectionError);
    expect(err).toMatchObject({ code: 'HANDSHAKE_REJECTED', httpStatus: 404, fatal: true });
    expect((err as Error).message).toBe(
      `no WebSocket endpoint at ws://127.0.0.1:${server.port}/api (HTTP 404); did you mean ws://127.0.0.1:${server.port}/ws?`,
    );
    expect(await closed).toMatchObject({ reason: 'fatal', error: err });
    expect(errors).toEqual([err]);
    await sleep(200);
    expect(connecting()).toBe(1);
    expect(reconnecting).toEqual([]);
    expect(client.state).toBe('closed');
  });

  it('the same with the WHATWG WebSocket that hides the status (undici, as in Node ≥ 22): found by a probe', async () => {
    const { client, errors, connecting } = makeClient({ url: `ws://127.0.0.1:${server.port}/api`, webSocketFactory: undiciFactory, diagnoseHandshake: true });
    await expect(client.connect()).rejects.toMatchObject({ code: 'HANDSHAKE_REJECTED', httpStatus: 404 });
    expect(errors[0]!.message).toContain(`did you mean ws://127.0.0.1:${server.port}/ws?`);
    await sleep(200);
    expect(connecting()).toBe(1);
  });

  it('a proxy answering 403 or a redirect: fatal, each with its own hint', async () => {
    const forbidden = await refusingServer(403);
    const a = makeClient({ url: `http://127.0.0.1:${forbidden.port}` });
    await expect(a.client.connect()).rejects.toMatchObject({ code: 'HANDSHAKE_REJECTED', httpStatus: 403 });
    expect(a.errors[0]!.message).toMatch(/refused \(HTTP 403\) before it reached tpx-realtime.*proxy or firewall/);

    const moved = await refusingServer(301, 'Location: wss://example.com/ws\r\n');
    const b = makeClient({ url: `ws://127.0.0.1:${moved.port}/ws`, webSocketFactory: undiciFactory, diagnoseHandshake: true });
    await expect(b.client.connect()).rejects.toMatchObject({ code: 'HANDSHAKE_REJECTED', httpStatus: 301 });
    expect(b.errors[0]!.message).toMatch(/redirected \(HTTP 301\): use the final URL/);
    await sleep(200);
    // No retry: one attempt, plus the status probe where the default WebSocket is the platform's
    // WHATWG one (Node ≥ 22), which hides the status of a refused upgrade.
    const probe = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? 1 : 0;
    expect(forbidden.upgrades()).toBe(1 + probe);
  });

  it('503 (a node draining) is retried, with the status in `reconnecting`', async () => {
    const draining = await refusingServer(503);
    const { client, reconnecting, errors } = makeClient({ url: `ws://127.0.0.1:${draining.port}/ws` });
    void client.connect();
    await waitFor(() => reconnecting.length >= 3, 10_000, 'three retries');
    expect(reconnecting.slice(0, 3).map((r) => r.error?.code)).toEqual(['HTTP_503', 'HTTP_503', 'HTTP_503']);
    expect(errors).toEqual([]);
    expect(client.state).not.toBe('closed');
  });

  it('no server listening (connection refused) is retried, with either transport, the reason in `reconnecting`', async () => {
    const gone = await refusingServer(503);
    const port = gone.port;
    await new Promise<void>((r) => httpServers.pop()!.close(() => r()));
    for (const [factory, transport] of [[undefined, 'websocket'], [undiciFactory, 'websocket'], [undefined, 'sse']] as const) {
      const { client, reconnecting, errors } = makeClient({ url: `ws://127.0.0.1:${port}/ws`, webSocketFactory: factory, diagnoseHandshake: true, transport });
      void client.connect();
      await waitFor(() => reconnecting.length >= 2, 10_000, 'two retries');
      expect(errors).toEqual([]);
      // Said as it is (before: "connection closed (1006)", the refusal dropped).
      expect(reconnecting[0]!.error).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringMatching(/ECONNREFUSED 127\.0\.0\.1:\d+ \(is the server running/) });
      await client.close();
    }
  });
});

describe('auth errors: rejected connect(), error and closed events, never an unhandled rejection', () => {
  it('a bad key with connect() ignored (README snippet style) does not crash the process', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { client, errors, closed } = makeClient({ url: server.url, token: 'tp_live_not_a_key' });
      void client.connect(); // ignored on purpose
      expect(await closed).toMatchObject({ reason: 'fatal', closeCode: 4001, error: { code: 'AUTH_INVALID_API_KEY' } });
      expect(errors.map((e) => e.code)).toEqual(['AUTH_INVALID_API_KEY']);
      await sleep(100); // unhandled rejections are reported after a turn of the event loop
      expect(unhandled).toEqual([]);
      // An awaited connect() still rejects with the same error.
      const again = makeClient({ url: server.url, token: 'tp_live_not_a_key' });
      await expect(again.client.connect()).rejects.toMatchObject({ kind: 'auth', code: 'AUTH_INVALID_API_KEY' });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('nobody listening to `error`: the fatal error is written to the console, once', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const client = new TpxClient({ url: server.url, token: 'tp_live_not_a_key' });
      clients.push(client);
      const closed = new Promise((r) => client.on('closed', r));
      void client.connect();
      await closed;
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0]![0])).toMatch(/^\[tpx-client\] stopped: AUTH_INVALID_API_KEY: /);
    } finally {
      spy.mockRestore();
    }
  });
});
