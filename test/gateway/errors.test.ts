/**
 * SPEC §2.5 / §2.7: every error code of the WebSocket protocol, and bad input.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, sleep, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { barrier, expectError, expectSentAt } from '../helpers/expect.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, WsTestClient } from '../helpers/ws-client.js';

let server: TestServer;
let accountId: string;
let token: string;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_MAX_MESSAGE_BYTES: '2048', TPX_AUTH_TIMEOUT_MS: '20000' } });
  ({ accountId, token } = await createAccountWithKey(server, { name: 'errors' }));
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

/** Proves the connection is still usable: a client ping is answered by pong. */
async function expectUsable(c: WsTestClient): Promise<void> {
  const pong = await c.ping();
  expectSentAt(pong);
  expect(c.isOpen).toBe(true);
}

describe('authentication errors (SPEC §2.5)', () => {
  it('unknown token → AUTH_INVALID_API_KEY, then close 4001', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'authenticate', payload: { token: 'tp_live_' + 'a'.repeat(40) } });
    await expectError(c, 'AUTH_INVALID_API_KEY');
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it('malformed token → AUTH_INVALID_API_KEY, then close 4001', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'authenticate', payload: { token: 'not-a-key' } });
    await expectError(c, 'AUTH_INVALID_API_KEY');
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it('a valid token with one character changed → AUTH_INVALID_API_KEY, then close 4001', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    const last = token.slice(-1);
    const forged = token.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    c.send({ msg_type: 'authenticate', payload: { token: forged } });
    await expectError(c, 'AUTH_INVALID_API_KEY');
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it('deactivated key → AUTH_API_KEY_INACTIVE, then close 4001', async () => {
    const key = await createKey(server, accountId, { name: 'to-deactivate' });
    const r = await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(r.status, r.text).toBeLessThan(300);
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'authenticate', payload: { token: key.token } });
    await expectError(c, 'AUTH_API_KEY_INACTIVE');
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it('expired key → AUTH_API_KEY_EXPIRED, then close 4001', async () => {
    const key = await createKey(server, accountId, { name: 'short-lived', expires_at: new Date(Date.now() + 1500).toISOString() });
    expect(key.expires_at).toBeTruthy();
    await sleep(2500);
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'authenticate', payload: { token: key.token } });
    await expectError(c, 'AUTH_API_KEY_EXPIRED');
    expect((await c.waitClosed()).code).toBe(4001);
  });

  it('authenticated payload is { account_id, auth_method: "api_key" }', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    const f = await c.authenticate(token);
    expectSentAt(f);
    expect(f.payload).toEqual({ account_id: accountId, auth_method: 'api_key' });
  });
});

describe('AUTH_REQUIRED', () => {
  it('subscribe before authenticate → AUTH_REQUIRED, connection stays open, can then authenticate and subscribe', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'subscribe', payload: { rooms: ['BID_REQUEST'] } });
    await expectError(c, 'AUTH_REQUIRED');
    c.send({ msg_type: 'unsubscribe', payload: { rooms: ['BID_REQUEST'] } });
    await expectError(c, 'AUTH_REQUIRED');
    // ping and pong are allowed before authentication
    await expectUsable(c);
    c.send({ msg_type: 'pong' });
    await c.authenticate(token);
    const sub = await c.subscribe(['BID_REQUEST']);
    expect(sub.payload.rooms).toEqual(['BID_REQUEST']);
    const res = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const ev = await c.next((f) => f.msg_id === res.msg_id);
    expect(ev.msg_type).toBe('BID_REQUEST');
    expect(c.history.filter((f) => f.msg_type === 'error').length).toBe(2);
  });

  it('a subscribe or unsubscribe of any shape before authenticate → AUTH_REQUIRED (not INVALID_MESSAGE); an unknown msg_type stays INVALID_MESSAGE', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    for (const msg of [{ msg_type: 'subscribe' }, { msg_type: 'subscribe', payload: {} }, { msg_type: 'unsubscribe', payload: { rooms: 'ALL' } }]) {
      c.send(msg);
      await expectError(c, 'AUTH_REQUIRED');
    }
    c.send({ msg_type: 'publish', payload: {} });
    await expectError(c, 'INVALID_MESSAGE');
    await c.authenticate(token);
    c.send({ msg_type: 'subscribe', payload: {} });
    await expectError(c, 'INVALID_MESSAGE'); // authenticated: now the shape is what is wrong
  });
});

