/** Shapes of the frames on the wire (SPEC §2.2). */
import type { EventType, Room } from './constants.js';

export interface EventFrame<T extends EventType = EventType, P = Record<string, unknown>> {
  msg_type: T;
  msg_id: string;
  seq: number;
  sent_at: number;
  payload: P;
}

export interface ErrorFrame {
  msg_type: 'error';
  sent_at: number;
  payload: { error: string; code: string; rooms?: string[]; [extra: string]: unknown };
}

export interface SubscribedFrame {
  msg_type: 'subscribed';
  sent_at: number;
  payload: { rooms: Room[]; resumed_from?: number; gap?: { from_seq: number; to_seq: number } };
}

export interface AuthenticatedFrame {
  msg_type: 'authenticated';
  sent_at: number;
  payload: { account_id: string; auth_method: 'api_key' };
}

/** Webhook body (SPEC §4): note `sent_at` is in SECONDS here, milliseconds on the WebSocket. */
export interface WebhookBody<T extends EventType = EventType, P = Record<string, unknown>> {
  msg_type: T;
  msg_id: string;
  sent_at: number;
  source_id: string;
  destination_id: string;
  payload: P;
}
