/** Publish API (SPEC §3.1) and the partner's HTTP read of its event log (SPEC §2.8). */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { ErrorCode, isRoom, ALL_ROOM, type EventType } from '@tpx-realtime/protocol';
import { Publisher } from '../../publish/publisher.js';
import { batchBodyLimit, singleBodyLimit } from '../../publish/limits.js';
import { MAX_BATCH, validatePublish, type FieldError, type PublishLimits, type PublishRequest } from '../../publish/validate.js';
import { UnknownAccountsError, type AccountStore, type EventLog } from '../../store/types.js';
import { authFailure, authStatus } from '../../gateway/auth-errors.js';
import { eventFrameJson } from '../../gateway/frames.js';
import { HttpError } from '../errors.js';

function validationError(errors: FieldError[]): HttpError {
  const summary = errors.slice(0, 10).map((e) => `${e.field}: ${e.message}`).join('; ');
  return new HttpError(400, ErrorCode.VALIDATION_FAILED, `Invalid event: ${summary}${errors.length > 10 ? '; …' : ''}`, { fields: errors });
}

/** 413 for payloads over TPX_MAX_EVENT_BYTES, naming each (`events[i].payload` in a batch). */
function tooLarge(errors: FieldError[], maxEventBytes: number): HttpError {
  const which = errors.map((e) => e.field).join(', ');
  return new HttpError(413, ErrorCode.PAYLOAD_TOO_LARGE, `Event payload too large: ${which} over ${maxEventBytes} bytes (TPX_MAX_EVENT_BYTES)`, {
    fields: errors,
    max_event_bytes: maxEventBytes,
  });
}

function unknownAccounts(err: UnknownAccountsError): HttpError {
  return new HttpError(400, ErrorCode.UNKNOWN_ACCOUNT, `Unknown account id(s): ${err.accountIds.join(', ')}`, { account_ids: err.accountIds });
}

/**
 * Payload bytes of one GET /v1/events page: a page ends at `limit` events or once its payloads
 * reach this much (always at least one event), so 8 readers of 1,000 × 256 KiB events hold a few
 * MiB each, not 256 MiB (docs/protocol.md).
 */
export const READ_PAGE_BYTES = 4 * 1024 * 1024;

export interface PublishRouteDeps {
  publisher: Publisher;
  /** Partners' log reads (GET /v1/events): the key lookup and the event log, nothing else. */
  store: Pick<AccountStore, 'lookupToken'> & Pick<EventLog, 'readEvents'>;
  adminGuard: preHandlerHookHandler;
  limits: PublishLimits;
}

