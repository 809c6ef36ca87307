/**
 * Failed webhook attempts in the log, collapsed per endpoint: a partner that is down for an hour
 * used to produce one ~400-character line per retry and push everything else off the terminal.
 * Now the first failure of an endpoint is logged at once (with what is needed to find the
 * delivery), then its further failures are counted and summarised in one line per interval:
 *
 *   webhook endpoint 5c0…: 37 failures in the last 60 s (2 dead-lettered), last: HTTP 503
 *
 * An interval without failures ends the episode; the next failure is logged at once again.
 * Every attempt is still recorded in the store (GET /admin/deliveries/{id}) and counted in
 * /metrics; only the log is collapsed.
 */
import type { Logger } from '../observability/logger.js';

export const FAILURE_LOG_INTERVAL_MS = 60_000;
const LAST_ERROR_CHARS = 160;

export interface FailureInfo {
  webhook_id: string;
  account_id: string;
  delivery_id: string;
  msg_id: string;
  attempt: number;
  of: number;
  status: number | null;
  error: string | null;
  /** True when this attempt was the last (the delivery is a dead letter now). */
  dead_letter: boolean;
  next_attempt_at: string | null;
}

interface Episode {
  account_id: string;
  failures: number;
  deadLetters: number;
  last: string;
  timer: NodeJS.Timeout;
}

const describe = (f: Pick<FailureInfo, 'status' | 'error'>): string => (f.error ?? (f.status !== null ? `HTTP ${f.status}` : 'failed')).slice(0, LAST_ERROR_CHARS);

export class FailureLog {
  private readonly episodes = new Map<string, Episode>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = FAILURE_LOG_INTERVAL_MS,
  ) {}

  failure(f: FailureInfo): void {
    const ep = this.episodes.get(f.webhook_id);
    if (ep) {
      ep.failures++;
      if (f.dead_letter) ep.deadLetters++;
      ep.last = describe(f);
      return;
    }
    this.logger.warn(
      {
        webhook_id: f.webhook_id,
        account_id: f.account_id,
        delivery_id: f.delivery_id,
        msg_id: f.msg_id,
        attempt: f.attempt,
        of: f.of,
        status: f.status,
        error: describe(f),
        next_attempt_at: f.next_attempt_at,
      },
      f.dead_letter ? 'webhook delivery failed (dead letter); further failures of this endpoint are summarised' : 'webhook attempt failed; further failures of this endpoint are summarised',
    );
    const timer = setInterval(() => this.summarise(f.webhook_id), this.intervalMs);
    timer.unref();
    this.episodes.set(f.webhook_id, { account_id: f.account_id, failures: 0, deadLetters: 0, last: describe(f), timer });
  }

  private summarise(webhookId: string): void {
    const ep = this.episodes.get(webhookId);
    if (!ep) return;
    if (ep.failures === 0) {
      clearInterval(ep.timer); // a quiet interval ends the episode
      this.episodes.delete(webhookId);
      return;
    }
    const span = this.intervalMs >= 1000 ? `${Math.round(this.intervalMs / 1000)} s` : `${this.intervalMs} ms`;
    const dead = ep.deadLetters > 0 ? ` (${ep.deadLetters} dead-lettered)` : '';
    this.logger.warn(
      { webhook_id: webhookId, account_id: ep.account_id, failures: ep.failures, dead_letters: ep.deadLetters, interval_ms: this.intervalMs, last: ep.last },
      `webhook endpoint ${webhookId}: ${ep.failures} failures in the last ${span}${dead}, last: ${ep.last}`,
    );
    ep.failures = 0;
    ep.deadLetters = 0;
  }

  /** Log what is pending and stop the timers (shutdown). */
  stop(): void {
    for (const id of [...this.episodes.keys()]) {
      this.summarise(id);
      const ep = this.episodes.get(id);
      if (ep) clearInterval(ep.timer);
      this.episodes.delete(id);
    }
  }
}
