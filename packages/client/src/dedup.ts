/**
 * Exactly-once processing across delivery paths (WebSocket + webhooks), keyed by `msg_id`.
 *
 * One `Deduplicator` is shared by the `TpxClient` and the webhook handlers of the same
 * process. Memory is bounded: the ids of completed events live in an LRU of `capacity`
 * entries (default 10 000), so an event re-delivered after more than `capacity` newer
 * events is no longer recognised. Pick a capacity that covers the webhook retry window.
 * Across restarts, `snapshot()` and `restore()` carry the ids over (persist the snapshot with
 * the client's `lastSeq`).
 *
 * `run(msgId, fn)` is the only operation paths need:
 * - id already completed → `fn` is not called, returns `false`;
 * - id in flight on another path → waits for that attempt; if it succeeded returns `false`,
 *   if it failed, this path runs `fn` itself (the failed attempt is not remembered);
 * - otherwise runs `fn`; on success the id is remembered and `true` is returned; on failure
 *   the id is forgotten (so a retry, e.g. the webhook redelivery, can process it) and the
 *   error is rethrown.
 */
export interface DeduplicatorOptions {
  /** Maximum number of remembered msg_ids (LRU). Default 10 000. */
  capacity?: number;
}

/**
 * What a Deduplicator remembers, as plain JSON: the handled msg_ids, least recently used first.
 * Persist it together with `client.lastSeq` (one write, one checkpoint) and `restore()` it at the
 * next start, so webhook retries of events handled before a restart are recognised (docs/sdk.md).
 * At most `capacity` ids, 36 characters each: about 0.4 MB of JSON per 10 000.
 */
export interface DeduplicatorSnapshot {
  v: 1;
  ids: string[];
}

/** msg_ids are UUIDs; anything longer than this in a snapshot is not one of ours. */
const MAX_ID_LENGTH = 128;

export class Deduplicator {
  readonly capacity: number;
  /** Map preserves insertion order: the first key is the least recently used. */
  private readonly done = new Map<string, true>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(options: DeduplicatorOptions = {}) {
    const capacity = options.capacity ?? 10_000;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('Deduplicator capacity must be an integer ≥ 1');
    this.capacity = capacity;
  }

  /** Number of remembered (completed) ids. */
  get size(): number {
    return this.done.size;
  }

  /** True if `msgId` was completed (refreshes its LRU position). */
  has(msgId: string): boolean {
    if (!this.done.has(msgId)) return false;
    this.done.delete(msgId);
    this.done.set(msgId, true);
    return true;
  }

  /** True if `msgId` is being processed right now. */
  isInFlight(msgId: string): boolean {
    return this.inFlight.has(msgId);
  }

  /** Remember `msgId` as completed without running anything (e.g. restored from a checkpoint). */
  add(msgId: string): void {
    this.done.delete(msgId);
    this.done.set(msgId, true);
    while (this.done.size > this.capacity) {
      const oldest = this.done.keys().next().value as string;
      this.done.delete(oldest);
    }
  }

  /** Forget `msgId`. */
  delete(msgId: string): void {
    this.done.delete(msgId);
  }

  clear(): void {
    this.done.clear();
  }

  /**
   * The remembered ids (LRU order, at most `capacity`) as JSON-ready data. Ids in flight are not
   * included: their handler has not finished, so after a restart they must run again.
   */
  snapshot(): DeduplicatorSnapshot {
    return { v: 1, ids: [...this.done.keys()] };
  }

  /**
   * Remember the ids of a snapshot (e.g. the one saved before the last restart), keeping their
   * order; ids already remembered count as more recent. With a smaller capacity than the one that
   * saved it, the most recent ones are kept. Throws TypeError on anything but a snapshot.
   */
  restore(snapshot: DeduplicatorSnapshot): void {
    const s = snapshot as Partial<DeduplicatorSnapshot> | null | undefined;
    if (!s || typeof s !== 'object' || s.v !== 1 || !Array.isArray(s.ids)) {
      throw new TypeError('Deduplicator.restore: expected a snapshot { v: 1, ids: [...] } from Deduplicator.snapshot()');
    }
    const ids = s.ids.slice(-this.capacity);
    if (!ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH)) {
      throw new TypeError('Deduplicator.restore: snapshot ids must be msg_id strings'); // nothing changed
    }
    const newer = [...this.done.keys()];
    this.done.clear();
    for (const id of ids) this.done.set(id, true);
    for (const id of newer) this.add(id);
  }

  /** Run `fn` unless `msgId` was (or is being) handled; see the class comment. */
  async run(msgId: string, fn: () => void | Promise<void>): Promise<boolean> {
    for (;;) {
      if (this.has(msgId)) return false;
      const pending = this.inFlight.get(msgId);
      if (!pending) break;
      try {
        await pending;
      } catch {
        /* the other path failed: loop and try ourselves */
      }
    }
    let settle!: (err?: unknown) => void;
    const attempt = new Promise<void>((resolve, reject) => {
      settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
    });
    attempt.catch(() => undefined); // observed by waiters only
    this.inFlight.set(msgId, attempt);
    try {
      await fn();
    } catch (err) {
      this.inFlight.delete(msgId);
      settle(err ?? new Error('handler failed'));
      throw err;
    }
    this.inFlight.delete(msgId);
    this.add(msgId);
    settle();
    return true;
  }
}
