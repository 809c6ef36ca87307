import type { FastifyInstance } from 'fastify';
import type { Bus } from '../../bus/types.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { StoreLifecycle } from '../../store/types.js';

export function healthRoutes(app: FastifyInstance, deps: { store: Pick<StoreLifecycle, 'ping' | 'status'>; bus: Bus; metrics: GatewayMetrics; isShuttingDown: () => boolean }): void {
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
    // What the store knows beyond answering a ping: a failing checkpointer, a failed WAL sync,
    // a database it could not reach a moment ago.
    const status = deps.store.status();
    for (const [name, state] of Object.entries(status.checks)) if (state !== 'ok' && state !== 'relaxed') checks[`store_${name}`] = state;
    if (!status.ok) ready = false;
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
