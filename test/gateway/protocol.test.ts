/**
 * SPEC §2.2–2.4, §2.6: frame shapes, subscribe/unsubscribe semantics, ALL de-duplication,
 * ping/pong.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publish, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { barrier, expectSentAt, msgIds, UUID_RE } from '../helpers/expect.js';
import { EVENT_TYPES, eventBody, samplePayload, type EventType } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, WsTestClient, type Frame } from '../helpers/ws-client.js';

let server: TestServer;
let accountId: string;
let token: string;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '300', TPX_PONG_TIMEOUT_MS: '3000' } });
  ({ accountId, token } = await createAccountWithKey(server, { name: 'protocol' }));
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

describe('frames', () => {
  it('every server frame carries an integer epoch-ms sent_at; event frames carry msg_id (uuid) and seq', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    await c.subscribe(['ALL']);
    await c.subscribe(['BID_REQUEST']);
    await c.unsubscribe(['BID_REQUEST']);
    await c.ping();
    c.sendRaw('nope');
    await c.nextOfType('error');
    const published: string[] = [];
    for (const t of EVENT_TYPES) published.push((await publish(server, eventBody(t, [accountId]))).msg_id);
    for (const id of published) await c.next((f) => f.msg_id === id);
    // wait for at least one server ping (interval 300 ms)
    await c.next((f) => f.msg_type === 'ping', 3000);
    const types = new Set(c.history.map((f) => f.msg_type));
    for (const t of ['authenticated', 'subscribed', 'unsubscribed', 'pong', 'error', 'ping', ...EVENT_TYPES]) {
      expect(types.has(t), `received a ${t} frame`).toBe(true);
    }
    for (const f of c.history) {
      expectSentAt(f);
      expect(typeof f.msg_type).toBe('string');
      expect(f.payload !== null && typeof f.payload === 'object', `payload object in ${JSON.stringify(f).slice(0, 200)}`).toBe(true);
      if (isEventFrame(f)) {
        expect(f.msg_id).toMatch(UUID_RE);
        expect(Number.isInteger(f.seq)).toBe(true);
      }
    }
    expect(c.unparsable).toEqual([]);
  });

  it('event frame: msg_type, msg_id from the publish answer, payload passed through unchanged (incl. unknown fields)', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['AUCTION_RESULT']);
    const payload = { ...samplePayload('AUCTION_RESULT'), future_field: { nested: [1, 'two', null] } };
    const res = await publish(server, { msg_type: 'AUCTION_RESULT', account_ids: [accountId], payload });
    const f = await c.next((x) => x.msg_id === res.msg_id);
    expect(f.msg_type).toBe('AUCTION_RESULT');
    expect(f.payload).toEqual(payload);
  });

  it('seq is strictly increasing per account and identical for the same event on every connection of the account', async () => {
    const a = await connectAuthed(server.wsUrl, token, ['ALL']);
    const b = await connectAuthed(server.wsUrl, token, ['ALL']);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const t = EVENT_TYPES[i % EVENT_TYPES.length]!;
      ids.push((await publish(server, eventBody(t, [accountId]))).msg_id);
    }
    const fa: Frame[] = [];
    const fb: Frame[] = [];
    for (const id of ids) {
      fa.push(await a.next((f) => f.msg_id === id));
      fb.push(await b.next((f) => f.msg_id === id));
    }
    for (let i = 1; i < fa.length; i++) expect(fa[i]!.seq!).toBeGreaterThan(fa[i - 1]!.seq!);
    expect(fa.map((f) => f.seq)).toEqual(fb.map((f) => f.seq));
    // arrival order equals seq order (the frames were taken in publish order; check arrival order too)
    const arrivalA = a.history.filter((f) => ids.includes(f.msg_id as string)).map((f) => f.seq!);
    expect(arrivalA).toEqual([...arrivalA].sort((x, y) => x - y));
  });
});

describe('subscribe semantics (SPEC §2.3)', () => {
  it('subscribed lists the rooms de-duplicated in request order', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    const sub = await c.subscribe(['PAYMENT_FAILED', 'BID_OUTBID', 'PAYMENT_FAILED', 'AUCTION_RESULT', 'BID_OUTBID']);
    expectSentAt(sub);
    expect(sub.payload.rooms).toEqual(['PAYMENT_FAILED', 'BID_OUTBID', 'AUCTION_RESULT']);
  });

  it('subscribing is cumulative', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    expect((await c.subscribe(['BID_REQUEST'])).payload.rooms).toEqual(['BID_REQUEST']);
    expect((await c.subscribe(['BID_OUTBID'])).payload.rooms).toEqual(['BID_OUTBID']);
    await c.subscribe(['PAYMENT_SETTLED']);
    const r1 = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const r2 = await publish(server, eventBody('BID_OUTBID', [accountId]));
    const r3 = await publish(server, eventBody('AUCTION_RESULT', [accountId]));
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual([r1.msg_id, r2.msg_id]);
    void r3;
  });

  it('subscribing is idempotent: re-subscribing succeeds and does not duplicate deliveries', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    await c.subscribe(['BID_REQUEST', 'PAYMENT_SETTLED']);
    const again = await c.subscribe(['BID_REQUEST']);
    expect(again.payload.rooms).toEqual(['BID_REQUEST']);
    await c.subscribe(['BID_REQUEST', 'BID_REQUEST']);
    const r1 = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual([r1.msg_id]);
  });

  it('partial access: only the accessible rooms are subscribed and listed', async () => {
    const { accountId: rid, token: rt } = await createAccountWithKey(server, { rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    const c = await connectAuthed(server.wsUrl, rt);
    const sub = await c.subscribe(['PAYMENT_FAILED', 'BID_REQUEST', 'BID_OUTBID', 'PAYMENT_SETTLED']);
    expect(sub.payload.rooms).toEqual(['BID_REQUEST', 'PAYMENT_SETTLED']);
    const r1 = await publish(server, eventBody('BID_REQUEST', [rid]));
    await publish(server, eventBody('PAYMENT_FAILED', [rid]));
    await publish(server, eventBody('BID_OUTBID', [rid]));
    const [before] = await barrier(server, rid, [c]);
    expect(msgIds(before!)).toEqual([r1.msg_id]);
  });

  it('ALL on a restricted account delivers only the accessible types', async () => {
    const { accountId: rid, token: rt } = await createAccountWithKey(server, { rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    const c = await connectAuthed(server.wsUrl, rt);
    const sub = await c.subscribe(['ALL']);
    expect(sub.payload.rooms).toEqual(['ALL']);
    const r1 = await publish(server, eventBody('BID_REQUEST', [rid]));
    await publish(server, eventBody('PAYMENT_FAILED', [rid]));
    const [before] = await barrier(server, rid, [c]);
    expect(msgIds(before!)).toEqual([r1.msg_id]);
  });

  it('ALL + a specific room: each event is delivered exactly once', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    await c.subscribe(['ALL', 'BID_REQUEST']);
    await c.subscribe(['BID_OUTBID']);
    const ids: string[] = [];
    for (const t of ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'BID_REQUEST'] as EventType[]) {
      ids.push((await publish(server, eventBody(t, [accountId]))).msg_id);
    }
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual(ids);
    // and nothing arrives after the barrier either
    const late = await c.collect(200, isEventFrame);
    expect(late).toEqual([]);
  });

  it('room names are case-sensitive', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    const r = await c.subscribeRaw(['bid_request']);
    expect(r.msg_type).toBe('error');
    expect(r.payload.code).toBe('INVALID_ROOM');
    expect(r.payload.rooms).toEqual(['bid_request']);
    const r2 = await c.subscribeRaw(['All']);
    expect(r2.payload.code).toBe('INVALID_ROOM');
  });
});

describe('unsubscribe', () => {
  it('unsubscribe stops delivery of that room only', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['BID_REQUEST', 'BID_OUTBID', 'PAYMENT_SETTLED']);
    const un = await c.unsubscribe(['BID_REQUEST']);
    expectSentAt(un);
    expect(un.payload.rooms).toEqual(['BID_REQUEST']);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    const r2 = await publish(server, eventBody('BID_OUTBID', [accountId]));
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual([r2.msg_id]);
  });

  it('unsubscribe ALL stops delivery of everything not subscribed explicitly', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL', 'PAYMENT_SETTLED']);
    await c.unsubscribe(['ALL']);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    await publish(server, eventBody('PAYMENT_FAILED', [accountId]));
    const [before] = await barrier(server, accountId, [c]);
    expect(before).toEqual([]);
  });

  it('other connections of the same account keep their subscriptions', async () => {
    const a = await connectAuthed(server.wsUrl, token, ['BID_REQUEST', 'PAYMENT_SETTLED']);
    const b = await connectAuthed(server.wsUrl, token, ['BID_REQUEST', 'PAYMENT_SETTLED']);
    await a.unsubscribe(['BID_REQUEST']);
    const r = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const [ba, bb] = await barrier(server, accountId, [a, b]);
    expect(ba).toEqual([]);
    expect(msgIds(bb!)).toEqual([r.msg_id]);
  });
});

describe('ping / pong (SPEC §2.6)', () => {
  it('a client ping is answered by pong (before and after authentication)', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    const p1 = await c.ping();
    expect(p1.msg_type).toBe('pong');
    expectSentAt(p1);
    await c.authenticate(token);
    c.send({ msg_type: 'ping' }); // payload omitted is allowed
    expectSentAt(await c.nextOfType('pong'));
  });

  it('the server pings every interval; a client that answers stays connected across many intervals', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    for (let i = 0; i < 4; i++) {
      const p = await c.next((f) => f.msg_type === 'ping', 5000);
      expectSentAt(p);
    }
    expect(c.isOpen).toBe(true);
    await c.ping();
  });

  it('WebSocket protocol-level ping frames are answered', async () => {
    const c = await connectAuthed(server.wsUrl, token);
    const pong = new Promise<void>((resolve) => c.ws.once('pong', () => resolve()));
    c.ws.ping();
    await pong;
  });
});
