/** Delivery-queue semantics both stores share: listing filters and attempt validation. */
import { StoreValidationError, type DeliveryFilter, type RecordAttemptItem } from '../types.js';
import { isoToMs, normalizeIso } from './time.js';

export const DEFAULT_DELIVERY_PAGE = 100;
/** Bytes of a response body kept with each attempt. */
export const RESPONSE_EXCERPT_BYTES = 1024;

/**
 * A listing filter as SQL conditions on `deliveries d`, with a placeholder function so each
 * dialect numbers its parameters (`?` or `$n`). A msg_id is found through the events index
 * (deliveries keep their event while they are pending or failed; succeeded ones leave with it).
 */
export function deliveryConditions(filter: DeliveryFilter, placeholder: (value: unknown) => string): { where: string; limit: number } {
  const conds: string[] = [];
  const add = (sql: (p: string) => string, value: unknown) => conds.push(sql(placeholder(value)));
  if (filter.account_id !== undefined) add((p) => `d.account_id = ${p}`, filter.account_id);
  if (filter.webhook_id !== undefined) add((p) => `d.webhook_id = ${p}`, filter.webhook_id);
  if (filter.status !== undefined) add((p) => `d.status = ${p}`, filter.status);
  if (filter.msg_id !== undefined) add((p) => `d.event_id = (SELECT event_id FROM events WHERE msg_id = ${p})`, filter.msg_id);
  if (filter.msg_type !== undefined) add((p) => `d.msg_type = ${p}`, filter.msg_type);
  const since = isoToMs(filter.since, 'since');
  const until = isoToMs(filter.until, 'until');
  if (since !== null) add((p) => `d.created_at >= ${p}`, since);
  if (until !== null) add((p) => `d.created_at <= ${p}`, until);
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', limit: Math.max(1, Math.floor(filter.limit ?? DEFAULT_DELIVERY_PAGE)) };
}

/** The range of a bulk retry, as epoch ms bounds. */
export function retryRange(filter: { since?: string; until?: string }): { since: number; until: number } {
  return { since: isoToMs(filter.since, 'since') ?? Number.MIN_SAFE_INTEGER, until: isoToMs(filter.until, 'until') ?? Number.MAX_SAFE_INTEGER };
}

/** At most `maxBytes` of UTF-8, never cutting a character in two. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--; // back to the start of a character
  return buf.subarray(0, end).toString('utf8');
}

export interface PreparedAttempt extends RecordAttemptItem {
  /** Position in the caller's list (results keep that order). */
  index: number;
  /** Epoch ms of the next attempt when the delivery stays pending, else null. */
  nextAt: number | null;
  attemptedAt: string;
  excerpt: string | null;
}

/** Validate every item before anything is written: one malformed item rejects the whole call. */
export function prepareAttempts(items: RecordAttemptItem[]): PreparedAttempt[] {
  return items.map((it, index) => {
    const { resolution, attempt } = it;
    let nextAt: number | null = null;
    if (resolution.status === 'pending') {
      nextAt = Date.parse(resolution.next_attempt_at);
      if (!Number.isFinite(nextAt)) throw new StoreValidationError(`next_attempt_at must be an ISO-8601 date-time, got "${resolution.next_attempt_at}"`);
    } else if (resolution.status !== 'succeeded' && resolution.status !== 'failed') {
      throw new StoreValidationError(`Invalid resolution status: ${String((resolution as { status: unknown }).status)}`);
    }
    const effect = it.effect;
    if (effect && effect.kind === 'failing' && !Number.isFinite(Date.parse(effect.at))) {
      throw new StoreValidationError(`effect.at must be an ISO-8601 date-time, got "${effect.at}"`);
    }
    const attemptedAt = normalizeIso(attempt.attempted_at, 'attempted_at') ?? new Date().toISOString();
    const excerpt = typeof attempt.response_excerpt === 'string' && attempt.response_excerpt !== '' ? truncateUtf8(attempt.response_excerpt, RESPONSE_EXCERPT_BYTES) : null;
    return { ...it, index, nextAt, attemptedAt, excerpt };
  });
}
