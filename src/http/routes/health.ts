import type { FastifyInstance } from 'fastify';
import type { Bus } from '../../bus/types.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { Store } from '../../store/types.js';

export function healthRoutes(app: FastifyInstance, deps: { store: Store; bus: Bus; metrics: GatewayMetrics; isShuttingDown: () => boolean }): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
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
    if (deps.isShuttingDown()) checks.server = 'shutting down';
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', checks };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
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
