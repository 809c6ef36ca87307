/**
 * Seeded client frames for the WebSocket fuzz test, and the oracle that says what the server must
 * answer to each, written from SPEC §2.1, §2.5, §2.3 and §2.7 alone (not from the server's code):
 *
 * - a frame over TPX_MAX_MESSAGE_BYTES closes the connection with 1009;
 * - a text frame that is not UTF-8 closes it with 1007 (RFC 6455 §8.1, the WebSocket layer);
 * - a binary frame, JSON that is not an object, a missing/unknown `msg_type` or a payload of the
 *   wrong shape → `INVALID_MESSAGE`; text that is not JSON → `INVALID_JSON`;
 * - before authentication: `subscribe`/`unsubscribe` of any payload → `AUTH_REQUIRED` (only
 *   authenticate, ping and pong are accepted); an `authenticate` whose token is a string that is
 *   no key (empty and malformed ones too) → `AUTH_INVALID_API_KEY` and close 4001;
 * - after: `authenticate` again → `INVALID_MESSAGE`; unknown room names → `INVALID_ROOM`; valid
 *   names none of which the account may access → `NO_VALID_ROOMS`; else `subscribed`/`unsubscribed`;
 * - `ping` → `pong`; a well-formed `pong` gets no answer.
 */
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { EVENT_TYPES } from '../helpers/payloads.js';

export const ROOMS = [...EVENT_TYPES, 'ALL'];
/** SPEC §2.7's codes (RATE_LIMITED with 1008 included). */
export const SPEC_ERROR_CODES = new Set([
  'AUTH_INVALID_API_KEY',
  'AUTH_API_KEY_INACTIVE',
  'AUTH_API_KEY_EXPIRED',
  'AUTH_REQUIRED',
  'NO_VALID_ROOMS',
  'INVALID_ROOM',
  'INVALID_MESSAGE',
  'INVALID_JSON',
  'RATE_LIMITED',
]);

export interface FuzzFrame {
  /** What the generator meant to make (for the figures and failure messages). */
  kind: string;
  data: string | Buffer;
  binary: boolean;
}

export type Expectation =
  | { reply: 'none' }
  | { reply: 'frame'; msg_type: string }
  | { reply: 'error'; code: string; thenClose?: number }
  | { reply: 'close'; code: number };

export interface OracleContext {
  authenticated: boolean;
  /** Rooms (event types) the fuzzed account may access. */
  accessible: ReadonlySet<string>;
  maxMessageBytes: number;
}

// ---------------------------------------------------------------------------
// Generators

