/** Publish API (SPEC §3.1) and the partner's HTTP read of its event log (SPEC §2.8). */
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import { z } from 'zod';
import { ErrorCode, isEventType, isRoom, ALL_ROOM, EVENT_TYPES, GapRangeSchema, type EventType, type Room } from '@tpx-realtime/protocol';
import { Publisher } from '../../publish/publisher.js';
import { batchBodyLimit, singleBodyLimit } from '../../publish/limits.js';
import { MAX_ACCOUNT_IDS, MAX_BATCH, SOURCE_ID, validatePublish, type FieldError, type PublishLimits, type PublishRequest } from '../../publish/validate.js';
import { UnknownAccountsError, type Account, type AccountStore, type EventLog } from '../../store/types.js';
import { authFailure, authStatus } from '../../gateway/auth-errors.js';
import { eventFrameJson } from '../../gateway/frames.js';
import { HttpError } from '../errors.js';
import {
  answerFor,
  BODY_ERRORS,
  component,
  documentedOnly,
  errorReply,
  formatInvalid,
  json,
  STORE_ERRORS,
  AUTH_ERRORS,
  type ZodTypeProvider,
} from '../schema.js';
import { PAYLOADS } from '../event-schemas.js';

// ------------------------------------------------------------------ schemas

const target = {
  account_ids: z
    .array(z.string().min(1).max(64))
    .min(1)
    .max(MAX_ACCOUNT_IDS)
    .optional()
    .describe('The addressed accounts (de-duplicated). Unknown ids: 400 UNKNOWN_ACCOUNT. Required unless broadcast is true'),
  broadcast: z.boolean().optional().describe('true: every account that may access the room (instead of account_ids)'),
  msg_id: z
    .string()
    .meta({ format: 'uuid' })
    .nullish()
    .describe('Idempotency key: re-posting an accepted msg_id delivers nothing again and answers the same result. Default: a new UUIDv7'),
  source_id: z.string().regex(SOURCE_ID).nullish().describe('The publishing service (webhook source_id); default TPX_SOURCE_ID'),
};

/**
 * One event to publish. Declared for the document: the body is checked by validatePublish
 * (src/publish/validate.ts), which bounds the nesting before anything recursive reads it and
 * names every failing field as the caller wrote it.
 */
const PublishRequestSchema = component(
  'PublishRequest',
  z.discriminatedUnion(
    'msg_type',
    EVENT_TYPES.map((type) => z.strictObject({ msg_type: z.literal(type), ...target, payload: PAYLOADS[type] })) as unknown as [
      z.ZodObject,
      ...z.ZodObject[],
    ],
  ),
  'One event: its type, its recipients (account_ids, or broadcast: true) and its payload, validated against the schema of its type ' +
    '(400 VALIDATION_FAILED naming each failing field; a payload over TPX_MAX_EVENT_BYTES, default 256 KiB serialized: 413 PAYLOAD_TOO_LARGE; nesting over 64 levels: 400)',
);

const PublishResult = component(
  'PublishResult',
  z.object({
    msg_id: z.string().describe('The event id (the idempotency key, the webhook-id and the frames\' msg_id)'),
    recipients: z.number().int().min(0).describe('Accounts the event was stored for (addressed and allowed to access the room)'),
  }),
);

const BatchResult = z.object({
  accepted: z.number().int().min(0).describe('Number of events (all of them: a batch is stored all or nothing)'),
  results: z
    .array(PublishResult.extend({ duplicate: z.boolean().describe('true when this msg_id had already been accepted (nothing delivered again)') }))
    .describe('One per event, in request order'),
});

/** Declared for the document: the handler checks the list's length, and validatePublish each event as for a single publish. */
const BatchBody = z.object({
  events: z.array(PublishRequestSchema).min(1).max(MAX_BATCH).describe(`1 to ${MAX_BATCH} events, stored in one transaction: all accepted, or none`),
});

/** An event frame exactly as the WebSocket sends it (SPEC §2.2), one per type. */
const EventFrame = component(
  'EventFrame',
  z.discriminatedUnion(
    'msg_type',
    EVENT_TYPES.map((type) =>
      z.object({
        msg_type: z.literal(type),
        msg_id: z.string().describe('Same id as the webhook delivery of this event (de-duplication key)'),
        seq: z.number().int().min(1).describe("Strictly increasing within the account's stream"),
        sent_at: z.number().int().min(0).describe('Server send time, epoch milliseconds'),
        payload: PAYLOADS[type],
      }),
    ) as unknown as [z.ZodObject, ...z.ZodObject[]],
  ),
  'An event frame, byte for byte what the WebSocket and the SSE stream carry for the same event',
);

