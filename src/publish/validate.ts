/**
 * Validation of publish requests (SPEC §3.1). Every failing field is named, with the path the
 * caller used (`payload.item_details.quantity`, `events[2].account_ids`), so a platform team can
 * fix a request from the error alone.
 */
import { isEventType, type EventType } from '@tpx-realtime/protocol';
import { validateEventPayload } from '@tpx-realtime/protocol';
import { MAX_PAYLOAD_DEPTH, nestsDeeperThan } from './limits.js';

export interface PublishRequest {
  msg_type: EventType;
  target: string[] | 'broadcast';
  payload: Record<string, unknown>;
  /** The payload serialized once, here: its size is what TPX_MAX_EVENT_BYTES limits, and it is what is stored. */
  payload_json: string;
  msg_id: string | null;
  source_id: string | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export const MAX_ACCOUNT_IDS = 1000;
export const MAX_BATCH = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Shape of `source_id` (also declared in the OpenAPI document). */
export const SOURCE_ID = /^[A-Za-z0-9_.:\-]{1,128}$/;
const KNOWN_KEYS = new Set(['msg_type', 'account_ids', 'broadcast', 'payload', 'msg_id', 'source_id']);

export interface PublishLimits {
  /** TPX_MAX_EVENT_BYTES: largest serialized payload, in UTF-8 bytes. */
  maxEventBytes: number;
}

/**
 * `status` says how a failure is answered: 413 when the payload is over TPX_MAX_EVENT_BYTES
 * (checked before the schema: the size alone decides), 400 for everything else.
 */
export type ValidateResult = { ok: true; request: PublishRequest } | { ok: false; status: 400 | 413; errors: FieldError[] };

export function validatePublish(body: unknown, limits: PublishLimits, prefix = ''): ValidateResult {
  const errors: FieldError[] = [];
  const at = (f: string) => prefix + f;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, status: 400, errors: [{ field: prefix ? prefix.replace(/\.$/, '') : 'body', message: 'must be a JSON object' }] };
  }
  const b = body as Record<string, unknown>;
  // Before anything recursive (the schema, JSON.stringify, error texts) touches the values.
  const tooDeep = Object.keys(b).filter((key) => nestsDeeperThan(b[key], MAX_PAYLOAD_DEPTH));
  if (tooDeep.length > 0) {
    return { ok: false, status: 400, errors: tooDeep.map((key) => ({ field: at(key), message: `nests deeper than ${MAX_PAYLOAD_DEPTH} levels` })) };
  }
  for (const key of Object.keys(b)) {
    if (!KNOWN_KEYS.has(key)) errors.push({ field: at(key), message: 'unknown field' });
  }
  const msgType = b.msg_type;
  if (msgType === undefined) errors.push({ field: at('msg_type'), message: 'is required' });
  else if (!isEventType(msgType)) errors.push({ field: at('msg_type'), message: `must be one of the 11 event types, got ${JSON.stringify(msgType).slice(0, 64)}` });

  let target: string[] | 'broadcast' = [];
  const broadcast = b.broadcast;
  if (broadcast !== undefined && typeof broadcast !== 'boolean') errors.push({ field: at('broadcast'), message: 'must be a boolean' });
  if (broadcast === true) {
    if (b.account_ids !== undefined) errors.push({ field: at('account_ids'), message: 'must not be combined with broadcast: true' });
    target = 'broadcast';
  } else if (b.account_ids === undefined) {
    errors.push({ field: at('account_ids'), message: 'is required (or set broadcast: true)' });
  } else if (!Array.isArray(b.account_ids) || b.account_ids.length === 0) {
    errors.push({ field: at('account_ids'), message: 'must be a non-empty array of account ids' });
  } else if (b.account_ids.length > MAX_ACCOUNT_IDS) {
    errors.push({ field: at('account_ids'), message: `must hold at most ${MAX_ACCOUNT_IDS} ids` });
  } else {
    b.account_ids.forEach((id, i) => {
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) errors.push({ field: at(`account_ids[${i}]`), message: 'must be an account id string' });
    });
    target = [...new Set(b.account_ids as string[])];
  }

  let msgId: string | null = null;
  if (b.msg_id !== undefined && b.msg_id !== null) {
    if (typeof b.msg_id !== 'string' || !UUID.test(b.msg_id)) errors.push({ field: at('msg_id'), message: 'must be a UUID' });
    else msgId = b.msg_id.toLowerCase();
  }
  let sourceId: string | null = null;
  if (b.source_id !== undefined && b.source_id !== null) {
    if (typeof b.source_id !== 'string' || !SOURCE_ID.test(b.source_id)) errors.push({ field: at('source_id'), message: 'must be 1-128 characters of letters, digits, _ . : -' });
    else sourceId = b.source_id;
  }

  let payloadJson = '';
  if (b.payload !== undefined && b.payload !== null && typeof b.payload === 'object' && !Array.isArray(b.payload)) {
    payloadJson = JSON.stringify(b.payload);
    const bytes = Buffer.byteLength(payloadJson, 'utf8');
    if (bytes > limits.maxEventBytes) {
      const message = `is ${bytes} bytes serialized; the largest accepted event payload is ${limits.maxEventBytes} bytes (TPX_MAX_EVENT_BYTES)`;
      return { ok: false, status: 413, errors: [{ field: at('payload'), message }] };
    }
  }
  if (b.payload === undefined) errors.push({ field: at('payload'), message: 'is required' });
  else if (isEventType(msgType)) {
    const result = validateEventPayload(msgType, b.payload);
    if (!result.ok) for (const e of result.errors) errors.push({ field: at(e.field), message: e.message });
  } else if (b.payload === null || typeof b.payload !== 'object' || Array.isArray(b.payload)) {
    errors.push({ field: at('payload'), message: 'must be an object' });
  }

  if (errors.length > 0) return { ok: false, status: 400, errors };
  return {
    ok: true,
    request: { msg_type: msgType as EventType, target, payload: b.payload as Record<string, unknown>, payload_json: payloadJson, msg_id: msgId, source_id: sourceId },
  };
}
