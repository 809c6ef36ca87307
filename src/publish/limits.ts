/**
 * Input limits of the publish API (SPEC §3.1). An accepted event must fit every connection's
 * outbound limit, and nothing recursive (JSON.stringify, schema validation, error messages) may
 * ever see a value nested deeply enough to overflow the stack.
 */

/** Deepest nesting accepted in an event payload; the payload object itself is level 1. */
export const MAX_PAYLOAD_DEPTH = 64;

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

/**
 * True when `value` nests objects/arrays deeper than `maxDepth` (a scalar is depth 0, `{}` and
 * `[]` are depth 1). Iterative with an explicit stack, so it is safe on any parsed JSON, and it
 * stops at the first container past the limit: the work is bounded by the nodes it visits.
 */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > maxDepth) return true;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
