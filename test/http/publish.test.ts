/**
 * SPEC §3.1: the publish API (POST /v1/events, POST /v1/events/batch).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, publishBatch, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { barrier, msgIds, UUID_RE } from '../helpers/expect.js';
import { EVENT_TYPES, eventBody, requiredFields, samplePayload, type EventType } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame } from '../helpers/ws-client.js';

let server: TestServer;
let accountId: string;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  ({ accountId, token } = await createAccountWithKey(server, { name: 'publish' }));
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

describe('POST /v1/events', () => {
  it('answers 202 { msg_id (uuid), recipients } and the event reaches the account’s connection with that msg_id', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['BID_REQUEST']);
    const payload = samplePayload('BID_REQUEST');
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [accountId], payload });
    expect(res.status, res.text).toBe(202);
    expect(res.body.msg_id).toMatch(UUID_RE);
    expect(Number.isInteger(res.body.recipients)).toBe(true);
    const f = await c.next((x) => x.msg_id === res.body.msg_id);
    expect(f.msg_type).toBe('BID_REQUEST');
    expect(f.payload).toEqual(payload);
  });

  it('recipients counts the addressed accounts that may access the room', async () => {
    const other = await createAccountWithKey(server);
    const restricted = await createAccountWithKey(server, { rooms: ['PAYMENT_SETTLED'] });
    const res = await api(server, 'POST', '/v1/events', eventBody('BID_OUTBID', [accountId, other.accountId, restricted.accountId]));
    expect(res.status, res.text).toBe(202);
    expect(res.body.recipients).toBe(2);
  });

  it('a caller-supplied msg_id is used as the event id', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['AUCTION_RESULT']);
    const id = randomUUID();
    const res = await publish(server, eventBody('AUCTION_RESULT', [accountId], { msg_id: id }));
    expect(res.msg_id).toBe(id);
    await c.next((f) => f.msg_id === id);
  });

  it('401 without a token and with a wrong token, with an error code', async () => {
    const body = eventBody('BID_REQUEST', [accountId]);
    for (const tok of [null, 'wrong-token', server.adminToken + 'x']) {
      const res = await api(server, 'POST', '/v1/events', body, { token: tok });
      expect(res.status, `token ${tok}: ${res.text}`).toBe(401);
      expect(typeof res.body?.code).toBe('string');
      expect(res.body.code).toBe('UNAUTHORIZED');
      expect(typeof res.body.error).toBe('string');
    }
    // an account API key is not an admin token
    const res = await api(server, 'POST', '/v1/events', body, { token });
    expect(res.status).toBe(401);
  });

  it('unknown msg_type → 400', async () => {
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'NOT_A_TYPE', account_ids: [accountId], payload: {} });
    expect(res.status, res.text).toBe(400);
    expect(typeof res.body.code).toBe('string');
  });

  it('`ALL` is a room, not an event type → 400', async () => {
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'ALL', account_ids: [accountId], payload: {} });
    expect(res.status, res.text).toBe(400);
  });

  it('neither account_ids nor broadcast → 400', async () => {
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', payload: samplePayload('PAYMENT_SETTLED') });
    expect(res.status, res.text).toBe(400);
  });

  it('malformed JSON body → 400 with a code', async () => {
    const res = await api(server, 'POST', '/v1/events', undefined, { rawBody: '{"msg_type":' });
    expect(res.status, res.text).toBe(400);
    expect(typeof res.body?.code).toBe('string');
  });
});

describe('payload validation (EVENTS.md)', () => {
  for (const type of EVENT_TYPES) {
    it(`${type}: each missing required field → 400 naming the field`, async () => {
      for (const field of requiredFields(type)) {
        const payload = samplePayload(type);
        delete payload[field];
        const res = await api(server, 'POST', '/v1/events', { msg_type: type, account_ids: [accountId], payload });
        expect(res.status, `${type} without ${field}: ${res.text}`).toBe(400);
        expect(typeof res.body.code).toBe('string');
        expect(res.text, `${type} without ${field}: the answer names the field`).toContain(field);
      }
    });
  }

  it('a valid payload of every type is accepted', async () => {
    for (const type of EVENT_TYPES) {
      const res = await api(server, 'POST', '/v1/events', eventBody(type, [accountId]));
      expect(res.status, `${type}: ${res.text}`).toBe(202);
    }
  });

  const bad: Array<{ name: string; type: EventType; mutate: (p: Record<string, any>) => void; field: string }> = [
    { name: 'is_winner not boolean', type: 'AUCTION_RESULT', mutate: (p) => (p.is_winner = 'yes'), field: 'is_winner' },
    { name: 'unknown asset_type', type: 'BID_OUTBID', mutate: (p) => (p.asset_type = 'CAR'), field: 'asset_type' },
    { name: 'unknown reference_type', type: 'BID_REQUEST', mutate: (p) => (p.reference_type = 'AUCTION'), field: 'reference_type' },
    { name: 'unknown conditional bid status', type: 'CONDITIONAL_BID_STATUS_CHANGE', mutate: (p) => (p.status = 'WHATEVER'), field: 'status' },
    { name: 'negative amount', type: 'PAYMENT_CHARGED', mutate: (p) => (p.amount_cents = -1), field: 'amount_cents' },
    { name: 'non-integer amount', type: 'PAYMENT_SETTLED', mutate: (p) => (p.total_charged_cents = 10.5), field: 'total_charged_cents' },
    { name: 'asset_details.id missing', type: 'TRANSFER_CONFIRMATION_RECEIVED', mutate: (p) => delete p.asset_details.id, field: 'asset_details' },
    { name: 'config_details.id missing', type: 'PAYMENT_CHARGED', mutate: (p) => delete p.config_details.id, field: 'config_details' },
    { name: 'BID_REQUEST item_details.quantity missing', type: 'BID_REQUEST', mutate: (p) => delete p.item_details.quantity, field: 'quantity' },
    { name: 'conversation_id not a string', type: 'PAYMENT_FAILED', mutate: (p) => (p.conversation_id = 42), field: 'conversation_id' },
    { name: 'typed optional field with the wrong type', type: 'PAYMENT_CHARGED', mutate: (p) => (p.payment_rail = 'BARTER'), field: 'payment_rail' },
  ];
  for (const b of bad) {
    it(`${b.type}: ${b.name} → 400 naming ${b.field}`, async () => {
      const payload = samplePayload(b.type) as Record<string, any>;
      b.mutate(payload);
      const res = await api(server, 'POST', '/v1/events', { msg_type: b.type, account_ids: [accountId], payload });
      expect(res.status, res.text).toBe(400);
      expect(res.text).toContain(b.field);
    });
  }

  it('payload not an object → 400', async () => {
    for (const payload of [null, [], 'x', 3]) {
      const res = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload });
      expect(res.status, `${JSON.stringify(payload)}: ${res.text}`).toBe(400);
    }
  });
});

describe('addressing', () => {
  it('unknown account ids → 400 UNKNOWN_ACCOUNT listing them, and nothing is delivered to the known ones', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const u1 = randomUUID();
    const u2 = randomUUID();
    const res = await api(server, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId, u1, u2]));
    expect(res.status, res.text).toBe(400);
    expect(res.body.code).toBe('UNKNOWN_ACCOUNT');
    expect(res.text).toContain(u1);
    expect(res.text).toContain(u2);
    expect(res.text).not.toContain(`"${accountId}"`);
    const [before] = await barrier(server, accountId, [c]);
    expect(before).toEqual([]);
  });

  it('an addressed account without access to the room: accepted (202), not delivered', async () => {
    const r = await createAccountWithKey(server, { rooms: ['PAYMENT_SETTLED'] });
    const c = await connectAuthed(server.wsUrl, r.token, ['ALL']);
    const res = await api(server, 'POST', '/v1/events', eventBody('BID_REQUEST', [r.accountId]));
    expect(res.status, res.text).toBe(202);
    const [before] = await barrier(server, r.accountId, [c]);
    expect(before).toEqual([]);
  });

  it('broadcast reaches every account that may access the room, and only those', async () => {
    const a = await createAccountWithKey(server);
    const b = await createAccountWithKey(server, { rooms: ['PAYMENT_SETTLED', 'PAYMENT_FAILED'] });
    const ca = await connectAuthed(server.wsUrl, a.token, ['ALL']);
    const cb = await connectAuthed(server.wsUrl, b.token, ['ALL']);
    const res = await publish(server, eventBody('BID_REQUEST', 'broadcast'));
    const res2 = await publish(server, eventBody('PAYMENT_FAILED', 'broadcast'));
    const [ba] = await barrier(server, a.accountId, [ca]);
    const [bb] = await barrier(server, b.accountId, [cb]);
    expect(msgIds(ba!)).toEqual([res.msg_id, res2.msg_id]);
    expect(msgIds(bb!)).toEqual([res2.msg_id]);
    // each broadcast copy carries the same msg_id but the seq of the receiving account
    expect(ba![1]!.msg_id).toBe(bb![0]!.msg_id);
  });
});

describe('idempotency', () => {
  it('re-posting an accepted msg_id answers the same result and delivers nothing again', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const body = eventBody('PAYMENT_CHARGED', [accountId], { msg_id: randomUUID() });
    const first = await api(server, 'POST', '/v1/events', body);
    expect(first.status, first.text).toBe(202);
    const second = await api(server, 'POST', '/v1/events', body);
    expect(second.status, second.text).toBe(202);
    expect(second.body).toEqual(first.body);
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual([body.msg_id]);
  });
});

describe('POST /v1/events/batch', () => {
  it('accepts several events, each delivered once, in order', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const events = (['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'PAYMENT_CHARGED'] as EventType[]).map((t) =>
      eventBody(t, [accountId], { msg_id: randomUUID() }),
    );
    const res = await publishBatch(server, events);
    expect(res.status).toBe(202);
    for (const e of events) expect(res.text).toContain(e.msg_id as string);
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual(events.map((e) => e.msg_id));
    for (let i = 1; i < before!.length; i++) expect(before![i]!.seq!).toBeGreaterThan(before![i - 1]!.seq!);
  });

  it('a batch without auth → 401', async () => {
    const res = await api(server, 'POST', '/v1/events/batch', { events: [eventBody('BID_REQUEST', [accountId])] }, { token: null });
    expect(res.status).toBe(401);
  });

  it('a batch with an invalid event is rejected (4xx) naming the problem', async () => {
    const badPayload = samplePayload('PAYMENT_FAILED');
    delete badPayload.failure_code;
    const res = await api(server, 'POST', '/v1/events/batch', {
      events: [eventBody('BID_REQUEST', [accountId]), { msg_type: 'PAYMENT_FAILED', account_ids: [accountId], payload: badPayload }],
    });
    // Either the whole batch is refused (400) or per-item results are reported (207/202 with an error item);
    // either way the failing field must be named.
    expect(res.status, res.text).toBeGreaterThanOrEqual(200);
    expect(res.text).toContain('failure_code');
  });

  it('events arriving over WebSocket are event frames only (sanity)', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    await publishBatch(server, [eventBody('PAYMENT_SETTLED', [accountId])]);
    const f = await c.next(isEventFrame);
    expect(f.msg_type).toBe('PAYMENT_SETTLED');
  });
});
