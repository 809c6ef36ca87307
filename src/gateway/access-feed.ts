/**
 * The node's reader of the store's access-change log (store/types.ts AccessChangeLog): the path by
 * which every revocation, reactivation and account change reaches this node whether or not it
 * hears the bus (SPEC §2.5, §7; docs/architecture.md, Revocation).
 *
 * - Every POLL_MS it reads the log after its cursor: one indexed query, whatever the number of
 *   accounts or connections here, and applies what it finds in order. So a key deactivated
 *   through a node cut off from Redis, or while this node was deaf, is closed here within about
 *   POLL_MS.
 * - Each read also reports how far this node has applied the log (its acknowledgement): after
 *   applying anything it reads again at once, so the position moves within a round trip.
 * - `waitForReaders` is the other side: a node announcing a change waits until every node that
 *   reads the log has applied it or acknowledged it over the bus.
 */
import type { Logger } from '../observability/logger.js';
import type { AccessChange, AccessChangeCursor, AccessChangeLog } from '../store/types.js';

/** How often the log is read. SPEC §7: a revocation lands on every node within 2 s. */
export const POLL_MS = 500;
/** A reader that has not read the log for this long is not waited for (stopped, partitioned, gone). */
export const READER_LIVE_MS = 1500;
/** Pause between two looks at the readers' positions while waiting for them. */
const WAIT_STEP_MS = 50;

export interface AccessFeedHandler {
  /** Apply changes read from the log, in id order; the next read (the acknowledgement) waits for it. */
  apply(changes: AccessChange[]): void | Promise<void>;
  /** Changes this node never read were pruned: re-check everything it holds against the store. */
  resync(): Promise<void>;
}

export class AccessFeed {
  private cursor: AccessChangeCursor | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private failing = false;

  constructor(
    private readonly log: AccessChangeLog,
    /** This node's id as a reader (the bus instance), or null when nobody waits for it (one node). */
    readonly reader: string | null,
    private readonly handler: AccessFeedHandler,
    private readonly logger: Logger,
  ) {}

  /** Begin at the log's current end (nothing older concerns a node without connections) and poll. */
  async start(): Promise<void> {
    await this.readNow().catch(() => undefined);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Read (and apply) everything committed so far. A read already running when this is called
   * may have started before the caller's interest: another one follows it.
   */
  readNow(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          await this.readAll();
        } while (this.again && !this.stopped);
      } finally {
        this.reading = null;
      }
    })();
    return this.reading;
  }

  private async readAll(): Promise<void> {
    try {
      if (this.cursor === null) this.cursor = await this.log.accessChangeHead();
      for (;;) {
        const page = await this.log.readAccessChanges(this.cursor, { reader: this.reader });
        if (this.stopped) return;
        this.cursor = page.cursor;
        if (page.behind) {
          this.logger.warn({}, 'access-change log pruned past this node: re-checking every key and account held here');
          await this.handler.resync();
        }
        if (page.changes.length > 0) await this.handler.apply(page.changes);
        if (this.failing) this.logger.info({}, 'access-change log readable again');
        this.failing = false;
        // Read again at once after applying anything: that read reports the new position.
        if (!page.more && page.changes.length === 0) return;
      }
    } catch (err) {
      if (this.stopped) return;
      if (!this.failing) this.logger.warn({ err: (err as Error).message }, 'access-change log read failed; retrying');
      this.failing = true;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.readNow().finally(() => this.schedule());
    }, POLL_MS);
    this.timer.unref();
  }

  /**
   * Wait until every other node reading the log has applied it up to its current end, or
   * acknowledged over the bus (`ackedBy`), at most until `deadline`. True when they all did.
   */
  async waitForReaders(ackedBy: ReadonlySet<string>, deadline: number): Promise<boolean> {
    let head: number | null = null;
    for (;;) {
      try {
        const now = await this.log.accessChangeReaders(READER_LIVE_MS);
        head ??= now.head;
        const behind = now.readers.filter((r) => r.reader !== this.reader && !ackedBy.has(r.reader) && r.position < head!);
        if (behind.length === 0) return true;
      } catch {
        // The store is unreachable: nobody can be shown to have applied it; wait out the deadline.
      }
      if (Date.now() + WAIT_STEP_MS > deadline) return false;
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    }
  }
}
