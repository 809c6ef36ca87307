/**
 * Schemas of what the server sends: the control frames of the WebSocket (SPEC §2.2, §2.8) and
 * the webhook body (SPEC §4). They are the single source of the TypeScript frame types
 * (`frames.ts`), of docs/schemas/*.json and of the AsyncAPI document. The server builds these
 * frames by hand on its hot path; tests validate what it sends against these schemas.
 */
import { z } from 'zod';
import { ALL_ROOM, EVENT_TYPES } from './constants.js';

const sentAt = () => z.number().int().min(0).describe('Server send time, epoch milliseconds');
const seqNumber = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const roomList = () => z.array(z.enum([...EVENT_TYPES, ALL_ROOM]));

/** A range of seqs of the account's stream that will never be delivered (pruned by retention). */
export const GapRangeSchema = z
  .object({
    from_seq: seqNumber().min(1).describe('First seq of the range that can no longer be delivered'),
    to_seq: seqNumber().min(1).describe('Last seq of the range (inclusive)'),
  })
  .describe('Seqs of this account that will never be delivered (pruned): reconcile them, e.g. with GET /v1/events or your own records');

export const AuthenticatedFrameSchema = z.object({
  msg_type: z.literal('authenticated'),
  sent_at: sentAt(),
  payload: z.object({ account_id: z.string().min(1), auth_method: z.literal('api_key') }),
});

export const SubscribedFrameSchema = z.object({
  msg_type: z.literal('subscribed'),
  sent_at: sentAt(),
  payload: z.object({
    rooms: roomList().describe('The rooms of this request now subscribed (de-duplicated, request order)'),
    last_seq: seqNumber().describe(
      "The account's newest seq when the subscription took effect (0 if none). Every later event of the account matching " +
        'the connection’s rooms reaches it, so a client with no saved position resumes from last_seq.',
    ),
    resumed_from: seqNumber().optional().describe('Echo of after_seq when the subscribe carried one'),
    gap: GapRangeSchema.optional().describe('Events after after_seq already pruned: from_seq = after_seq + 1'),
  }),
});

export const UnsubscribedFrameSchema = z.object({
  msg_type: z.literal('unsubscribed'),
  sent_at: sentAt(),
  payload: z.object({ rooms: roomList() }),
});

export const GapFrameSchema = z
  .object({
    msg_type: z.literal('gap'),
    sent_at: sentAt(),
    payload: GapRangeSchema,
  })
  .describe('Sent at the point of the stream where the server skips seqs it can no longer deliver (pruned while a replay ran)');

export const ErrorFrameSchema = z.object({
  msg_type: z.literal('error'),
  sent_at: sentAt(),
  payload: z.looseObject({
    error: z.string().describe('Human-readable text'),
    code: z.string().describe('Machine-readable code (SPEC §2.7)'),
    rooms: z.array(z.string()).optional().describe('INVALID_ROOM / NO_VALID_ROOMS: the requested names'),
  }),
});

export const ServerPingFrameSchema = z.object({ msg_type: z.literal('ping'), sent_at: sentAt(), payload: z.object({}) });
export const ServerPongFrameSchema = z.object({ msg_type: z.literal('pong'), sent_at: sentAt(), payload: z.object({}) });

/** Webhook body (SPEC §4). `sent_at` is in unix SECONDS here (milliseconds on the WebSocket). */
export const WebhookBodySchema = z.object({
  msg_type: z.enum(EVENT_TYPES),
  msg_id: z.string().min(1).describe('Event id: equals the webhook-id header and the msg_id of the WebSocket frame'),
  seq: seqNumber()
    .min(1)
    .describe("The event's seq in the receiving account's stream: the same number its WebSocket frame carries"),
  sent_at: z.number().int().min(0).describe('Unix SECONDS'),
  source_id: z.string(),
  destination_id: z.string().describe("The account's partner_id, else its account_id"),
  payload: z.looseObject({}),
});

/** Names and schemas of the server frames, in document order (JSON Schema export). */
export const SERVER_FRAME_SCHEMAS = {
  AuthenticatedFrame: AuthenticatedFrameSchema,
  SubscribedFrame: SubscribedFrameSchema,
  UnsubscribedFrame: UnsubscribedFrameSchema,
  GapFrame: GapFrameSchema,
  ErrorFrame: ErrorFrameSchema,
  ServerPingFrame: ServerPingFrameSchema,
  ServerPongFrame: ServerPongFrameSchema,
} as const;
