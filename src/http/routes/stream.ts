/**
 * `GET /v1/events/stream` (SPEC §2.10): the account's event stream as Server-Sent Events, for
 * partners that cannot hold a WebSocket. This route only reads the request (key, rooms, resume
 * point); the stream itself is a gateway connection (src/gateway/sse-stream.ts).
 *
 * The key comes in `X-API-Key`, or, for browsers' EventSource (which cannot set headers), in the
 * `api_key` query parameter; URLs are never logged with it (app.ts redacts). CORS is open
 * (`*`): the key is an explicit credential, never a cookie, so another origin gains nothing it
 * does not already hold.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ALL_ROOM, ErrorCode } from '@tpx-realtime/protocol';
import type { Gateway } from '../../gateway/gateway.js';
import { serveEventStream } from '../../gateway/sse-stream.js';
import { drainBounce } from '../../gateway/sse-transport.js';
import type { Logger } from '../../observability/logger.js';
import { HttpError } from '../errors.js';
import { documentedOnly, errorReply, type ZodTypeProvider } from '../schema.js';

const CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'X-Tpx-Account-Id',
};

const PREFLIGHT: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET',
  // Cache-Control: sent by some EventSource polyfills.
  'access-control-allow-headers': 'X-API-Key, Last-Event-ID, Cache-Control',
  'access-control-max-age': '600',
};

export interface StreamRouteDeps {
  gateway: Gateway;
  maxOutboundBytes: number;
  logger: Logger;
}

/** A query parameter as Fastify parses it: repeated, it is a list. */
const param = () => z.union([z.string(), z.array(z.string())]).optional();

/**
 * Typed, not checked, here: the session checks the rooms (as on the WebSocket) and `after_seq`
 * counts only without a Last-Event-ID header, so both are read by the handler below.
 */
const StreamQuery = z.object({
  rooms: param().describe('Comma-separated rooms (event types, or ALL); repeated rooms= add up. Default ALL'),
  after_seq: param().meta({ pattern: '^\\d{1,16}$' }).describe('Resume after this seq, exactly as after_seq on the WebSocket (SPEC §2.8); Last-Event-ID wins when both are sent'),
  api_key: param().describe('The API key, where the X-API-Key header cannot be sent (EventSource); never logged'),
});
type Query = z.infer<typeof StreamQuery>;

const StreamHeaders = documentedOnly(
  z.object({
    'last-event-id': z
      .string()
      .optional()
      .describe('The last seq processed (what EventSource sends on reconnect): resume after it; wins over after_seq'),
  }),
);

const SSE_DESCRIPTION = [
  'The account\'s event stream as Server-Sent Events (SPEC §2.10), for clients that cannot hold a WebSocket.',
  'Every message is `id: <seq>`, `event: <msg_type>`, `data: <the event frame JSON, byte for byte the WebSocket frame>`',
  '(see docs/asyncapi.yaml, channel sse). The first message is always `event: subscribed` with the subscribed payload',
  '(rooms, last_seq, and resumed_from/gap when resuming); a pruned range is sent as `event: gap`; `: ping` comments keep the',
  'stream alive; a key revoked during the stream gets `event: error` with the AUTH_… code and the stream ends.',
  'Refusals are answered before any stream starts, as JSON `{ error, code }`.',
].join(' ');

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** `rooms=A,B` (repeated `rooms=` add up); absent: `ALL`. Names are checked by the session. */
function roomsOf(q: Query): string[] {
  const raw = q.rooms;
  if (raw === undefined) return [ALL_ROOM];
  return (Array.isArray(raw) ? raw : [raw]).flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean);
}

/** The resume point: `Last-Event-ID` (what EventSource sends on reconnect) wins over `after_seq`. */
function afterSeqOf(lastEventId: string | string[] | undefined, q: Query): number | undefined {
  const header = single(lastEventId)?.trim();
  const [field, raw] = header ? ['Last-Event-ID', header] : ['after_seq', single(q.after_seq)];
  if (raw === undefined || raw === '') return undefined;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new HttpError(400, ErrorCode.VALIDATION_FAILED, `${field} must be an integer ≥ 0 (a seq)`, { fields: [{ field, message: 'must be an integer ≥ 0' }] });
  }
  return n;
}

export function streamRoutes(app: FastifyInstance, deps: StreamRouteDeps): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  // CORS preflight: plumbing for browsers, not an operation of the API.
  routes.options('/v1/events/stream', { schema: { hide: true } }, async (_request, reply) => {
    reply.code(204).headers(PREFLIGHT);
    return reply.send();
  });

  routes.get(
    '/v1/events/stream',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['Partner'],
        summary: "The account's event stream (Server-Sent Events)",
        description: SSE_DESCRIPTION,
        security: [{ apiKey: [] }, { apiKeyQuery: [] }],
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: {
          200: { description: 'The stream: subscribed first, then replayed and live events, gaps, pings. A draining node answers a stream that ends at once with a jittered retry: and a close comment (EventSource gives up for good on a 503)', content: { 'text/event-stream': { schema: z.string() } } },
          400: errorReply('INVALID_ROOM (rooms: the unknown names), NO_VALID_ROOMS, or VALIDATION_FAILED (a Last-Event-ID or after_seq that is not a seq)'),
          401: errorReply('AUTH_INVALID_API_KEY (missing or unknown key) or AUTH_API_KEY_EXPIRED'),
          403: errorReply('AUTH_API_KEY_INACTIVE: the key was deactivated'),
          503: errorReply('STORE_UNAVAILABLE: the store could not be reached before the stream began (a store that fails during authentication answers a 200 stream with event: error UNAVAILABLE, retry: and : close 1013 instead)'),
        },
      },
    },
    async (request, reply) => {
      reply.headers(CORS);
      const q = request.query;
      const header = single(request.headers['x-api-key']);
      const token = header || single(q.api_key);
      if (!token) {
        throw new HttpError(401, ErrorCode.AUTH_INVALID_API_KEY, 'Missing API key: send the X-API-Key header (or ?api_key= where headers cannot be set, e.g. EventSource)');
      }
      const afterSeq = afterSeqOf(request.headers['last-event-id'], q);
      if (!deps.gateway.acceptingConnections) {
        // Not a 503: EventSource never retries after one (see drainBounce).
        reply.hijack();
        drainBounce(reply.raw, CORS);
        return;
      }
      reply.hijack();
      await serveEventStream(deps.gateway, reply.raw, { token, rooms: roomsOf(q), afterSeq }, { maxOutboundBytes: deps.maxOutboundBytes, headers: CORS, logger: deps.logger });
    },
  );
}
