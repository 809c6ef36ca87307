/** How both stores read a page of an account's stream: bounds, filters and the byte budget. */
import type { EventType } from '@tpx-realtime/protocol';
import type { ReadEventsQuery } from '../types.js';

export interface ReadPlan {
  account_id: string;
  /** Events with seq > after. */
  after: number;
  limit: number;
  /** null: every type. */
  types: EventType[] | null;
  /** Nothing to read (limit 0 or an empty type filter): only the counters are wanted. */
  countersOnly: boolean;
  /** Byte budget of the page, or null. */
  maxBytes: number | null;
}

export function planRead(q: ReadEventsQuery): ReadPlan {
  const limit = Math.max(0, Math.floor(q.limit));
  const types = q.types === null ? null : [...q.types];
  const maxBytes = q.max_bytes === undefined || q.max_bytes === null || !Number.isFinite(q.max_bytes) ? null : Math.max(1, Math.floor(q.max_bytes));
  return {
    account_id: q.account_id,
    after: Math.max(0, Math.floor(Math.min(q.after_seq, Number.MAX_SAFE_INTEGER))),
    limit,
    types,
    countersOnly: limit === 0 || (types !== null && types.length === 0),
    maxBytes,
  };
}

/** UTF-8 size of a payload as it goes on the wire. */
export const payloadBytes = (payloadJson: string): number => Buffer.byteLength(payloadJson, 'utf8');

/**
 * The byte budget: rows are taken in order while the payload bytes taken so far are below
 * `maxBytes`; the first row is always taken, whatever its size, so a reader always progresses.
 * Stops pulling from `rows` as soon as the budget is reached (a lazy iterator reads no further).
 */
export function takeWithinBudget<T>(rows: Iterable<T>, payloadOf: (row: T) => string, maxBytes: number | null): T[] {
  const out: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (maxBytes !== null && out.length > 0 && bytes >= maxBytes) break;
    out.push(row);
    if (maxBytes !== null) bytes += payloadBytes(payloadOf(row));
  }
  return out;
}
