/**
 * The Fastify application: one port for HTTP APIs and the `/ws` upgrade (SPEC §3). Errors always
 * leave as `{ error, code }` with a meaningful status; request logging stays off the hot path.
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { HttpError } from './errors.js';

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
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    let status: number;
    let body: Record<string, unknown>;
    if (err instanceof HttpError) {
      status = err.status;
      body = err.toBody();
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      body = { error: 'Request body is too large', code: 'PAYLOAD_TOO_LARGE' };
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
      opts.logger.error({ err, method: request.method, url: request.url }, 'unhandled error');
    }
    opts.metrics.errors.inc({ code: String(body.code) });
    reply.code(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `No route for ${request.method} ${request.url.split('?')[0]}`, code: 'NOT_FOUND' });
  });

  return app;
}

export type { FastifyPluginAsync };
