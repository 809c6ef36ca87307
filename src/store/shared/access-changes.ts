/**
 * The access-change log's rules both stores follow (types.ts AccessChangeLog): how a cursor
 * moves, how a reader's acknowledged position follows from it, and how rows map to changes.
 *
 * Why holes: ids are assigned when a change is written and become visible when its transaction
 * commits. On PostgreSQL two transactions can commit in the opposite order of their ids (a
 * deactivation that took id 11 commits before the one that took id 10), so a reader that saw 11
 * must not assume 10 never existed. Every id skipped below the highest one read is a hole, asked
 * for again by id on each read (a primary-key lookup) until it appears or HOLE_TTL_MS passed:
 * far longer than any transaction may stay open (statement timeout 10 s, idle in transaction
 * 15 s), so a hole still empty then was a rollback. SQLite commits one writer at a time in id
 * order and never leaves holes a later read could fill; it follows the same rules anyway.
 *
 * The same change of one key (or account) cannot commit out of order: the second writer's trigger
 * runs after the row lock the first one held, so its id is higher and it commits later. A reader
 * applying a page in id order therefore ends with each key's latest state.
 */
import type { AccessChange, AccessChangeCursor, AccessChangeKind, AccessChangeLog } from '../types.js';

/** How long a skipped id is asked for again before it counts as a rolled-back write. */
export const HOLE_TTL_MS = 60_000;
/** Holes tracked at most (a burst of rollbacks must not grow the cursor without bound). */
export const MAX_HOLES = 10_000;
/** Rows per read unless the caller says otherwise. */
export const DEFAULT_ACCESS_PAGE = 1000;
/** Readers that have not reported for this long are forgotten at the next prune. */
export const READER_RETENTION_MS = 24 * 3_600_000;

/** The members a store exposes for this aggregate (checked against the interface at compile time). */
export const ACCESS_CHANGE_LOG_MEMBERS = ['accessChangeHead', 'readAccessChanges', 'accessChangeReaders', 'pruneAccessChanges'] as const satisfies readonly (keyof AccessChangeLog)[];
type Missing = Exclude<keyof AccessChangeLog, (typeof ACCESS_CHANGE_LOG_MEMBERS)[number]>;
const exhaustive: [Missing] extends [never] ? true : never = true;
void exhaustive;

export const cursorAt = (after: number): AccessChangeCursor => ({ after: Math.max(0, after), holes: [] });

/** What to ask the database for: ids after `after`, and the holes still worth asking for. */
export function planAccessRead(cursor: AccessChangeCursor, now: number): { after: number; holeIds: number[] } {
  return { after: cursor.after, holeIds: cursor.holes.filter((h) => now - h.since_ms < HOLE_TTL_MS).map((h) => h.id) };
}

/**
 * The reader's acknowledged position for `cursor`: every id at or below it was read (or is a write
 * that was rolled back). Holes keep it below them until they are filled or expire.
 */
export function safePosition(cursor: AccessChangeCursor): number {
  let low = cursor.after;
  for (const h of cursor.holes) if (h.id - 1 < low) low = h.id - 1;
  return low;
}

export interface AccessChangeRow {
  id: number;
  kind: string;
  account_id: string;
  key_id: string | null;
  reason: string | null;
  at_ms: number;
}

export function toAccessChange(row: AccessChangeRow): AccessChange {
  return {
    id: Number(row.id),
    kind: row.kind as AccessChangeKind,
    account_id: row.account_id,
    key_id: row.key_id,
    reason: row.reason === 'inactive' || row.reason === 'revoked' ? row.reason : null,
    at_ms: Number(row.at_ms),
  };
}

/**
 * The page read for `cursor` (rows with id > after, and whichever holes appeared, in id order):
 * the changes not returned before, and the next cursor. `oldest` is the lowest id still stored
 * (null for an empty log): above `after + 1`, rows this reader never saw were pruned.
 */
export function advanceCursor(
  cursor: AccessChangeCursor,
  rows: readonly AccessChangeRow[],
  opts: { limit: number; now: number; oldest: number | null },
): { changes: AccessChange[]; cursor: AccessChangeCursor; more: boolean; behind: boolean } {
  const { now } = opts;
  const holes = new Map<number, number>();
  for (const h of cursor.holes) if (now - h.since_ms < HOLE_TTL_MS) holes.set(h.id, h.since_ms);
  const changes: AccessChange[] = [];
  let after = cursor.after;
  for (const row of [...rows].sort((a, b) => Number(a.id) - Number(b.id))) {
    const id = Number(row.id);
    if (id <= after) {
      // A hole filled by a late commit; anything else at or below `after` was returned before.
      if (holes.delete(id)) changes.push(toAccessChange(row));
      continue;
    }
    for (let skipped = after + 1; skipped < id && holes.size < MAX_HOLES; skipped++) holes.set(skipped, now);
    after = id;
    changes.push(toAccessChange(row));
  }
  return {
    changes: changes.sort((a, b) => a.id - b.id),
    cursor: { after, holes: [...holes].map(([id, since_ms]) => ({ id, since_ms })) },
    more: rows.length >= opts.limit,
    behind: opts.oldest !== null && opts.oldest > cursor.after + 1,
  };
}
