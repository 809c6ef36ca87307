/**
 * The per-account sequencer of one node: turns what the bus delivers (batches of one account,
 * possibly out of order or duplicated when several nodes publish) into the account's stream in
 * strict seq order. Missing seqs are read from the store (the truth); seqs the store no longer
 * has (pruned) are announced as a gap, never skipped silently (SPEC §2.8).
 *
 *   parking ──start(baseline)──▶ running ──stop()──▶ stopped
 *
 * While its account is being prepared (bus subscribed, baseline not yet read) events are parked;
 * `start` drops what the baseline already covers. Everything held is bounded (count and bytes):
 * an event that does not fit is dropped, because the store has it and the next fill reads it.
 */
import type { Logger } from '../observability/logger.js';
import type { AccountEvent, EventLog } from '../store/types.js';

export interface SequencerSink {
  /** In-order, contiguous events. */
  deliver(events: AccountEvent[]): void;
  /** Seqs `from`..`to` will never be delivered. */
  gap(from: number, to: number): void;
}

export interface SequencerLimits {
  /** Events held out of order at most (count and payload bytes). */
  maxPending: number;
  maxPendingBytes: number;
  /** How long an out-of-order event waits for the missing ones before the store is asked. */
  gapWaitMs: number;
  /** Retry delay when the store failed or does not have the missing seqs yet. */
  retryMs: number;
  /** Events per store read while filling. */
  fillPage: number;
}

export const DEFAULT_SEQUENCER_LIMITS: SequencerLimits = {
  maxPending: 10_000,
  maxPendingBytes: 16 * 1024 * 1024,
  gapWaitMs: 30,
  retryMs: 500,
  fillPage: 64,
};

type Mode = 'parking' | 'running' | 'stopped';

export class Sequencer {
  private mode: Mode = 'parking';
  /** Highest seq handed to the sink, contiguous (meaningless while parking). */
  private last = 0;
  private readonly pending = new Map<number, AccountEvent>();
  private pendingBytes = 0;
  /** Some event did not fit in `pending`: the store must be read up to its end. */
  private dropped = false;
  private timer: NodeJS.Timeout | null = null;
  private filling = false;
  private fillRequested = false;
  /** Bumped by every start/stop: a fill that awaited across one of them is stale. */
  private epoch = 0;

  constructor(
    private readonly accountId: string,
    private readonly store: EventLog,
    private readonly sink: SequencerSink,
    private readonly logger: Logger,
    private readonly limits: SequencerLimits = DEFAULT_SEQUENCER_LIMITS,
  ) {}

