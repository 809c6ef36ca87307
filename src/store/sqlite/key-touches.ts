/**
 * Write-behind for api_keys.last_used_at. It is bookkeeping shown to operators ("when was this
 * key last used", at LAST_USED_RESOLUTION_MS resolution), yet updating it inline made the first
 * authentication of every key in a reconnect storm a separate write transaction (a WAL commit
 * each, on the event loop). Touches are collected here and written in one transaction shortly
 * after; readers see them at once because reads of keys go through flush() first or consult
 * get(). A crash can lose at most the last batch of touches, never anything else.
 */
import type Database from 'better-sqlite3';

export const KEY_TOUCH_BATCH_MS = 1000;

export class KeyTouches {
  private readonly pending = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private readonly write: (entries: Array<[string, string]>) => void;

  constructor(
    db: Database.Database,
    private readonly batchMs = KEY_TOUCH_BATCH_MS,
  ) {
    const touch = db.prepare('UPDATE api_keys SET last_used_at = ? WHERE key_id = ?');
    this.write = db.transaction((entries: Array<[string, string]>) => {
      for (const [keyId, at] of entries) touch.run(at, keyId);
    });
  }

  /** The not-yet-written last_used_at of a key, if any. */
  get(keyId: string): string | undefined {
    return this.pending.get(keyId);
  }

  set(keyId: string, at: string): void {
    this.pending.set(keyId, at);
    this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.flush();
      } catch {
        this.arm(); // busy: the touches stay queued for the next batch (bookkeeping only)
      }
    }, this.batchMs);
    this.timer.unref();
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const entries = [...this.pending];
    this.write(entries);
    this.pending.clear();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }
}
