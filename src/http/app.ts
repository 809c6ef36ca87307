/**
 * The Fastify application: one port for HTTP APIs and the `/ws` upgrade (SPEC §3). Errors always
 * leave as `{ error, code }` with a meaningful status; request logging stays off the hot path.
 * Routes declare their parts as zod schemas (src/http/schema.ts), which also make the OpenAPI
 * document (src/http/openapi.ts).
 */
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { HttpError } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { schemaErrorFormatter, serializerCompiler, validatorCompiler } from './schema.js';

export interface AppOptions {
  logger: Logger;
  metrics: GatewayMetrics;
  /** Default body limit; the batch route raises its own. */
  bodyLimit?: number;
  /** Certificate chain and key: serve HTTPS (and wss://) instead of plain HTTP. */
  https?: { cert: Buffer; key: Buffer };
}

export function createApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    ...(opts.https ? { https: { cert: opts.https.cert, key: opts.https.key } } : {}),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Upgrades are handled by the gateway; keep-alive for publishers that reuse connections.
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    // Route schemas are zod schemas, validated and serialized by the compilers set below
    // (src/http/schema.ts). Without these factories Fastify would still load ajv and
    // fast-json-stringify when the instance is built (≈ 1.2 MiB of heap at start-up) though
    // nothing uses them; they throw so a JSON schema that slipped in fails loudly.
    schemaController: {
      compilersFactory: {
        buildValidator: () => () => {
          throw new Error('route JSON schemas are not used: validate with zod');
        },
        buildSerializer: () => () => {
          throw new Error('route JSON schemas are not used: replies are serialized with JSON.stringify');
        },
      },
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setSchemaErrorFormatter(schemaErrorFormatter);
  registerOpenApi(app);

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, request, reply) => {
    let status: number;
    let body: Record<string, unknown>;
    if (err instanceof HttpError) {
      status = err.status;
      body = err.toBody();
    } else if (err.name === 'StoreUnavailableError') {
      // The store is unreachable or failed: nothing was accepted; retry later (SPEC §7).
      status = 503;
      body = { error: `Store unavailable: ${err.message}`, code: 'STORE_UNAVAILABLE' };
      reply.header('retry-after', '1');
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      body = { error: 'Request body is too large', code: 'PAYLOAD_TOO_LARGE' };
      await discardRestOfBody(request.raw);
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      body = { error: 'Content-Type must be application/json', code: 'UNSUPPORTED_MEDIA_TYPE' };
    } else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.name === 'SyntaxError' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      status = 400;
      body = { error: 'Request body is not valid JSON', code: 'INVALID_JSON' };
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      body = { error: err.message, code: 'BAD_REQUEST' };
    } else {
      status = 500;
      body = { error: 'Internal server error', code: 'INTERNAL' };
      opts.logger.error({ err, method: request.method, url: redactUrl(request.url) }, 'unhandled error');
    }
    opts.metrics.errors.inc({ code: String(body.code) });
    return reply.code(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `No route for ${request.method} ${request.url.split('?')[0]}`, code: 'NOT_FOUND' });
  });

  return app;
}

/** A request URL fit for logs: an API key passed as a query parameter (SSE for EventSource) is masked. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:api_key|token)=)[^&#]*/gi, '$1[redacted]');
}

/** How much of a refused body is read and thrown away so that its sender gets to see the 413. */
const DISCARD_MAX_BYTES = 64 * 1024 * 1024;
const DISCARD_MAX_MS = 10_000;

/**
 * Lingering close (as nginx does): the body over the limit is not read, and Node closes the
 * connection after the answer. A client still writing its body then gets a reset (EPIPE) and
 * never sees the 413. Reading the rest and discarding it, bounded in bytes and time, lets the
 * answer arrive; past the bounds the answer goes out anyway.
 */
function discardRestOfBody(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', done);
      raw.off('error', done);
      raw.off('close', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_MAX_BYTES) done();
    };
    const timer = setTimeout(done, DISCARD_MAX_MS);
    raw.on('data', onData);
    raw.once('end', done);
    raw.once('error', done);
    raw.once('close', done);
    raw.resume();
  });
}

export type { FastifyPluginAsync };