describe('rooms errors (SPEC §2.3)', () => {
  it('NO_VALID_ROOMS when none of the requested rooms is accessible; connection stays usable', async () => {
    const { token: t } = await createAccountWithKey(server, { name: 'restricted', rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    const c = await connectAuthed(server.wsUrl, t);
    c.send({ msg_type: 'subscribe', payload: { rooms: ['PAYMENT_FAILED', 'BID_OUTBID'] } });
    await expectError(c, 'NO_VALID_ROOMS');
    await expectUsable(c);
    const sub = await c.subscribe(['BID_REQUEST']);
    expect(sub.payload.rooms).toEqual(['BID_REQUEST']);
  });

  it('INVALID_ROOM lists the offending names in `rooms`, and nothing of that request is subscribed', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    c.send({ msg_type: 'subscribe', payload: { rooms: ['BID_REQUEST', 'NOT_A_ROOM', 'bid_request', 'AUCTION_RESULT'] } });
    const err = await expectError(c, 'INVALID_ROOM');
    expect(err.payload.rooms).toEqual(['NOT_A_ROOM', 'bid_request']);
    // Prove BID_REQUEST / AUCTION_RESULT were not subscribed: subscribe a sentinel room only,
    // publish to the rooms of the failed request, then the sentinel.
    await c.subscribe(['PAYMENT_SETTLED']);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    await publish(server, eventBody('AUCTION_RESULT', [accountId]));
    const [before] = await barrier(server, accountId, [c]);
    expect(before).toEqual([]);
  });
});

describe('INVALID_MESSAGE / INVALID_JSON: the connection stays usable', () => {
  const cases: Array<{ name: string; send: (c: WsTestClient) => void; code: string }> = [
    { name: 'not JSON', send: (c) => c.sendRaw('{"msg_type": "ping"'), code: 'INVALID_JSON' },
    { name: 'plain text', send: (c) => c.sendRaw('hello'), code: 'INVALID_JSON' },
    { name: 'JSON array', send: (c) => c.sendRaw('[{"msg_type":"ping"}]'), code: 'INVALID_MESSAGE' },
    { name: 'JSON string', send: (c) => c.sendRaw('"ping"'), code: 'INVALID_MESSAGE' },
    { name: 'JSON null', send: (c) => c.sendRaw('null'), code: 'INVALID_MESSAGE' },
    { name: 'missing msg_type', send: (c) => c.send({ payload: { rooms: ['ALL'] } }), code: 'INVALID_MESSAGE' },
    { name: 'non-string msg_type', send: (c) => c.send({ msg_type: 42 }), code: 'INVALID_MESSAGE' },
    { name: 'unknown msg_type', send: (c) => c.send({ msg_type: 'publish', payload: {} }), code: 'INVALID_MESSAGE' },
    { name: 'wrong payload shape (rooms is a string)', send: (c) => c.send({ msg_type: 'subscribe', payload: { rooms: 'BID_REQUEST' } }), code: 'INVALID_MESSAGE' },
    { name: 'wrong payload shape (payload missing)', send: (c) => c.send({ msg_type: 'subscribe' }), code: 'INVALID_MESSAGE' },
    { name: 'wrong payload shape (after_seq negative)', send: (c) => c.send({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: -1 } }), code: 'INVALID_MESSAGE' },
    { name: 'binary frame', send: (c) => c.sendRaw(Buffer.from(JSON.stringify({ msg_type: 'ping' })), { binary: true }), code: 'INVALID_MESSAGE' },
  ];

  for (const tc of cases) {
    it(`${tc.name} → ${tc.code}, then subscribe succeeds on the same connection`, async () => {
      const c = await connectAuthed(server.wsUrl, token);
      tc.send(c);
      await expectError(c, tc.code);
      const sub = await c.subscribe(['BID_OUTBID']);
      expect(sub.payload.rooms).toEqual(['BID_OUTBID']);
      const res = await publish(server, eventBody('BID_OUTBID', [accountId]));
      await c.next((f) => f.msg_id === res.msg_id);
      expect(c.isOpen).toBe(true);
    });
  }

  it('authenticate with a wrong payload shape → INVALID_MESSAGE before authentication, connection stays open', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    c.send({ msg_type: 'authenticate', payload: { token: 123 } });
    await expectError(c, 'INVALID_MESSAGE');
    c.sendRaw('{oops');
    await expectError(c, 'INVALID_JSON');
    await c.authenticate(token);
  });

  it('bad input on one connection does not affect another connection', async () => {
    const good = await connectAuthed(server.wsUrl, token, ['PAYMENT_FAILED']);
    const bad = await connectAuthed(server.wsUrl, token);
    for (let i = 0; i < 20; i++) bad.sendRaw(i % 2 ? '{{{' : '[]');
    for (let i = 0; i < 20; i++) await bad.next((f) => f.msg_type === 'error');
    const res = await publish(server, eventBody('PAYMENT_FAILED', [accountId]));
    await good.next((f) => f.msg_id === res.msg_id);
    await expectUsable(good);
    await expectUsable(bad);
  });
});

