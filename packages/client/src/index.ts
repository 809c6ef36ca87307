/**
 * `@tpx-realtime/client`: the TPX partner SDK (Node ≥ 20 and browsers).
 *
 *   import { TpxClient } from '@tpx-realtime/client';
 *   const client = new TpxClient({ url: 'https://rt.example', token: process.env.TPX_API_KEY!, rooms: ['ALL'] });
 *   client.on('BID_REQUEST', async (e) => { ... e.payload.conversation_id ... });
 *   client.on('error', (err) => console.error(err.code, err.message));
 *   await client.connect();   // rejects on a fatal error (bad key, wrong URL)
 *
 * At run time this module imports only the zod-free constants of the protocol package.
 */
export { TpxClient } from './client.js';
export type { TpxClientOptions, TpxClientEvents, TpxClientEventName, TpxClientStats, ReconnectOptions } from './client.js';
export { Deduplicator } from './dedup.js';
export type { DeduplicatorOptions, DeduplicatorSnapshot } from './dedup.js';
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
export type { FetchLike } from './sse.js';
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
export type {
  AnyEventPayload,
  BidRequestPayload,
  BidOutbidPayload,
  AuctionResultPayload,
  ConditionalBidAppliedPayload,
  ConditionalBidStatusChangePayload,
  ConditionalBidExpiringSoonPayload,
  InstantCashOfferStatusChangePayload,
  TransferConfirmationReceivedPayload,
  PaymentChargedPayload,
  PaymentFailedPayload,
  PaymentSettledPayload,
  Known,
} from '@tpx-realtime/protocol';
export { EVENT_TYPES, ROOMS, ALL_ROOM, ErrorCode, CloseCode, loose } from '@tpx-realtime/protocol/core';
