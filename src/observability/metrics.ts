/**
 * Prometheus metrics (SPEC §3.3). One registry per server instance (tests run several servers
 * in one process). Modules add their own metrics to `registry` (e.g. the webhook dispatcher).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  connections: Gauge<string>;
  subscriptions: Gauge<string>;
  eventsIn: Counter<'msg_type'>;
  eventsOut: Counter<string>;
  errors: Counter<'code'>;
  closes: Counter<'code'>;
  publishLatency: Histogram<string>;
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  // Event-loop lag sampled every 50 ms, not prom-client's 10: its timer's 100 wake-ups a second
  // cost an idle node 7-12 ms of CPU per second on the benchmark VM (1.8-2.3 ms/s at 50 ms; the
  // V8 helper threads went quiet too), ≈ 1 µs per message at 1,000 subscribers × 10 ev/s. A stall
  // longer than 50 ms still shows at about its length; the documented alert is p99 > 100 ms.
  collectDefaultMetrics({ register: registry, prefix: 'tpx_process_', eventLoopMonitoringPrecision: 50 });
  return {
    registry,
    connections: new Gauge({ name: 'tpx_ws_connections', help: 'Open WebSocket connections', registers: [registry] }),
    subscriptions: new Gauge({ name: 'tpx_ws_subscriptions', help: 'Room subscriptions across open connections', registers: [registry] }),
    eventsIn: new Counter({ name: 'tpx_events_published_total', help: 'Events accepted by the publish API', labelNames: ['msg_type'], registers: [registry] }),
    eventsOut: new Counter({ name: 'tpx_ws_events_sent_total', help: 'Event frames written to WebSocket connections', registers: [registry] }),
    errors: new Counter({ name: 'tpx_errors_total', help: 'Error frames and HTTP errors by code', labelNames: ['code'], registers: [registry] }),
    closes: new Counter({ name: 'tpx_ws_closes_total', help: 'Server-initiated WebSocket closes by close code', labelNames: ['code'], registers: [registry] }),
    publishLatency: new Histogram({
      name: 'tpx_publish_to_send_seconds',
      help: 'Time from publish acceptance to the WebSocket write',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}