const anyJson = fc.jsonValue({ maxDepth: 3 });
const room = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ROOMS) },
  { weight: 2, arbitrary: fc.constantFrom('all', 'bid_request', '', ' ALL', 'ALL ', 'BID_REQUEST\u0000', 'PAYMENT_SETTLED\n') },
  { weight: 2, arbitrary: fc.string({ maxLength: 70 }) },
  { weight: 1, arbitrary: anyJson },
);
const rooms = fc.oneof(
  { weight: 8, arbitrary: fc.array(room, { minLength: 1, maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...ROOMS), { minLength: 60, maxLength: 70 }) },
  { weight: 1, arbitrary: fc.constant([]) },
  { weight: 1, arbitrary: anyJson },
);
const afterSeq = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 1_000_000 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, -0, 0.5, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, '5', null, true, [], {}) },
);
const token = fc.oneof(
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 30 }).map((s) => `tp_live_${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(512), 'x'.repeat(513), 'tp_live_\u0000\u202e') },
  { weight: 1, arbitrary: anyJson },
);
const payload = fc.oneof(
  { weight: 4, arbitrary: fc.record({ rooms, after_seq: afterSeq, extra: anyJson }, { requiredKeys: ['rooms'] }) },
  { weight: 1, arbitrary: fc.record({ rooms, after_seq: afterSeq }, { requiredKeys: [] }) },
  { weight: 3, arbitrary: fc.record({ token }, { requiredKeys: ['token'] }) },
  { weight: 1, arbitrary: fc.record({ token, x: anyJson }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.constantFrom({}, null, [], 'payload', 0) },
  { weight: 1, arbitrary: anyJson },
);
const msgType = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('authenticate', 'subscribe', 'unsubscribe', 'ping', 'pong') },
  { weight: 1, arbitrary: fc.constantFrom('AUTHENTICATE', 'Subscribe', '', 'BID_REQUEST', 'error', 'subscribed', 'ping ', '__proto__') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: anyJson },
);
const message = fc
  .record({ msg_type: msgType, payload, sent_at: fc.oneof(fc.nat(), fc.string()), msg_id: fc.uuid() }, { requiredKeys: [] })
  .map((m) => JSON.stringify(m));

/** Messages whose msg_type and payload belong together, with one or two fields off. */
const typed = fc
  .oneof(
    fc.record({ msg_type: fc.constant('authenticate'), payload: fc.record({ token }) }),
    fc.record({ msg_type: fc.constant('subscribe'), payload: fc.record({ rooms, after_seq: afterSeq }, { requiredKeys: ['rooms'] }) }),
    fc.record({ msg_type: fc.constant('unsubscribe'), payload: fc.record({ rooms }) }),
    fc.record({ msg_type: fc.constantFrom('ping', 'pong'), payload: fc.constantFrom(undefined, null, {}, { x: 1 }, [], 'x') }, { requiredKeys: ['msg_type'] }),
  )
  .map((m) => JSON.stringify(m));

/** `depth` nested arrays or objects, optionally as the payload of an otherwise valid message. */
const deep = fc.record({ depth: fc.integer({ min: 50, max: 14_000 }), objects: fc.boolean(), wrap: fc.constantFrom('none', 'ping', 'subscribe', 'msg_type') }).map(({ depth, objects, wrap }) => {
  const inner = objects ? '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth);
  if (wrap === 'ping') return `{"msg_type":"ping","payload":${objects ? inner : `{"a":${inner}}`}}`;
  if (wrap === 'subscribe') return `{"msg_type":"subscribe","payload":{"rooms":["ALL"],"after_seq":${inner}}}`;
  if (wrap === 'msg_type') return `{"msg_type":${inner}}`;
  return inner;
});

const controlChars = fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 });

const invalidUtf8 = fc
  .record({ before: fc.string({ maxLength: 20 }), bad: fc.constantFrom([0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]) })
  .map(({ before, bad }) => Buffer.concat([Buffer.from(`{"msg_type":"ping","x":"${before.replace(/["\\]/g, '')}`), Buffer.from(bad), Buffer.from('"}')]));

export const frameArbitrary: fc.Arbitrary<FuzzFrame> = fc.oneof(
  { weight: 30, arbitrary: message.map((data) => ({ kind: 'message', data, binary: false })) },
  { weight: 30, arbitrary: typed.map((data) => ({ kind: 'typed-message', data, binary: false })) },
  { weight: 6, arbitrary: fc.json({ maxDepth: 4 }).map((data) => ({ kind: 'random-json', data, binary: false })) },
  { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((data) => ({ kind: 'random-text', data, binary: false })) },
  {
    weight: 8,
    arbitrary: fc.tuple(message, fc.nat(), fc.constantFrom('truncate', 'insert', 'quote')).map(([m, at, how]) => {
      const i = at % (m.length + 1);
      const data = how === 'truncate' ? m.slice(0, i) : how === 'insert' ? m.slice(0, i) + '\u0001,}' + m.slice(i) : m.replace(/"/g, "'");
      return { kind: `corrupt-${how}`, data, binary: false };
    }),
  },
  { weight: 3, arbitrary: controlChars.map((c) => ({ kind: 'control-chars', data: `{"msg_type":"ping"${c}}`, binary: false })) },
  { weight: 2, arbitrary: deep.map((data) => ({ kind: 'deep', data, binary: false })) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => ({ kind: 'binary', data: Buffer.from(a), binary: true })) },
  { weight: 2, arbitrary: invalidUtf8.map((data) => ({ kind: 'invalid-utf8', data, binary: false })) },
  {
    weight: 1,
    arbitrary: fc.record({ len: fc.integer({ min: 60_000, max: 80_000 }), auth: fc.boolean() }).map(({ len, auth }) => ({
      kind: 'huge',
      data: auth ? `{"msg_type":"authenticate","payload":{"token":"${'t'.repeat(len)}"}}` : `{"msg_type":"ping","payload":{"pad":"${'p'.repeat(len)}"}}`,
      binary: false,
    })),
  },
);

// ---------------------------------------------------------------------------
// Oracle

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const KNOWN = new Set(['authenticate', 'subscribe', 'unsubscribe', 'ping', 'pong']);
const INVALID_MESSAGE = { reply: 'error', code: 'INVALID_MESSAGE' } as const;

function validRooms(v: unknown): v is string[] {
  return Array.isArray(v) && v.length >= 1 && v.length <= 64 && v.every((r) => typeof r === 'string' && r.length <= 64);
}

function validAfterSeq(v: unknown): boolean {
  return v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER);
}

export function expectationFor(frame: FuzzFrame, ctx: OracleContext): Expectation {
  const bytes = typeof frame.data === 'string' ? Buffer.from(frame.data, 'utf8') : frame.data;
  if (bytes.length > ctx.maxMessageBytes) return { reply: 'close', code: 1009 };
  if (frame.binary) return INVALID_MESSAGE;
  // Node 20 has buffer.isUtf8: a strict validator, as RFC 6455 requires of the server.
  if (!isUtf8(bytes)) return { reply: 'close', code: 1007 };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { reply: 'error', code: 'INVALID_JSON' };
  }
  if (!isPlainObject(value)) return INVALID_MESSAGE;
  const type = value.msg_type;
  if (typeof type !== 'string' || !KNOWN.has(type)) return INVALID_MESSAGE;
  const p = value.payload;
  if (type === 'ping' || type === 'pong') {
    if (!(p === undefined || p === null || isPlainObject(p))) return INVALID_MESSAGE;
    return type === 'ping' ? { reply: 'frame', msg_type: 'pong' } : { reply: 'none' };
  }
  if (type !== 'authenticate' && !ctx.authenticated) return { reply: 'error', code: 'AUTH_REQUIRED' };
  if (!isPlainObject(p)) return INVALID_MESSAGE;
  if (type === 'authenticate') {
    if (typeof p.token !== 'string') return INVALID_MESSAGE;
    return ctx.authenticated ? INVALID_MESSAGE : { reply: 'error', code: 'AUTH_INVALID_API_KEY', thenClose: 4001 };
  }
  if (!validRooms(p.rooms)) return INVALID_MESSAGE;
  if (type === 'subscribe' && !validAfterSeq(p.after_seq)) return INVALID_MESSAGE;
  if (p.rooms.some((r) => !ROOMS.includes(r))) return { reply: 'error', code: 'INVALID_ROOM' };
  if (type === 'unsubscribe') return { reply: 'frame', msg_type: 'unsubscribed' };
  const granted = p.rooms.some((r) => r === 'ALL' ? ctx.accessible.size > 0 : ctx.accessible.has(r));
  return granted ? { reply: 'frame', msg_type: 'subscribed' } : { reply: 'error', code: 'NO_VALID_ROOMS' };
}
