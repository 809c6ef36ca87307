/**
 * Row shapes and their mapping to the seam's objects, shared by both stores so a row means the
 * same thing whichever database it came from. The column lists are plain SQL both dialects
 * accept; the few type differences (rooms as JSON text or text[], enabled as 0/1 or boolean)
 * are absorbed here.
 */
import type { EventType } from '@tpx-realtime/protocol';
import type { Account, AccountEvent, ApiKey, ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryDetail, DeliveryStatus, WebhookEndpoint } from '../types.js';
import { iso, isoOrNull } from './time.js';

export const ACCOUNT_COLS = 'account_id, name, partner_id, rooms, created_at';
export const KEY_COLS = 'key_id, account_id, name, token_prefix, status, expires_at, created_at, last_used_at';
export const WEBHOOK_COLS =
  'webhook_id, account_id, url, secret, previous_secret, previous_secret_expires_at, enabled, disabled_reason, description, failing_since, created_at, updated_at';
export const DELIVERY_COLS =
  'delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, lease_owner, lease_until, last_status_code, last_error, created_at, completed_at';
export const ATTEMPT_COLS = 'attempt_id, delivery_id, attempted_at, status_code, latency_ms, error, outcome, response_excerpt';

const prefixed = (cols: string, table: string, as = '') =>
  cols
    .split(', ')
    .map((c) => `${table}.${c}${as ? ` AS ${as}${c}` : ''}`)
    .join(', ');

/** A token lookup: the key joined with its account (no placeholders: callers add `WHERE k.token_hash = …`). */
export const KEY_LOOKUP_SELECT = `SELECT ${prefixed(KEY_COLS, 'k')}, k.token_hash,
  a.name AS a_name, a.partner_id AS a_partner_id, a.rooms AS a_rooms, a.created_at AS a_created_at
  FROM api_keys k JOIN accounts a ON a.account_id = k.account_id`;

/** A delivery with its endpoint's URL, for listings (callers add WHERE / ORDER BY). */
export const DELIVERY_LIST_SELECT = `SELECT ${prefixed(DELIVERY_COLS, 'd')}, w.url AS webhook_url
  FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id`;

/** A delivery with its endpoint, account and event (callers add the WHERE clause). */
export const DELIVERY_JOIN_SELECT = `SELECT ${prefixed(DELIVERY_COLS, 'd')}, w.url AS webhook_url,
  a.partner_id AS a_partner_id, e.event_id AS e_event_id, e.payload_json AS e_payload_json, e.source_id AS e_source_id,
  e.created_at_ms AS e_created_at_ms, ${prefixed(WEBHOOK_COLS, 'w', 'w_')}
  FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id JOIN accounts a ON a.account_id = d.account_id
  LEFT JOIN events e ON e.event_id = d.event_id`;

export interface AccountRow {
  account_id: string;
  name: string | null;
  partner_id: string | null;
  /** JSON text in SQLite, text[] in PostgreSQL. */
  rooms: string | string[];
  created_at: string;
}

/** API key rows are selected with exactly the ApiKey columns. */
export type ApiKeyRow = ApiKey;

export type KeyLookupRow = ApiKeyRow & {
  token_hash: Uint8Array;
  a_name: string | null;
  a_partner_id: string | null;
  a_rooms: string | string[];
  a_created_at: string;
};

