/**
 * `@tpx-realtime/client`: the TPX partner SDK (Node ≥ 20 and browsers).
 *
 *   import { TpxClient, Deduplicator } from '@tpx-realtime/client';
 *   const client = new TpxClient({ url: 'wss://rt.example/ws', token: process.env.TPX_TOKEN!, rooms: ['ALL'] });
 *   client.on('BID_REQUEST', async (e) => { ... e.payload.conversation_id ... });
 *   await client.connect();
 */
export { TpxClient } from './client.js';
export type { TpxClientOptions, TpxClientEvents, TpxClientEventName, TpxClientStats, ReconnectOptions } from './client.js';
export { Deduplicator } from './dedup.js';
export type { DeduplicatorOptions } from './dedup.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export {
  TpxError,
  TpxServerError,
  TpxAuthError,
  TpxConnectionError,
  TpxProtocolError,
  TpxHandlerError,
  WebhookVerificationError,
} from './errors.js';
export type { TpxErrorKind } from './errors.js';
export {
  verifyWebhook,
  verifyWebhookSignature,
  parseWebhookEvent,
  signWebhook,
  webhookSecretBytes,
  handleWebhook,
  createNodeWebhookHandler,
  expressWebhookHandler,
} from './webhooks.js';
export type {
  WebhookRequest,
  WebhookResponse,
  WebhookHandlerOptions,
  VerifyWebhookOptions,
  HeaderBag,
  NodeRequestLike,
  NodeResponseLike,
  ExpressRequestLike,
} from './webhooks.js';
export type { WebSocketLike, WebSocketFactory } from './transport.js';
export type {
  TpxEvent,
  DeliveryPath,
  ClientState,
  GapInfo,
  ConnectingInfo,
  OpenInfo,
  ReconnectingInfo,
  ClosedInfo,
  EventPayloadMap,
  EventType,
  Room,
} from './types.js';
export { EVENT_TYPES, ROOMS, ALL_ROOM, ErrorCode, CloseCode } from '@tpx-realtime/protocol';
