/** Shapes of the frames on the wire (SPEC §2.2, §2.8, §4), derived from `server-messages.ts`. */
import type { z } from 'zod';
import type { EventType } from './constants.js';
import type { EventPayloadMap } from './events.js';
import type {
  AuthenticatedFrameSchema,
  ErrorFrameSchema,
  GapFrameSchema,
  GapRangeSchema,
  ServerPingFrameSchema,
  ServerPongFrameSchema,
  SubscribedFrameSchema,
  UnsubscribedFrameSchema,
  WebhookBodySchema,
} from './server-messages.js';

/** An event frame: the payload is typed per event type (known fields only, see `loose()`). */
export type EventFrame<T extends EventType = EventType> = {
  [K in T]: { msg_type: K; msg_id: string; seq: number; sent_at: number; payload: EventPayloadMap[K] };
}[T];

export type GapRange = z.infer<typeof GapRangeSchema>;
export type AuthenticatedFrame = z.infer<typeof AuthenticatedFrameSchema>;
export type SubscribedFrame = z.infer<typeof SubscribedFrameSchema>;
export type UnsubscribedFrame = z.infer<typeof UnsubscribedFrameSchema>;
export type GapFrame = z.infer<typeof GapFrameSchema>;
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;
export type ServerPingFrame = z.infer<typeof ServerPingFrameSchema>;
export type ServerPongFrame = z.infer<typeof ServerPongFrameSchema>;
/** Every control frame the server sends. */
export type ServerControlFrame =
  | AuthenticatedFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | GapFrame
  | ErrorFrame
  | ServerPingFrame
  | ServerPongFrame;
/** Everything the server sends on `/ws`. */
export type ServerFrame = ServerControlFrame | EventFrame;

/** Webhook body (SPEC §4): note `sent_at` is in SECONDS here, milliseconds on the WebSocket. */
export type WebhookBody<T extends EventType = EventType> = {
  [K in T]: Omit<z.infer<typeof WebhookBodySchema>, 'msg_type' | 'payload'> & { msg_type: K; payload: EventPayloadMap[K] };
}[T];