export interface WebhookRow {
  webhook_id: string;
  account_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: string | null;
  /** 0/1 in SQLite, boolean in PostgreSQL. */
  enabled: number | boolean;
  disabled_reason: string | null;
  description: string | null;
  failing_since: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeliveryRow {
  delivery_id: string;
  webhook_id: string;
  webhook_url: string;
  account_id: string;
  event_id: number;
  msg_id: string;
  msg_type: EventType;
  seq: number;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  completed_at: number | null;
}

export type DeliveryJoinRow = DeliveryRow & {
  a_partner_id: string | null;
  e_event_id: number | null;
  e_payload_json: string | null;
  e_source_id: string | null;
  e_created_at_ms: number | null;
} & { [K in keyof WebhookRow as `w_${K}`]: WebhookRow[K] };

export type AttemptRow = DeliveryAttempt;

export interface EventRow {
  seq: number;
  created_at_ms: number;
  msg_id: string;
  msg_type: EventType;
  payload_json: string;
  source_id: string | null;
}

const roomsOf = (rooms: string | string[]): EventType[] => (typeof rooms === 'string' ? (JSON.parse(rooms) as EventType[]) : ([...rooms] as EventType[]));

export function toAccount(r: AccountRow): Account {
  return { account_id: r.account_id, name: r.name, partner_id: r.partner_id, rooms: roomsOf(r.rooms), created_at: r.created_at };
}

/** The account half of a token lookup row. */
export function lookupAccount(r: KeyLookupRow): Account {
  return toAccount({ account_id: r.account_id, name: r.a_name, partner_id: r.a_partner_id, rooms: r.a_rooms, created_at: r.a_created_at });
}

export function toApiKey(r: ApiKeyRow): ApiKey {
  return {
    key_id: r.key_id,
    account_id: r.account_id,
    name: r.name,
    token_prefix: r.token_prefix,
    status: r.status,
    expires_at: r.expires_at,
    created_at: r.created_at,
    last_used_at: r.last_used_at,
  };
}

export function toWebhook(r: WebhookRow): WebhookEndpoint {
  return {
    webhook_id: r.webhook_id,
    account_id: r.account_id,
    url: r.url,
    secret: r.secret,
    previous_secret: r.previous_secret,
    previous_secret_expires_at: r.previous_secret_expires_at,
    enabled: r.enabled === true || r.enabled === 1,
    disabled_reason: r.disabled_reason,
    description: r.description,
    failing_since: r.failing_since,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export function toDelivery(r: DeliveryRow): Delivery {
  return {
    delivery_id: r.delivery_id,
    webhook_id: r.webhook_id,
    webhook_url: r.webhook_url,
    account_id: r.account_id,
    msg_id: r.msg_id,
    msg_type: r.msg_type,
    seq: r.seq,
    status: r.status,
    attempt_count: r.attempt_count,
    next_attempt_at: isoOrNull(r.next_attempt_at),
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    created_at: iso(r.created_at),
    completed_at: isoOrNull(r.completed_at),
  };
}

export function toAttempt(r: AttemptRow): DeliveryAttempt {
  return {
    attempt_id: r.attempt_id,
    delivery_id: r.delivery_id,
    attempted_at: r.attempted_at,
    status_code: r.status_code,
    latency_ms: r.latency_ms,
    error: r.error,
    outcome: r.outcome,
    response_excerpt: r.response_excerpt ?? null,
  };
}

export function toAccountEvent(accountId: string, r: EventRow): AccountEvent {
  return {
    account_id: accountId,
    seq: r.seq,
    msg_id: r.msg_id,
    msg_type: r.msg_type,
    payload_json: r.payload_json,
    source_id: r.source_id,
    created_at_ms: r.created_at_ms,
  };
}

function joinedEndpoint(d: DeliveryJoinRow): WebhookEndpoint {
  return toWebhook({
    webhook_id: d.w_webhook_id,
    account_id: d.w_account_id,
    url: d.w_url,
    secret: d.w_secret,
    previous_secret: d.w_previous_secret,
    previous_secret_expires_at: d.w_previous_secret_expires_at,
    enabled: d.w_enabled,
    disabled_reason: d.w_disabled_reason,
    description: d.w_description,
    failing_since: d.w_failing_since,
    created_at: d.w_created_at,
    updated_at: d.w_updated_at,
  });
}

function joinedEvent(d: DeliveryJoinRow): AccountEvent | null {
  if (d.e_event_id === null) return null;
  return toAccountEvent(d.account_id, {
    seq: d.seq,
    msg_id: d.msg_id,
    msg_type: d.msg_type,
    payload_json: d.e_payload_json!,
    source_id: d.e_source_id,
    created_at_ms: d.e_created_at_ms!,
  });
}

/** A claimed delivery from its joined row; null when its event is gone (the caller fails it). */
export function toClaimed(d: DeliveryJoinRow): ClaimedDelivery | null {
  const event = joinedEvent(d);
  if (event === null) return null;
  return { delivery: toDelivery(d), endpoint: joinedEndpoint(d), account: { account_id: d.account_id, partner_id: d.a_partner_id }, event };
}

export function toDeliveryDetail(d: DeliveryJoinRow, attempts: AttemptRow[]): DeliveryDetail {
  return {
    delivery: toDelivery(d),
    attempts: attempts.map(toAttempt),
    endpoint: joinedEndpoint(d),
    account: { account_id: d.account_id, partner_id: d.a_partner_id },
    event: joinedEvent(d),
  };
}