  /** The account's stream position on this node: every later seq reaches the sink (or a gap). */
  get position(): number {
    return this.mode === 'running' ? this.last : 0;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Hold events from now on until start() (the account is being prepared). */
  park(): void {
    this.reset();
    this.mode = 'parking';
  }

  /** parking → running: the store's last seq when the bus subscription was in place. */
  start(baseline: number): void {
    if (this.mode !== 'parking') return;
    this.epoch++;
    this.mode = 'running';
    this.last = baseline;
    for (const [seq, event] of this.pending) if (seq <= baseline) this.unpark(seq, event);
    this.drain();
  }

  stop(): void {
    this.reset();
    this.mode = 'stopped';
  }

  private reset(): void {
    this.epoch++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    this.pendingBytes = 0;
    this.dropped = false;
    this.fillRequested = false;
  }

  /** Events of this account from the bus. */
  receive(events: AccountEvent[]): void {
    if (events.length === 0 || this.mode === 'stopped') return;
    if (this.mode === 'parking') {
      for (const event of events) this.park1(event);
      return;
    }
    // Fast path: nothing waiting and this batch continues the stream exactly.
    let next = this.last + 1;
    let contiguous = this.pending.size === 0 && !this.dropped;
    for (let i = 0; contiguous && i < events.length; i++, next++) contiguous = events[i].seq === next;
    if (contiguous) {
      this.last = next - 1;
      this.sink.deliver(events);
      return;
    }
    // Slow path: hold everything not yet delivered, release what is now contiguous.
    for (const event of events) if (event.seq > this.last) this.park1(event);
    this.drain();
  }

  /** Read from the store whatever may have been missed (the bus was deaf for a while). */
  catchUp(): Promise<void> {
    return this.mode === 'running' ? this.fill() : Promise.resolve();
  }

  private park1(event: AccountEvent): void {
    if (this.pending.has(event.seq)) return;
    const bytes = event.payload_json.length;
    if (this.pending.size >= this.limits.maxPending || this.pendingBytes + bytes > this.limits.maxPendingBytes) {
      this.dropped = true;
      return;
    }
    this.pending.set(event.seq, event);
    this.pendingBytes += bytes;
  }

  private unpark(seq: number, event: AccountEvent): void {
    this.pending.delete(seq);
    this.pendingBytes -= event.payload_json.length;
  }

  /** Deliver what is contiguous; if a hole remains, ask the store after a short wait. */
  private drain(): void {
    const ready: AccountEvent[] = [];
    this.take(ready);
    if (ready.length) this.sink.deliver(ready);
    if (this.pending.size > 0 || this.dropped) this.schedule(this.limits.gapWaitMs);
  }

  private schedule(ms: number): void {
    if (this.timer || this.mode !== 'running') return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.fill();
    }, ms);
    this.timer.unref?.();
  }

  /**
   * Read the missing seqs from the store and deliver everything in order. One fill at a time;
   * a request meanwhile runs another pass. Re-validates after every await (stopped or restarted?).
   */
  private async fill(): Promise<void> {
    if (this.filling) {
      this.fillRequested = true;
      return;
    }
    this.filling = true;
    const epoch = this.epoch;
    try {
      do {
        this.fillRequested = false;
        await this.fillPass(epoch);
      } while (this.fillRequested && epoch === this.epoch);
    } catch (err) {
      if (epoch !== this.epoch) return;
      this.logger.warn({ err: (err as Error).message, account_id: this.accountId }, 'gap fill failed; retrying');
      this.schedule(this.limits.retryMs);
    } finally {
      this.filling = false;
    }
  }

  private async fillPass(epoch: number): Promise<void> {
    const limit = this.limits.fillPage;
    for (;;) {
      const page = await this.store.readEvents({ account_id: this.accountId, after_seq: this.last, types: null, limit });
      if (epoch !== this.epoch || this.mode !== 'running') return;
      if (page.pruned_through > this.last) this.skipTo(page.pruned_through);
      // Seqs are committed in order, so a stored seq past a hole means the hole is gone for good.
      const first = page.events.find((e) => e.seq > this.last);
      if (first && first.seq > this.last + 1) this.skipTo(first.seq - 1);
      if (!first && this.pending.size > 0 && page.last_seq >= lowestKey(this.pending)) {
        // Nothing stored after `last`, yet later seqs reached us and the stream is past them.
        this.skipTo(lowestKey(this.pending) - 1);
      }
      const ready: AccountEvent[] = [];
      this.take(ready);
      for (const event of page.events) {
        if (event.seq <= this.last) continue;
        if (event.seq !== this.last + 1) break; // cannot happen after the skips above
        const held = this.pending.get(event.seq);
        if (held) this.unpark(event.seq, held);
        this.last = event.seq;
        ready.push(event);
        this.take(ready);
      }
      if (ready.length) this.sink.deliver(ready);
      const full = page.events.length === limit;
      if (full) continue;
      this.dropped = false; // read to the store's end: nothing dropped is missing any more
      // A hole the store cannot fill yet (a commit not visible to us yet): try again shortly.
      if (this.pending.size > 0) this.schedule(this.limits.retryMs);
      return;
    }
  }

  /** Move what is held and now contiguous into `ready`. */
  private take(ready: AccountEvent[]): void {
    for (let next = this.pending.get(this.last + 1); next; next = this.pending.get(this.last + 1)) {
      this.unpark(next.seq, next);
      this.last = next.seq;
      ready.push(next);
    }
  }

  /** Seqs up to `target` that are missing will never arrive: deliver what is held, announce the rest. */
  private skipTo(target: number): void {
    const held = [...this.pending.keys()].filter((s) => s <= target).sort((a, b) => a - b);
    let ready: AccountEvent[] = [];
    for (const seq of held) {
      const event = this.pending.get(seq)!;
      this.unpark(seq, event);
      if (seq <= this.last) continue;
      if (seq > this.last + 1) {
        if (ready.length) this.sink.deliver(ready);
        ready = [];
        this.sink.gap(this.last + 1, seq - 1);
      }
      ready.push(event);
      this.last = seq;
    }
    if (ready.length) this.sink.deliver(ready);
    if (this.last < target) {
      this.sink.gap(this.last + 1, target);
      this.last = target;
    }
  }
}

function lowestKey(map: Map<number, unknown>): number {
  let lowest = Infinity;
  for (const key of map.keys()) if (key < lowest) lowest = key;
  return lowest;
}
