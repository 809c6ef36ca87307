/**
 * The exact request of one webhook attempt (SPEC §4), built the same way for sending and for
 * showing operators what was (or will be) sent: the body and the signed Standard Webhooks
 * headers follow from the event, the endpoint and the attempt's time alone.
 */
import type { Account, AccountEvent, WebhookEndpoint } from '../store/types.js';
import { webhookHeaders } from './signing.js';

export const USER_AGENT = 'tpx-webhooks/1';

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** What a request is made of: a claimed delivery, or a delivery's detail with its event. */
export interface RequestSource {
  endpoint: WebhookEndpoint;
  account: Pick<Account, 'account_id' | 'partner_id'>;
  event: AccountEvent;
}

/**
 * The exact body bytes: `{ msg_type, msg_id, seq, sent_at, source_id, destination_id, payload }`
 * (SPEC §4), with payload_json spliced in as stored, never re-serialized. `seq` is the event's
 * seq in the account's stream, the number its WebSocket frame carries, so a partner orders,
 * de-duplicates and detects gaps across both paths alike.
 */
export function buildWebhookBody(src: Pick<RequestSource, 'event' | 'account'>, sentAtSec: number, defaultSourceId: string): string {
  const { event, account } = src;
  return (
    `{"msg_type":${JSON.stringify(event.msg_type)},"msg_id":${JSON.stringify(event.msg_id)},"seq":${event.seq},"sent_at":${sentAtSec},` +
    `"source_id":${JSON.stringify(event.source_id ?? defaultSourceId)},` +
    `"destination_id":${JSON.stringify(account.partner_id ?? account.account_id)},"payload":${event.payload_json}}`
  );
}

/** Secrets that sign at `nowMs`: the current one, plus the previous one while its grace lasts. */
export function signingSecrets(endpoint: WebhookEndpoint, nowMs: number): string[] {
  const secrets = [endpoint.secret];
  if (endpoint.previous_secret && endpoint.previous_secret_expires_at && Date.parse(endpoint.previous_secret_expires_at) > nowMs) {
    secrets.push(endpoint.previous_secret);
  }
  return secrets;
}

/** The request of an attempt made at `atMs` (sent_at and webhook-timestamp are its unix seconds). */
export function buildWebhookRequest(src: RequestSource, atMs: number, defaultSourceId: string): WebhookRequest {
  const ts = Math.floor(atMs / 1000);
  const body = buildWebhookBody(src, ts, defaultSourceId);
  return {
    url: src.endpoint.url,
    headers: {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      ...webhookHeaders({ msgId: src.event.msg_id, timestamp: ts, body, secrets: signingSecrets(src.endpoint, atMs) }),
    },
    body,
  };
}
