/**
 * Write-behind for api_keys.last_used_at, used by both stores. It is bookkeeping shown to
 * operators ("when was this key last used", at LAST_USED_RESOLUTION_MS resolution), yet updating
 * it inline made the first authentication of every key in a reconnect storm a separate write
 * (a commit on SQLite, a round trip on PostgreSQL). Touches are collected here and written in
 * one batch shortly after; key reads flush first, and the pending value counts for lookups
 * meanwhile. A crash can lose at most the last batch of touches, never anything else.
 */
export const KEY_TOUCH_BATCH_MS = 1000;

export type TouchWriter = (entries: Array<[keyId: string, at: string]>) => void | Promise<void>;

export class KeyTouches {
  private readonly pending = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly write: TouchWriter,
    private readonly batchMs = KEY_TOUCH_BATCH_MS,
  ) {}

  /** The not-yet-written last_used_at of a key, if any. */
  get(keyId: string): string | undefined {
    return this.pending.get(keyId);
  }

  set(keyId: string, at: string): void {
    this.pending.set(keyId, at);
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // Busy or unreachable: the touches stay queued for the next batch (bookkeeping only).
      this.flush().catch(() => this.arm());
    }, this.batchMs);
    this.timer.unref();
  }

  /** Write everything queued (one batch at a time). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const entries = [...this.pending];
    this.pending.clear();
    this.flushing = (async () => {
      try {
        await this.write(entries);
      } catch (err) {
        // Put back what no newer touch replaced meanwhile.
        for (const [id, at] of entries) if (!this.pending.has(id)) this.pending.set(id, at);
        throw err;
      }
    })().finally(() => {
      this.flushing = null;
    });
    await this.flushing;
  }

  /** Final flush; no timer afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
