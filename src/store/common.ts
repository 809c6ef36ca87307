/**
 * Row shapes and conversions shared by the SQLite and PostgreSQL stores, so both map rows to the
 * Store seam's objects (and validate inputs) identically.
 */
import { isEventType, type EventType } from '@tpx-realtime/protocol';
import { randomUUID } from 'node:crypto';
import type { ApiKey, Delivery, DeliveryStatus, WebhookEndpoint, WebhookPatch } from './types.js';
import { StoreValidationError } from './types.js';

/** API key rows are selected with exactly the ApiKey columns. */
export type ApiKeyRow = ApiKey;

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

export const iso = (ms: number): string => new Date(ms).toISOString();

export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

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

/** ISO-8601 (or null) → normalized ISO UTC; throws StoreValidationError on garbage. */
export function normalizeIso(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null;
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new StoreValidationError(`${field} must be an ISO-8601 date-time, got "${String(value)}"`);
  return iso(ms);
}

export function isoToMs(value: string | undefined, field: string): number | null {
  if (value === undefined || value === null) return null;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new StoreValidationError(`${field} must be an ISO-8601 date-time, got "${value}"`);
  return ms;
}

export function validateRooms(rooms: unknown): EventType[] {
  if (!Array.isArray(rooms)) throw new StoreValidationError('rooms must be an array of event types');
  const bad = rooms.filter((r) => !isEventType(r));
  if (bad.length) throw new StoreValidationError(`rooms contains unknown event types: ${bad.map(String).join(', ')}`);
  return [...new Set(rooms as EventType[])];
}

export function validatePartnerId(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || value.length === 0) throw new StoreValidationError('partner_id must be a non-empty string or null');
  return value;
}

/** A new, enabled endpoint as both stores insert it. */
export function newWebhookEndpoint(accountId: string, input: { url: string; secret: string; description?: string | null }): WebhookEndpoint {
  const now = new Date().toISOString();
  return {
    webhook_id: randomUUID(),
    account_id: accountId,
    url: input.url,
    secret: input.secret,
    previous_secret: null,
    previous_secret_expires_at: null,
    enabled: true,
    disabled_reason: null,
    description: input.description ?? null,
    failing_since: null,
    created_at: now,
    updated_at: now,
  };
}

/** `cur` with the fields present in `patch` applied (undefined = unchanged), dates normalised. */
export function applyWebhookPatch(cur: WebhookEndpoint, patch: WebhookPatch): WebhookEndpoint {
  const pick = <K extends keyof WebhookPatch>(k: K, fallback: WebhookEndpoint[K]) => (patch[k] !== undefined ? patch[k] : fallback) as WebhookEndpoint[K];
  return {
    ...cur,
    url: pick('url', cur.url),
    secret: pick('secret', cur.secret),
    previous_secret: pick('previous_secret', cur.previous_secret),
    previous_secret_expires_at:
      patch.previous_secret_expires_at !== undefined ? normalizeIso(patch.previous_secret_expires_at, 'previous_secret_expires_at') : cur.previous_secret_expires_at,
    enabled: pick('enabled', cur.enabled),
    disabled_reason: pick('disabled_reason', cur.disabled_reason),
    description: pick('description', cur.description),
    failing_since: patch.failing_since !== undefined ? normalizeIso(patch.failing_since, 'failing_since') : cur.failing_since,
    updated_at: new Date().toISOString(),
  };
}
