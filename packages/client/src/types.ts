/** Public types of the SDK. Type-only imports from the protocol module (no runtime cost). */
import type { EventPayloadMap, EventType, GapRange, Room } from '@tpx-realtime/protocol';
import type { TpxConnectionError, TpxError } from './errors.js';

export type { EventPayloadMap, EventType, Room };

/** Which path delivered an event: the stream (over a WebSocket or SSE) or a webhook. */
export type DeliveryPath = 'websocket' | 'sse' | 'webhook';

/**
 * One event, the same shape on both paths. `sent_at` is epoch **milliseconds** on both
 * (webhook bodies carry seconds; the SDK converts). `seq` is the event's position in the
 * account's stream, the same number on both paths (SPEC §4; absent only in webhook bodies of
 * servers older than that). `payload` declares the fields EVENTS.md lists, and only those:
 * read anything else through `loose(event.payload)`.
 */
export type TpxEvent<T extends EventType = EventType> = {
  [K in T]: {
    msg_type: K;
    msg_id: string;
    seq?: number;
    sent_at: number;
    payload: EventPayloadMap[K];
    /** The path this copy arrived by. */
    via: DeliveryPath;
    /** Webhook bodies only. */
    source_id?: string;
    destination_id?: string;
  };
}[T];

/** Minimal structural view of an event used by errors (avoids generic noise). */
export interface EventFrameLike {
  msg_type: string;
  msg_id: string;
  seq?: number;
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * Seqs `from_seq..to_seq` (inclusive) of the account's stream will never be delivered: they
 * were pruned (retention) before this client could get them. Reconcile that range, e.g. with
 * `GET /v1/events` (which reports the same gap) or your own systems.
 */
export type GapInfo = GapRange;

export interface ConnectingInfo {
  /** 0 for the first connection attempt, then 1, 2, … since the last stable connection. */
  attempt: number;
  url: string;
}

export interface OpenInfo {
  accountId: string;
  /** Rooms the server granted (union of the `subscribed` answers). */
  rooms: Room[];
  /** `after_seq` the subscription resumed from, if any. */
  resumedFrom?: number;
}

export interface ReconnectingInfo {
  attempt: number;
  delayMs: number;
  closeCode?: number;
  closeReason?: string;
  /** Why the connection was lost (`code`: `NETWORK_ERROR`, `CLOSED_<code>`, `KEEPALIVE_TIMEOUT`, `CONNECT_TIMEOUT`, …). */
  error?: TpxConnectionError;
}

export interface ClosedInfo {
  /** Why the client stopped: `close()` was called, a fatal error, or reconnect attempts were exhausted. */
  reason: 'client' | 'fatal' | 'max_attempts';
  closeCode?: number;
  error?: TpxError;
}

export type Awaitable<T> = T | Promise<T>;
