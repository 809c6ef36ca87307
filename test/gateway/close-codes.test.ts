/**
 * SPEC §2.5, §2.6, §2.9, §5: close codes 4002 (auth timeout), 4003 (keepalive timeout) and
 * 1001 on SIGTERM with exit code 0. (4001, 1008 and 1009 are covered in errors.test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, sleep, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { closeAllClients, connectAuthed, WsTestClient } from '../helpers/ws-client.js';

afterEach(() => closeAllClients());
afterAll(() => stopAll());

describe('4002: authentication timeout (TPX_AUTH_TIMEOUT_MS=500)', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_AUTH_TIMEOUT_MS: '500' } });
    ({ token } = await createAccountWithKey(server));
  });

  it('a connection that never authenticates is closed with 4002', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    expect((await c.waitClosed(10_000)).code).toBe(4002);
    expect(c.history.some((f) => f.msg_type === 'authenticated')).toBe(false);
  });

  it('pinging does not count as authenticating: still closed with 4002', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    await c.ping();
    expect((await c.waitClosed(10_000)).code).toBe(4002);
  });

  it('an authenticated connection is not closed by the auth timeout', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    await sleep(1500);
    expect(c.isOpen).toBe(true);
    await c.ping();
  });
});

describe('4003: keepalive timeout (TPX_PING_INTERVAL_MS=300, TPX_PONG_TIMEOUT_MS=300)', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '300', TPX_PONG_TIMEOUT_MS: '300', TPX_AUTH_TIMEOUT_MS: '20000' } });
    ({ token } = await createAccountWithKey(server));
  });

  it('a client that never answers ping is closed with 4003', async () => {
    const c = await WsTestClient.connect(server.wsUrl, { autoPong: false });
    await c.authenticate(token);
    await c.nextOfType('ping', 5000);
    expect((await c.waitClosed(10_000)).code).toBe(4003);
  });

  it('a client that answers every ping stays connected', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    await sleep(2000);
    expect(c.isOpen).toBe(true);
    expect(c.history.filter((f) => f.msg_type === 'ping').length).toBeGreaterThanOrEqual(2);
  });

  it('the silent client is closed while a responsive one on the same server survives', async () => {
    const silent = await WsTestClient.connect(server.wsUrl, { autoPong: false });
    await silent.authenticate(token);
    const good = await connectAuthed(server.wsUrl, token);
    expect((await silent.waitClosed(10_000)).code).toBe(4003);
    expect(good.isOpen).toBe(true);
    await good.ping();
  });
});

describe('1001 on SIGTERM', () => {
  it('all connected clients get 1001 and the process exits 0', async () => {
    const server = await startTestServer();
    const { token } = await createAccountWithKey(server);
    const a = await connectAuthed(server.wsUrl, token, ['ALL']);
    const b = await connectAuthed(server.wsUrl, token, ['BID_REQUEST']);
    const unauth = await WsTestClient.connect(server.wsUrl);
    const exit = await server.stop('SIGTERM');
    const [ca, cb, cu] = await Promise.all([a.waitClosed(10_000), b.waitClosed(10_000), unauth.waitClosed(10_000)]);
    expect(ca.code).toBe(1001);
    expect(cb.code).toBe(1001);
    expect(cu.code).toBe(1001);
    expect(exit, server.output().slice(-3000)).toEqual({ code: 0, signal: null });
  });
});