const EventsPage = z.object({
  events: z.array(EventFrame).describe('Stored events of the account with seq > after_seq in the chosen rooms, in seq order'),
  next_after_seq: z.number().int().min(0).describe('Pass as after_seq to read on'),
  has_more: z.boolean().describe('true when more events may follow: read again from next_after_seq'),
  gap: GapRangeSchema.optional().describe('Events after after_seq already pruned by retention (never delivered again)'),
});

const SEQ_MESSAGE = 'must be an integer ≥ 0';
const LIMIT_MESSAGE = 'must be an integer between 1 and 1000';

/** `rooms=A,B` (repeated `rooms=` add up); empty or absent: the whole stream. Unknown names: 400 INVALID_ROOM. */
const roomsQuery = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((raw, ctx): Room[] | undefined => {
    if (raw === undefined || raw === '') return undefined;
    const names = (Array.isArray(raw) ? raw : [raw]).flatMap((r) => r.split(',')).map((s) => s.trim()).filter(Boolean);
    if (names.length === 0) return undefined; // `rooms=,` or `rooms=&rooms=`: no filter, as `rooms=`
    const invalid = names.filter((n) => !isRoom(n));
    if (invalid.length) {
      const answer = new HttpError(400, ErrorCode.INVALID_ROOM, `Unknown room(s): ${invalid.join(', ')}`, { rooms: invalid });
      ctx.addIssue({ code: 'custom', message: answer.message, params: answerFor(answer) });
      return z.NEVER;
    }
    return names.filter(isRoom);
  })
  .describe("Comma-separated rooms (event types, or ALL); default: the account's whole stream, which holds the events of the rooms the account could access when each was accepted");

const EventsQuery = z.object({
  after_seq: z.coerce
    .number<string>({ error: SEQ_MESSAGE })
    .int({ error: SEQ_MESSAGE, abort: true })
    .min(0, { error: SEQ_MESSAGE })
    .default(0)
    .describe('The last seq already processed: the page starts after it'),
  limit: z.coerce
    .number<string>({ error: LIMIT_MESSAGE })
    .int({ error: LIMIT_MESSAGE, abort: true })
    .min(1, { error: LIMIT_MESSAGE })
    .max(1000, { error: LIMIT_MESSAGE })
    .default(100)
    .describe('Most events in the page'),
  rooms: roomsQuery,
});

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

/** Partners read with an API key (X-API-Key), checked before the query: an unknown caller learns nothing about it. */
function partnerKey(store: Pick<AccountStore, 'lookupToken'>) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = request.headers['x-api-key'];
    if (typeof token !== 'string' || token.length === 0) {
      throw new HttpError(401, ErrorCode.AUTH_INVALID_API_KEY, 'Missing X-API-Key header');
    }
    const lookup = await store.lookupToken(token);
    if (!lookup.ok) {
      const { code, message: text } = authFailure(lookup.reason);
      throw new HttpError(authStatus(code) ?? 401, code, text);
    }
    request.partnerAccount = lookup.account;
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The account of the API key a partner route was called with (set before validation). */
    partnerAccount: Account | null;
  }
}

const PUBLISH_ERRORS = {
  400: errorReply('VALIDATION_FAILED (fields: each failing field), INVALID_JSON, or UNKNOWN_ACCOUNT (account_ids: the unknown ids)'),
  ...AUTH_ERRORS,
  413: errorReply(
    'PAYLOAD_TOO_LARGE: an event payload over TPX_MAX_EVENT_BYTES (fields names each, max_event_bytes gives the limit), or a request body over its limit',
  ),
  415: BODY_ERRORS[415],
  ...STORE_ERRORS,
} as const;

