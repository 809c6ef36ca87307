/**
 * The publish pipeline: validated request → one store transaction (event log, per-account seq,
 * webhook deliveries) → bus → dispatcher wake-up. It depends on the event log only.
 *
 * `appendEvents` resolves once the append is durable (synced to disk unless
 * TPX_DURABILITY=relaxed), so the 202 and the fan-out both come after the sync: no client sees
 * a seq that a crash could take back. The bus is best-effort because nodes catch up from the
 * store (SPEC §7).
 */
import { uuidv7 } from '../store/ids.js';
import type { Bus } from '../bus/types.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AccountEvent, AppendResult, EventLog, NewEvent } from '../store/types.js';
import type { PublishRequest } from './validate.js';

export interface PublishOutcome {
  msg_id: string;
  recipients: number;
  duplicate: boolean;
}

export class Publisher {
  constructor(
    private readonly log: Pick<EventLog, 'appendEvents'>,
    private readonly bus: Bus,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    /** Called after deliveries were stored (the webhook dispatcher's wake-up). */
    private readonly onDeliveries: () => void = () => {},
  ) {}

  async publish(request: PublishRequest): Promise<PublishOutcome> {
    const [outcome] = await this.publishMany([request]);
    return outcome;
  }

  /** Store all requests in one transaction (atomic: all or nothing), then fan out. */
  async publishMany(requests: PublishRequest[]): Promise<PublishOutcome[]> {
    const now = Date.now();
    const events: NewEvent[] = requests.map((r) => ({
      msg_id: r.msg_id ?? uuidv7(),
      msg_type: r.msg_type,
      payload_json: r.payload_json,
      source_id: r.source_id,
      target: r.target,
      created_at_ms: now,
    }));
    const results = await this.log.appendEvents(events);
    this.fanOut(results);
    return results.map((r) => ({ msg_id: r.msg_id, recipients: r.recipients, duplicate: r.duplicate }));
  }

  /**
   * Bus and dispatcher for stored appends. Also the store's late-commit listener (server.ts):
   * an append answered 503 whose COMMIT turned out to have landed (EventLog.onLateCommit).
   */
  fanOut(results: AppendResult[]): void {
    const byAccount = new Map<string, AccountEvent[]>();
    let deliveries = 0;
    for (const result of results) {
      deliveries += result.deliveries;
      if (!result.duplicate && result.events.length > 0) this.metrics.eventsIn.inc({ msg_type: result.events[0].msg_type });
      for (const event of result.events) {
        const list = byAccount.get(event.account_id);
        if (list) list.push(event);
        else byAccount.set(event.account_id, [event]);
      }
    }
    for (const [accountId, list] of byAccount) {
      this.bus.publishEvents(accountId, list).catch((err) => {
        // The event is durable; connected nodes catch up from the store when the bus returns.
        this.logger.warn({ err: (err as Error).message, account_id: accountId }, 'bus publish failed; event stays in the store');
      });
    }
    if (deliveries > 0) this.onDeliveries();
  }
}
