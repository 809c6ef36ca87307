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
import { ALL_ROOM, ErrorCode } from '@tpx-realtime/protocol';
import type { Gateway } from '../../gateway/gateway.js';
import { serveEventStream } from '../../gateway/sse-stream.js';
import { drainBounce } from '../../gateway/sse-transport.js';
import type { Logger } from '../../observability/logger.js';
import { HttpError } from '../errors.js';

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

type Query = Record<string, string | string[] | undefined>;

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
  app.options('/v1/events/stream', async (_request, reply) => {
    reply.code(204).headers(PREFLIGHT);
    return reply.send();
  });

  app.get('/v1/events/stream', { exposeHeadRoute: false }, async (request, reply) => {
    reply.headers(CORS);
    const q = request.query as Query;
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
  });
}
