/**
 * Schemas of the messages a client sends (SPEC §2.1), and the one parser the gateway uses.
 * The schemas are zod so they double as TypeScript types and as exportable JSON Schema.
 */
import { z } from 'zod';
import { ErrorCode } from './constants.js';

/** Rooms are validated for existence by the gateway (INVALID_ROOM), not here. */
const roomList = z.array(z.string().max(64)).min(1).max(64);
const emptyPayload = z.union([z.object({}).passthrough(), z.null()]).optional();

export const AuthenticateMessage = z.object({
  msg_type: z.literal('authenticate'),
  // Any string is a token as far as the message's shape goes: an empty, overlong or otherwise
  // malformed one is answered AUTH_INVALID_API_KEY and 4001 by the key lookup (SPEC §2.5), not
  // INVALID_MESSAGE. The frame limit (TPX_MAX_MESSAGE_BYTES) bounds its length.
  payload: z.object({ token: z.string() }),
});
export const SubscribeMessage = z.object({
  msg_type: z.literal('subscribe'),
  payload: z.object({
    rooms: roomList,
    after_seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  }),
});
export const UnsubscribeMessage = z.object({
  msg_type: z.literal('unsubscribe'),
  payload: z.object({ rooms: roomList }),
});
export const PingMessage = z.object({ msg_type: z.literal('ping'), payload: emptyPayload });
export const PongMessage = z.object({ msg_type: z.literal('pong'), payload: emptyPayload });

export const ClientMessage = z.discriminatedUnion('msg_type', [
  AuthenticateMessage,
  SubscribeMessage,
  UnsubscribeMessage,
  PingMessage,
  PongMessage,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type AuthenticateMessage = z.infer<typeof AuthenticateMessage>;
export type SubscribeMessage = z.infer<typeof SubscribeMessage>;
export type UnsubscribeMessage = z.infer<typeof UnsubscribeMessage>;

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | {
      ok: false;
      code: typeof ErrorCode.INVALID_JSON | typeof ErrorCode.INVALID_MESSAGE;
      error: string;
      /** The message's msg_type when it is a known one (the shape of its payload was wrong). */
      msgType?: string;
    };

const KNOWN = new Set(['authenticate', 'subscribe', 'unsubscribe', 'ping', 'pong']);

/** Parse one inbound text frame. Never throws. */
export function parseClientMessage(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: ErrorCode.INVALID_JSON, error: 'Frame is not valid JSON' };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, code: ErrorCode.INVALID_MESSAGE, error: 'Message must be a JSON object' };
  }
  const msgType = (raw as { msg_type?: unknown }).msg_type;
  if (typeof msgType !== 'string') {
    return { ok: false, code: ErrorCode.INVALID_MESSAGE, error: 'msg_type is required and must be a string' };
  }
  if (!KNOWN.has(msgType)) {
    return { ok: false, code: ErrorCode.INVALID_MESSAGE, error: `Unknown msg_type: ${msgType.slice(0, 64)}` };
  }
  const quick = msgType === 'authenticate' ? quickAuthenticate(raw) : msgType === 'subscribe' ? quickSubscribe(raw) : null;
  if (quick) return { ok: true, message: quick };
  const parsed = ClientMessage.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? issue.path.join('.') : 'message';
    return { ok: false, code: ErrorCode.INVALID_MESSAGE, error: `Invalid ${msgType} message: ${where}: ${issue?.message ?? 'invalid'}`, msgType };
  }
  return { ok: true, message: parsed.data };
}

/*
 * Every connection sends one `authenticate` and one `subscribe`: for those two, a well-formed
 * message is recognised without zod (a schema walk was ≈ 7 % of a connection's server CPU on a
 * cold server, docs/performance.md round 3). Each accepts exactly what its schema above accepts
 * and returns what zod would (unknown keys stripped); anything else returns null and goes
 * through the schema, which also words the error. test/protocol/client-messages.test.ts checks
 * the agreement on generated messages.
 */
const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function quickAuthenticate(raw: object): AuthenticateMessage | null {
  const payload = (raw as { payload?: unknown }).payload;
  if (!isPlainObject(payload)) return null;
  const token = payload.token;
  if (typeof token !== 'string') return null;
  return { msg_type: 'authenticate', payload: { token } };
}

function quickSubscribe(raw: object): SubscribeMessage | null {
  const payload = (raw as { payload?: unknown }).payload;
  if (!isPlainObject(payload)) return null;
  const rooms = payload.rooms;
  if (!Array.isArray(rooms) || rooms.length < 1 || rooms.length > 64) return null;
  for (const room of rooms) if (typeof room !== 'string' || room.length > 64) return null;
  const afterSeq = payload.after_seq;
  if (afterSeq === undefined) return { msg_type: 'subscribe', payload: { rooms: rooms as string[] } };
  if (typeof afterSeq !== 'number' || !Number.isSafeInteger(afterSeq) || afterSeq < 0) return null;
  return { msg_type: 'subscribe', payload: { rooms: rooms as string[], after_seq: afterSeq } };
}
