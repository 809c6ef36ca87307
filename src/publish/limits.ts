/**
 * Input limits of the publish API (SPEC §3.1). An accepted event must fit every connection's
 * outbound limit.
 */

/**
 * Bytes of a single-event request body beyond the payload: `account_ids` (1,000 UUIDs ≈ 39 KB),
 * the other fields, and slack for whitespace or escapes a client may add to the payload text.
 */
export const SINGLE_BODY_ENVELOPE_BYTES = 128 * 1024;

/** Body limit of `POST /v1/events/batch`, raised when needed so that one maximal event always fits. */
export const BATCH_BODY_BYTES = 16 * 1024 * 1024;

export function singleBodyLimit(maxEventBytes: number): number {
  return maxEventBytes + SINGLE_BODY_ENVELOPE_BYTES;
}

export function batchBodyLimit(maxEventBytes: number): number {
  return Math.max(BATCH_BODY_BYTES, singleBodyLimit(maxEventBytes));
}
