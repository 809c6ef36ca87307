/**
 * The access-change log on the embedded store (the AccessChangeLog aggregate, types.ts). Rows are
 * written by triggers on api_keys and accounts (schema.ts, migration 6) inside the writing
 * transaction; here they are only read, acknowledged and pruned. Reads are a primary-key range
 * scan; a reader's acknowledgement is one upsert.
 */
import type { AccessChangeCursor, AccessChangeLog, AccessChangePage } from '../types.js';
import { advanceCursor, cursorAt, DEFAULT_ACCESS_PAGE, planAccessRead, READER_RETENTION_MS, safePosition, type AccessChangeRow } from '../shared/access-changes.js';
import type { SqliteDatabase } from './database.js';

const COLS = 'id, kind, account_id, key_id, reason, at_ms';

export class SqliteAccessChanges implements AccessChangeLog {
  constructor(private readonly d: SqliteDatabase) {}

  async accessChangeHead(): Promise<AccessChangeCursor> {
    this.d.check();
    return cursorAt(this.head());
  }

  private head(): number {
    return (this.d.prepare('SELECT max(id) FROM access_changes').pluck().get() as number | null) ?? 0;
  }

  async readAccessChanges(cursor: AccessChangeCursor, opts: { reader: string | null; limit?: number }): Promise<AccessChangePage> {
    this.d.check();
    const now = Date.now();
    if (opts.reader !== null) {
      // Bookkeeping: not waited for (a lost acknowledgement only makes a revoking call wait longer).
      this.d
        .prepare('INSERT INTO access_readers (reader, position, seen_at_ms) VALUES (?, ?, ?) ON CONFLICT (reader) DO UPDATE SET position = excluded.position, seen_at_ms = excluded.seen_at_ms')
        .run(opts.reader, safePosition(cursor), now);
    }
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_ACCESS_PAGE));
    const { after, holeIds } = planAccessRead(cursor, now);
    const rows = this.d
      .prepare(`SELECT ${COLS} FROM access_changes WHERE id > ? OR id IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`)
      .all(after, JSON.stringify(holeIds), limit) as AccessChangeRow[];
    const oldest = this.d.prepare('SELECT min(id) FROM access_changes').pluck().get() as number | null;
    return advanceCursor(cursor, rows, { limit, now, oldest });
  }

  async accessChangeReaders(liveWithinMs: number): Promise<{ head: number; readers: Array<{ reader: string; position: number }> }> {
    this.d.check();
    const readers = this.d.prepare('SELECT reader, position FROM access_readers WHERE seen_at_ms > ?').all(Date.now() - liveWithinMs) as Array<{ reader: string; position: number }>;
    return { head: this.head(), readers };
  }

  async pruneAccessChanges(olderThanMs: number): Promise<number> {
    this.d.check();
    this.d.prepare('DELETE FROM access_readers WHERE seen_at_ms < ?').run(Date.now() - READER_RETENTION_MS);
    // The newest row stays, so max(id) (a new reader's starting point) never goes back.
    return this.d.prepare('DELETE FROM access_changes WHERE at_ms < ? AND id < (SELECT max(id) FROM access_changes)').run(olderThanMs).changes;
  }
}
