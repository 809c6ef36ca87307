import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientMessage, ErrorCode, parseClientMessage } from '@tpx-realtime/protocol';

function expectError(text: string, code: string) {
  const r = parseClientMessage(text);
  expect(r.ok, text).toBe(false);
  if (!r.ok) {
    expect(r.code, text).toBe(code);
    expect(r.error.length).toBeGreaterThan(0);
  }
}

describe('parseClientMessage: rejects', () => {
  it.each(['', 'not json', '{"msg_type":', "{'msg_type':'ping'}", '{"msg_type":"ping"} trailing'])('INVALID_JSON for %j', (text) => {
    expectError(text, ErrorCode.INVALID_JSON);
  });

  it.each([
    ['array', '[{"msg_type":"ping"}]'],
    ['null', 'null'],
    ['number', '42'],
    ['string', '"ping"'],
    ['missing msg_type', '{"payload":{}}'],
    ['non-string msg_type', '{"msg_type":5}'],
    ['unknown msg_type', '{"msg_type":"publish","payload":{}}'],
    ['msg_type is case-sensitive', '{"msg_type":"PING"}'],
    ['server-only msg_type', '{"msg_type":"subscribed","payload":{"rooms":["ALL"]}}'],
    ['authenticate without payload', '{"msg_type":"authenticate"}'],
    ['authenticate without token', '{"msg_type":"authenticate","payload":{}}'],
    ['authenticate with numeric token', '{"msg_type":"authenticate","payload":{"token":123}}'],
    ['subscribe without rooms', '{"msg_type":"subscribe","payload":{}}'],
    ['subscribe rooms not array', '{"msg_type":"subscribe","payload":{"rooms":"ALL"}}'],
    ['subscribe rooms empty', '{"msg_type":"subscribe","payload":{"rooms":[]}}'],
    ['subscribe rooms non-string', '{"msg_type":"subscribe","payload":{"rooms":[1]}}'],
    ['subscribe negative after_seq', '{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":-1}}'],
    ['subscribe fractional after_seq', '{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":1.5}}'],
    ['subscribe string after_seq', '{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":"3"}}'],
    ['unsubscribe without payload', '{"msg_type":"unsubscribe"}'],
    ['ping with array payload', '{"msg_type":"ping","payload":[]}'],
    ['pong with string payload', '{"msg_type":"pong","payload":"x"}'],
  ])('INVALID_MESSAGE for %s', (_name, text) => {
    expectError(text, ErrorCode.INVALID_MESSAGE);
  });

  it('never throws on odd input', () => {
    for (const text of ['\u0000', '{"__proto__":{"x":1}}', '{"msg_type":"ping","payload":{"__proto__":null}}', 'x'.repeat(10_000)]) {
      expect(() => parseClientMessage(text)).not.toThrow();
    }
  });
});

describe('parseClientMessage: accepts', () => {
  it('authenticate', () => {
    const r = parseClientMessage('{"msg_type":"authenticate","payload":{"token":"tp_live_abc"}}');
    expect(r).toEqual({ ok: true, message: { msg_type: 'authenticate', payload: { token: 'tp_live_abc' } } });
  });

  it('subscribe, with and without after_seq', () => {
    const a = parseClientMessage('{"msg_type":"subscribe","payload":{"rooms":["BID_REQUEST","ALL"]}}');
    expect(a.ok && a.message).toEqual({ msg_type: 'subscribe', payload: { rooms: ['BID_REQUEST', 'ALL'] } });
    const b = parseClientMessage('{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":41}}');
    expect(b.ok && b.message).toEqual({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: 41 } });
    const c = parseClientMessage('{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":0}}');
    expect(c.ok).toBe(true);
  });

  it('subscribe leaves room existence to the gateway (INVALID_ROOM is not a parse error)', () => {
    const r = parseClientMessage('{"msg_type":"subscribe","payload":{"rooms":["NOPE"]}}');
    expect(r.ok).toBe(true);
  });

  it('unsubscribe', () => {
    const r = parseClientMessage('{"msg_type":"unsubscribe","payload":{"rooms":["PAYMENT_FAILED"]}}');
    expect(r.ok && r.message).toEqual({ msg_type: 'unsubscribe', payload: { rooms: ['PAYMENT_FAILED'] } });
  });

  it.each([
    '{"msg_type":"ping"}',
    '{"msg_type":"ping","payload":{}}',
    '{"msg_type":"ping","payload":null}',
    '{"msg_type":"pong"}',
    '{"msg_type":"pong","payload":{}}',
    '{"msg_type":"pong","payload":null}',
  ])('ping/pong %s', (text) => {
    const r = parseClientMessage(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.message.msg_type).toBe(JSON.parse(text).msg_type);
  });

  it('ignores a client-sent sent_at', () => {
    const r = parseClientMessage('{"msg_type":"ping","sent_at":123,"payload":{}}');
    expect(r.ok).toBe(true);
  });
});

describe('parseClientMessage: the schema-free path for authenticate and subscribe', () => {
  // parseClientMessage recognises well-formed authenticate/subscribe without zod; it must accept
  // exactly what the schema accepts and return what zod returns (unknown keys stripped).
  const value = fc.oneof(fc.string({ maxLength: 70 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 70 }), { maxLength: 3 }));
  const rooms = fc.oneof(
    fc.array(fc.oneof(fc.string({ maxLength: 66 }), fc.constantFrom('ALL', 'BID_REQUEST', 'x'.repeat(64), 'y'.repeat(65))), { minLength: 0, maxLength: 66 }),
    value,
  );
  const afterSeq = fc.oneof(fc.constant(undefined), fc.nat(), fc.integer({ min: -5, max: 5 }), fc.constantFrom(-0, 0.5, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, '5', null, true, [], {}));
  const token = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('', 'x'.repeat(512), 'x'.repeat(513)), value);
  const message = fc.oneof(
    fc.record({ msg_type: fc.constant('authenticate'), payload: fc.oneof(fc.record({ token, extra: value }, { requiredKeys: [] }), value), top: value }, { requiredKeys: ['msg_type'] }),
    fc.record({ msg_type: fc.constant('subscribe'), payload: fc.oneof(fc.record({ rooms, after_seq: afterSeq, extra: value }, { requiredKeys: [] }), value), top: value }, { requiredKeys: ['msg_type'] }),
  );

  it('agrees with the zod schema on generated messages', () => {
    fc.assert(
      fc.property(message, (m) => {
        const text = JSON.stringify(m);
        const r = parseClientMessage(text);
        const z = ClientMessage.safeParse(JSON.parse(text));
        expect(r.ok).toBe(z.success);
        if (r.ok && z.success) expect(r.message).toEqual(z.data);
      }),
      { numRuns: 5000, seed: 13 },
    );
  });
});
