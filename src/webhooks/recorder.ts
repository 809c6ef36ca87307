/**
 * Batches the dispatcher's attempt records into few store transactions (`DeliveryQueue.recordAttempts`).
 *
 * Why: with the embedded store one transaction per attempt was the dispatch bottleneck (BEGIN
 * IMMEDIATE + COMMIT and the WAL pages each commit rewrites). Attempts that complete within a
 * few milliseconds of each other are now recorded together.
 *
 * Durability is unchanged in kind: an attempt's promise resolves only once its record is
 * committed, and the lease (2 × timeout + 1 s) stays held until then, so no other node can send
 * the delivery meanwhile. A batch is flushed when it reaches `maxBatch` items or `maxDelayMs`
 * after its first item, whichever comes first — far inside the lease. A process dying between
 * the partner's 2xx and that flush means the delivery is sent once more after the lease expires:
 * the documented at-least-once contract (partners de-duplicate on webhook-id).
 *
 * One flush at a time: items arriving while a flush is running form the next batch (with a
 * synchronous store such as SQLite a flush never overlaps anyway). If a batch fails as a whole,
 * its items are retried one by one so each gets its own result or error.
 */
import type { DeliveryQueue, RecordAttemptItem, RecordAttemptOutcome } from '../store/types.js';

interface Pending {
  item: RecordAttemptItem;
  resolve: (outcome: RecordAttemptOutcome) => void;
  reject: (err: unknown) => void;
}

export interface AttemptRecorderOptions {
  /** Flush as soon as this many attempts wait. */
  maxBatch: number;
  /** Longest time the first attempt of a batch waits for others. */
  maxDelayMs: number;
}

export class AttemptRecorder {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: Pick<DeliveryQueue, 'recordAttempts'>,
    private readonly opts: AttemptRecorderOptions,
  ) {}

  /** Resolves once the attempt is committed (`recorded` false when the lease was lost). */
  record(item: RecordAttemptItem): Promise<RecordAttemptOutcome> {
    return new Promise<RecordAttemptOutcome>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Attempts waiting for a flush (diagnostics and tests). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Flush everything queued now and wait for it (shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      if (this.flushing) await this.flushing;
      else this.flushNow();
    }
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush picks the queue up when it ends
    if (this.queue.length >= this.opts.maxBatch) {
      this.flushNow();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      if (!this.flushing) this.flushNow();
    }, this.opts.maxDelayMs);
  }

  private flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.queue.splice(0, this.opts.maxBatch);
    if (batch.length === 0) return;
    this.flushing = this.write(batch).finally(() => {
      this.flushing = null;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async write(batch: Pending[]): Promise<void> {
    let results: RecordAttemptOutcome[];
    try {
      results = await this.store.recordAttempts(batch.map((p) => p.item));
    } catch {
      // One bad item (or a transient error) must not fail its neighbours: record them one by one.
      for (const p of batch) {
        try {
          p.resolve((await this.store.recordAttempts([p.item]))[0]);
        } catch (err) {
          p.reject(err);
        }
      }
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }
}
