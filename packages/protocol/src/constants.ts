/**
 * Wire-level constants of the TPX WebSocket protocol (SPEC §2). Pure data, no I/O:
 * shared by the gateway, the publish API and the partner SDK (browser and Node).
 */

/** The 11 event types; each is also a room of the same name (SPEC §2.3). */
export const EVENT_TYPES = [
  'BID_REQUEST',
  'BID_OUTBID',
  'AUCTION_RESULT',
  'CONDITIONAL_BID_APPLIED',
  'CONDITIONAL_BID_STATUS_CHANGE',
  'CONDITIONAL_BID_EXPIRING_SOON',
  'INSTANT_CASH_OFFER_STATUS_CHANGE',
  'TRANSFER_CONFIRMATION_RECEIVED',
  'PAYMENT_CHARGED',
  'PAYMENT_FAILED',
  'PAYMENT_SETTLED',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** `ALL` subscribes to every event type the account may access. */
export const ALL_ROOM = 'ALL' as const;
export type Room = EventType | typeof ALL_ROOM;
export const ROOMS: readonly Room[] = [...EVENT_TYPES, ALL_ROOM];

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);
const ROOM_SET: ReadonlySet<string> = new Set(ROOMS);
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && EVENT_TYPE_SET.has(value);
}
export function isRoom(value: unknown): value is Room {
  return typeof value === 'string' && ROOM_SET.has(value);
}

/** Messages a client may send (SPEC §2.1). */
export const CLIENT_MSG_TYPES = ['authenticate', 'subscribe', 'unsubscribe', 'ping', 'pong'] as const;
export type ClientMsgType = (typeof CLIENT_MSG_TYPES)[number];

/** Control messages the server sends (SPEC §2.2); event frames use the event type as msg_type. */
export const SERVER_CONTROL_MSG_TYPES = [
  'authenticated',
  'subscribed',
  'unsubscribed',
  'ping',
  'pong',
  'error',
  'gap',
] as const;
export type ServerControlMsgType = (typeof SERVER_CONTROL_MSG_TYPES)[number];

/** Error codes carried by `error` frames (SPEC §2.7) and HTTP error bodies (SPEC §3). */
export const ErrorCode = {
  AUTH_INVALID_API_KEY: 'AUTH_INVALID_API_KEY',
  AUTH_API_KEY_INACTIVE: 'AUTH_API_KEY_INACTIVE',
  AUTH_API_KEY_EXPIRED: 'AUTH_API_KEY_EXPIRED',
  AUTH_REQUIRED: 'AUTH_REQUIRED',
  NO_VALID_ROOMS: 'NO_VALID_ROOMS',
  INVALID_ROOM: 'INVALID_ROOM',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  INVALID_JSON: 'INVALID_JSON',
  RATE_LIMITED: 'RATE_LIMITED',
  /** SSE only: the outbound limit was reached, the stream ends (the WebSocket closes with 4009). */
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  // HTTP-only codes
  UNAUTHORIZED: 'UNAUTHORIZED',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  UNKNOWN_ACCOUNT: 'UNKNOWN_ACCOUNT',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSAFE_WEBHOOK_URL: 'UNSAFE_WEBHOOK_URL',
  INTERNAL: 'INTERNAL',
  UNAVAILABLE: 'UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes (SPEC §2.9). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  AUTH_FAILED: 4001,
  AUTH_TIMEOUT: 4002,
  KEEPALIVE_TIMEOUT: 4003,
  SLOW_CONSUMER: 4009,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes after which a client should reconnect (SDK policy, SPEC §2.9). 4001 is fatal. */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([1001, 1005, 1006, 1011, 1012, 1013, 4002, 4003, 4009]);
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4001]);

export const API_KEY_PREFIX = 'tp_live_';
export const AUTH_METHOD_API_KEY = 'api_key';
