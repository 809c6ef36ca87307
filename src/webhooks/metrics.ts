/** The dispatcher's Prometheus metrics (docs/webhooks.md, "Metrics"). */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { DeliveryQueue } from '../store/types.js';

export interface WebhookMetrics {
  attempts: Counter<'outcome' | 'reason'>;
  attemptDuration: Histogram<string>;
  deliveryLatency: Histogram<string>;
  inFlight: Gauge<string>;
  disabled: Counter<'reason'>;
}

export function createWebhookMetrics(metrics: GatewayMetrics, queue: Pick<DeliveryQueue, 'deliveryCounts'>, logger: Logger): WebhookMetrics {
  const registers = [metrics.registry];
  let lastCounts = { pending: 0, failed: 0 };
  let countsAt = 0;
  let countsPromise: Promise<void> | null = null;
  const refreshCounts = async () => {
    // One store query per scrape at most (both gauges share it).
    if (Date.now() - countsAt < 500) return;
    countsPromise ??= queue
      .deliveryCounts()
      .then((c) => {
        lastCounts = c;
        countsAt = Date.now();
      })
      .catch((err) => logger.debug({ err }, 'deliveryCounts failed'))
      .finally(() => {
        countsPromise = null;
      });
    await countsPromise;
  };
  new Gauge({
    name: 'tpx_webhook_deliveries_pending',
    help: 'Webhook deliveries waiting for an (other) attempt',
    registers,
    async collect() {
      await refreshCounts();
      this.set(lastCounts.pending);
    },
  });
  new Gauge({
    name: 'tpx_webhook_deliveries_failed',
    help: 'Webhook deliveries that exhausted their attempts (dead letters), until retried',
    registers,
    async collect() {
      await refreshCounts();
      this.set(lastCounts.failed);
    },
  });
  return {
    attempts: new Counter({
      name: 'tpx_webhook_attempts_total',
      help: 'Webhook attempts by outcome (succeeded|retry|failed) and reason (2xx, 5xx, timeout, ...)',
      labelNames: ['outcome', 'reason'],
      registers,
    }),
    attemptDuration: new Histogram({
      name: 'tpx_webhook_attempt_duration_seconds',
      help: 'Duration of one webhook HTTP attempt',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'tpx_webhook_delivery_latency_seconds',
      help: 'Time from event acceptance to the acknowledging (2xx) attempt',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
      registers,
    }),
    inFlight: new Gauge({ name: 'tpx_webhook_attempts_in_flight', help: 'Webhook attempts in flight on this node', registers }),
    disabled: new Counter({
      name: 'tpx_webhook_endpoints_disabled_total',
      help: 'Endpoints disabled by the dispatcher, by reason (gone|failing)',
      labelNames: ['reason'],
      registers,
    }),
  };
}