export function publishRoutes(app: FastifyInstance, deps: PublishRouteDeps): void {
  const { maxEventBytes } = deps.limits;
  // Body limits follow the event limit (docs/operations.md): a body over them is a 413 too.
  app.post('/v1/events', { preHandler: deps.adminGuard, bodyLimit: singleBodyLimit(maxEventBytes) }, async (request, reply) => {
    const result = validatePublish(request.body, deps.limits);
    if (!result.ok) throw result.status === 413 ? tooLarge(result.errors, maxEventBytes) : validationError(result.errors);
    try {
      const outcome = await deps.publisher.publish(result.request);
      reply.code(202);
      return { msg_id: outcome.msg_id, recipients: outcome.recipients };
    } catch (err) {
      if (err instanceof UnknownAccountsError) throw unknownAccounts(err);
      throw err;
    }
  });

  app.post('/v1/events/batch', { preHandler: deps.adminGuard, bodyLimit: batchBodyLimit(maxEventBytes) }, async (request, reply) => {
    const body = request.body as { events?: unknown } | null;
    const list = body && typeof body === 'object' ? body.events : undefined;
    if (!Array.isArray(list) || list.length === 0) {
      throw validationError([{ field: 'events', message: 'must be a non-empty array of events' }]);
    }
    if (list.length > MAX_BATCH) throw validationError([{ field: 'events', message: `must hold at most ${MAX_BATCH} events` }]);
    // All or nothing: one oversized event refuses the whole batch (413 naming every such index),
    // as one invalid event does (400): a caller never has to work out which half was stored.
    const requests: PublishRequest[] = [];
    const errors: FieldError[] = [];
    const oversized: FieldError[] = [];
    list.forEach((item, i) => {
      const r = validatePublish(item, deps.limits, `events[${i}].`);
      if (r.ok) requests.push(r.request);
      else (r.status === 413 ? oversized : errors).push(...r.errors);
    });
    if (oversized.length > 0) throw tooLarge(oversized, maxEventBytes);
    if (errors.length > 0) throw validationError(errors);
    try {
      const outcomes = await deps.publisher.publishMany(requests);
      reply.code(202);
      return {
        accepted: outcomes.length,
        results: outcomes.map((o) => ({ msg_id: o.msg_id, recipients: o.recipients, duplicate: o.duplicate })),
      };
    } catch (err) {
      if (err instanceof UnknownAccountsError) throw unknownAccounts(err);
      throw err;
    }
  });

  // Partners read their own log with an API key (X-API-Key), e.g. to reconcile after a gap.
  app.get('/v1/events', async (request, reply) => {
    const token = request.headers['x-api-key'];
    if (typeof token !== 'string' || token.length === 0) {
      throw new HttpError(401, ErrorCode.AUTH_INVALID_API_KEY, 'Missing X-API-Key header');
    }
    const lookup = await deps.store.lookupToken(token);
    if (!lookup.ok) {
      const { code, message: text } = authFailure(lookup.reason);
      throw new HttpError(authStatus(code) ?? 401, code, text);
    }
    const q = request.query as Record<string, string | undefined>;
    const fields: FieldError[] = [];
    const afterSeq = q.after_seq === undefined ? 0 : Number(q.after_seq);
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) fields.push({ field: 'after_seq', message: 'must be an integer ≥ 0' });
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fields.push({ field: 'limit', message: 'must be an integer between 1 and 1000' });
    // The account's stream holds only events it could access when they were accepted (the rule for
    // every read path, docs/decisions.md): the rooms filter the stream, all of it by default.
    let types: Set<EventType> | null = null;
    if (q.rooms !== undefined && q.rooms !== '') {
      const names = q.rooms.split(',').map((s) => s.trim()).filter(Boolean);
      const invalid = names.filter((n) => !isRoom(n));
      if (invalid.length) {
        throw new HttpError(400, ErrorCode.INVALID_ROOM, `Unknown room(s): ${invalid.join(', ')}`, { rooms: invalid });
      }
      types = names.includes(ALL_ROOM) ? null : new Set(names as EventType[]);
    }
    if (fields.length) throw validationError(fields);
    const page = types !== null && types.size === 0
      ? { events: [], pruned_through: 0, last_seq: afterSeq }
      : await deps.store.readEvents({ account_id: lookup.account.account_id, after_seq: afterSeq, types, limit, max_bytes: READ_PAGE_BYTES });
    const sentAt = Date.now();
    // Cut short by its count or by its bytes: the next page starts after its last event.
    let bytes = 0;
    for (const e of page.events) bytes += Buffer.byteLength(e.payload_json, 'utf8');
    const full = page.events.length === limit || (bytes >= READ_PAGE_BYTES && page.events.at(-1)!.seq < page.last_seq);
    const nextAfterSeq = full ? page.events[page.events.length - 1].seq : Math.max(afterSeq, page.last_seq, page.events.at(-1)?.seq ?? 0);
    const meta: Record<string, unknown> = { next_after_seq: nextAfterSeq, has_more: full };
    if (afterSeq < page.pruned_through) meta.gap = { from_seq: afterSeq + 1, to_seq: page.pruned_through };
    // The frames are spliced from the stored payload JSON exactly as on the WebSocket; they are
    // joined as text rather than parsed back into objects only to be serialized again.
    const events = page.events.map((e) => eventFrameJson(e, sentAt)).join(',');
    reply.type('application/json; charset=utf-8');
    return `{"events":[${events}],${JSON.stringify(meta).slice(1)}`;
  });
}