export function publishRoutes(app: FastifyInstance, deps: PublishRouteDeps): void {
  const { maxEventBytes } = deps.limits;
  const routes = app.withTypeProvider<ZodTypeProvider>();
  // Admin token before the body is validated (parse errors, which come first, excepted).
  const adminGuard = { preValidation: deps.adminGuard };
  // Body limits follow the event limit (docs/operations.md): a body over them is a 413 too.
  routes.post(
    '/v1/events',
    {
      ...adminGuard,
      bodyLimit: singleBodyLimit(maxEventBytes),
      schema: {
        tags: ['Publish'],
        summary: 'Publish one event',
        description:
          'Stores the event for every addressed account allowed to access its room (and their webhook deliveries), durably, then answers 202 and fans it out.',
        security: [{ adminToken: [] }],
        body: documentedOnly(PublishRequestSchema),
        response: { 202: json('Accepted and durable (synced to disk)', PublishResult), ...PUBLISH_ERRORS },
      },
    },
    async (request, reply) => {
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
    },
  );

  routes.post(
    '/v1/events/batch',
    {
      ...adminGuard,
      bodyLimit: batchBodyLimit(maxEventBytes),
      schema: {
        tags: ['Publish'],
        summary: 'Publish up to 1,000 events at once',
        description: 'All or nothing: one invalid event refuses the batch (400 naming events[i].…), one oversized payload too (413 naming each).',
        security: [{ adminToken: [] }],
        body: documentedOnly(BatchBody),
        response: { 202: json('All accepted and durable', BatchResult), ...PUBLISH_ERRORS },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const list = body !== null && typeof body === 'object' && 'events' in body ? body.events : undefined;
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
    },
  );

  // Partners read their own log with an API key (X-API-Key), e.g. to reconcile after a gap.
  app.decorateRequest('partnerAccount', null);
  routes.get(
    '/v1/events',
    {
      preValidation: partnerKey(deps.store),
      // Query errors answer as this route always did (INVALID_ROOM first, then `Invalid event: …`).
      schemaErrorFormatter: formatInvalid((fields) => validationError(fields)),
      schema: {
        tags: ['Partner'],
        summary: "Read the account's event log",
        description:
          'The same frames the WebSocket sends, from the stored log (SPEC §2.8): to catch up or reconcile after a gap, with the seq of the last processed event as after_seq.',
        security: [{ apiKey: [] }],
        querystring: EventsQuery,
        response: {
          200: json('A page of the log', EventsPage),
          400: errorReply('VALIDATION_FAILED (fields: after_seq, limit) or INVALID_ROOM (rooms: the unknown names)'),
          401: errorReply('AUTH_INVALID_API_KEY (missing or unknown key) or AUTH_API_KEY_EXPIRED'),
          403: errorReply('AUTH_API_KEY_INACTIVE: the key was deactivated'),
          ...STORE_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const account = request.partnerAccount!;
      const { after_seq: afterSeq, limit, rooms } = request.query;
      // The account's stream holds only events it could access when they were accepted (the rule for
      // every read path, docs/decisions.md): the rooms filter the stream, all of it by default.
      let types: Set<EventType> | null = null;
      if (rooms !== undefined && !rooms.includes(ALL_ROOM)) types = new Set(rooms.filter(isEventType));
      const page = types !== null && types.size === 0
        ? { events: [], pruned_through: 0, last_seq: afterSeq }
        : await deps.store.readEvents({ account_id: account.account_id, after_seq: afterSeq, types, limit, max_bytes: READ_PAGE_BYTES });
      const sentAt = Date.now();
      // Cut short by its count or by its bytes: the next page starts after its last event.
      let bytes = 0;
      for (const e of page.events) bytes += Buffer.byteLength(e.payload_json, 'utf8');
      const full = page.events.length === limit || (bytes >= READ_PAGE_BYTES && page.events.at(-1)!.seq < page.last_seq);
      const nextAfterSeq = full ? page.events[page.events.length - 1].seq : Math.max(afterSeq, page.last_seq, page.events.at(-1)?.seq ?? 0);
      const meta: Record<string, unknown> = { next_after_seq: nextAfterSeq, has_more: full };
      if (afterSeq < page.pruned_through) meta.gap = { from_seq: afterSeq + 1, to_seq: page.pruned_through };
      // The frames are spliced from the stored payload JSON exactly as on the WebSocket; they are
      // joined as text rather than parsed back into objects only to be serialized again (the
      // response schema documents the shape; a string reply is sent as it is).
      const events = page.events.map((e) => eventFrameJson(e, sentAt)).join(',');
      reply.type('application/json; charset=utf-8');
      return `{"events":[${events}],${JSON.stringify(meta).slice(1)}` as unknown as z.infer<typeof EventsPage>;
    },
  );
}