describe('frame size limit (TPX_MAX_MESSAGE_BYTES=2048)', () => {
  it('a frame just under the limit is processed', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    const frame = JSON.stringify({ msg_type: 'ping', payload: { pad: 'x'.repeat(1500) } });
    expect(Buffer.byteLength(frame)).toBeLessThan(2048);
    c.sendRaw(frame);
    await c.nextOfType('pong');
  });

  it('a frame above the limit closes the connection with 1009', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    c.sendRaw(JSON.stringify({ msg_type: 'ping', payload: { pad: 'x'.repeat(4096) } }));
    expect((await c.waitClosed()).code).toBe(1009);
    // the server is unaffected
    const d = await connectAuthed(server.wsUrl, token);
    await expectUsable(d);
  });

  it('an oversize frame before authentication also closes with 1009', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    c.sendRaw('x'.repeat(10_000));
    expect((await c.waitClosed()).code).toBe(1009);
  });
});

describe('rate limiting (TPX_RATE_LIMIT_PER_SEC=20)', () => {
  let rl: TestServer;
  let rlToken: string;
  beforeAll(async () => {
    rl = await startTestServer({ env: { TPX_RATE_LIMIT_PER_SEC: '20' } });
    ({ token: rlToken } = await createAccountWithKey(rl));
  });

  it('a flood of 500 frames gets RATE_LIMITED and a close with 1008; other connections are unaffected', async () => {
    const bystander = await connectAuthed(rl.wsUrl, rlToken);
    const c = await connectAuthed(rl.wsUrl, rlToken);
    for (let i = 0; i < 500 && c.isOpen; i++) c.send({ msg_type: 'ping', payload: {} });
    const closed = await c.waitClosed(10_000);
    expect(closed.code).toBe(1008);
    const rateErr = c.history.find((f) => f.msg_type === 'error');
    expect(rateErr?.payload?.code, `frames: ${JSON.stringify(c.history.filter((f) => f.msg_type !== 'pong')).slice(0, 500)}`).toBe('RATE_LIMITED');
    await expectUsable(bystander);
    // a new connection is accepted
    const again = await connectAuthed(rl.wsUrl, rlToken);
    await expectUsable(again);
  });

  it('a client within the limit is never rate-limited', async () => {
    const c = await connectAuthed(rl.wsUrl, rlToken);
    for (let i = 0; i < 10; i++) {
      await c.ping();
      await sleep(100);
    }
    expect(c.history.some((f) => f.msg_type === 'error')).toBe(false);
    expect(c.isOpen).toBe(true);
  });
});
