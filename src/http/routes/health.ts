import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Bus } from '../../bus/types.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { StoreLifecycle } from '../../store/types.js';
import { json, type ZodTypeProvider } from '../schema.js';

const Readiness = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), z.string()).describe('store, bus (ok, or why not), store_<check> when not ok, server: shutting down'),
});
const operations = { tags: ['Operations'] };

export function healthRoutes(app: FastifyInstance, deps: { store: Pick<StoreLifecycle, 'ping' | 'status'>; bus: Bus; metrics: GatewayMetrics; isShuttingDown: () => boolean }): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  routes.get(
    '/healthz',
    { schema: { ...operations, summary: 'The process is up', response: { 200: json('Up', z.object({ status: z.literal('ok') })) } } },
    async () => ({ status: 'ok' as const }),
  );

  routes.get(
    '/readyz',
    {
      schema: {
        ...operations,
        summary: 'Ready to serve: the store and the bus answer, and the server is not shutting down',
        response: { 200: json('Ready', Readiness), 503: json('Not ready (or shutting down): take the node out of the load balancer', Readiness) },
      },
    },
    async (_req, reply) => {
      const checks: Record<string, string> = {};
      let ready = !deps.isShuttingDown();
      for (const [name, probe] of [['store', () => deps.store.ping()], ['bus', () => deps.bus.ping()]] as const) {
        try {
          await withTimeout(probe(), 2000);
          checks[name] = 'ok';
        } catch (err) {
          ready = false;
          checks[name] = (err as Error).message || 'unreachable';
        }
      }
      // What the store knows beyond answering a ping: a failing checkpointer, a failed WAL sync,
      // a database it could not reach a moment ago.
      const status = deps.store.status();
      for (const [name, state] of Object.entries(status.checks)) if (state !== 'ok' && state !== 'relaxed') checks[`store_${name}`] = state;
      if (!status.ok) ready = false;
      if (deps.isShuttingDown()) checks.server = 'shutting down';
      reply.code(ready ? 200 : 503);
      return { status: ready ? ('ready' as const) : ('not_ready' as const), checks };
    },
  );

  routes.get(
    '/metrics',
    {
      schema: {
        ...operations,
        summary: 'Prometheus metrics of this node',
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } } },
      },
    },
    async (_req, reply) => {
      reply.header('content-type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}
