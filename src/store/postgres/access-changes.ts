/**
 * The access-change log on PostgreSQL (the AccessChangeLog aggregate, types.ts). Rows are written
 * by triggers on api_keys and accounts (schema.ts, migration 3) inside the writing transaction;
 * here they are read, acknowledged and pruned. One read is one statement: the reader's
 * acknowledgement (an upsert in a CTE), the lowest id still stored, and the page (a primary-key
 * range scan plus the holes by id). Commits out of id order are handled by the shared cursor
 * rules (shared/access-changes.ts). Readers' liveness uses the database's clock only.
 */
import type { AccessChangeCursor, AccessChangeLog, AccessChangePage } from '../types.js';
import { advanceCursor, cursorAt, DEFAULT_ACCESS_PAGE, planAccessRead, READER_RETENTION_MS, safePosition, type AccessChangeRow } from '../shared/access-changes.js';
import type { PgDatabase } from './database.js';

export class PgAccessChanges implements AccessChangeLog {
  constructor(private readonly d: PgDatabase) {}

  async accessChangeHead(): Promise<AccessChangeCursor> {
    const row = await this.d.one<{ head: number | null }>('SELECT max(id) AS head FROM access_changes');
    return cursorAt(row?.head ?? 0);
  }

  async readAccessChanges(cursor: AccessChangeCursor, opts: { reader: string | null; limit?: number }): Promise<AccessChangePage> {
    const now = Date.now();
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_ACCESS_PAGE));
    const { after, holeIds } = planAccessRead(cursor, now);
    const { rows } = await this.d.query<AccessChangeRow & { oldest: number | null; id: number | null }>(
      `WITH ack AS (
         INSERT INTO access_readers (reader, position, seen_at) SELECT $1, $2, now() WHERE $1::text IS NOT NULL
         ON CONFLICT (reader) DO UPDATE SET position = excluded.position, seen_at = excluded.seen_at
       )
       SELECT b.oldest, c.id, c.kind, c.account_id, c.key_id, c.reason, c.at_ms
       FROM (SELECT min(id) AS oldest FROM access_changes) b
       LEFT JOIN LATERAL (
         SELECT id, kind, account_id, key_id, reason, at_ms FROM access_changes
         WHERE id > $3 OR id = ANY($4::bigint[]) ORDER BY id LIMIT $5
       ) c ON true
       ORDER BY c.id`,
      [opts.reader, safePosition(cursor), after, holeIds, limit],
    );
    const page = rows.filter((r) => r.id !== null) as AccessChangeRow[];
    return advanceCursor(cursor, page, { limit, now, oldest: rows[0]?.oldest ?? null });
  }

  async accessChangeReaders(liveWithinMs: number): Promise<{ head: number; readers: Array<{ reader: string; position: number }> }> {
    const { rows } = await this.d.query<{ head: number | null; reader: string | null; position: number | null }>(
      `SELECT h.head, r.reader, r.position
       FROM (SELECT max(id) AS head FROM access_changes) h
       LEFT JOIN access_readers r ON r.seen_at > now() - make_interval(secs => $1::double precision / 1000)`,
      [liveWithinMs],
    );
    return {
      head: rows[0]?.head ?? 0,
      readers: rows.filter((r) => r.reader !== null).map((r) => ({ reader: r.reader!, position: r.position! })),
    };
  }

  async pruneAccessChanges(olderThanMs: number): Promise<number> {
    await this.d.query('DELETE FROM access_readers WHERE seen_at < now() - make_interval(secs => $1::double precision / 1000)', [READER_RETENTION_MS]);
    // The newest row stays, so max(id) (a new reader's starting point) never goes back.
    const res = await this.d.query('DELETE FROM access_changes WHERE at_ms < $1 AND id < (SELECT max(id) FROM access_changes)', [olderThanMs]);
    return res.rowCount ?? 0;
  }
}
