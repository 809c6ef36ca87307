/**
 * The access-change log's cursor (store/shared/access-changes.ts), where PostgreSQL commits land
 * out of id order: a model-based test of the pure rules, then the real thing (two transactions on
 * a private PostgreSQL committing in the opposite order of their ids).
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceCursor, cursorAt, HOLE_TTL_MS, planAccessRead, safePosition, type AccessChangeRow } from '../../src/store/shared/access-changes.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import type { AccessChangeCursor } from '../../src/store/types.js';
import { startPostgres, type TestPostgres } from '../helpers/pg.js';

const row = (id: number): AccessChangeRow => ({ id, kind: 'key_disabled', account_id: 'a', key_id: `k${id}`, reason: 'inactive', at_ms: 0 });

describe('access-change cursor (model)', () => {
  it('commits in any order, reads at any time: each committed change is read exactly once, and the acknowledged position never passes an unread one', () => {
    // Ids 1..n are taken in order; each commits (or rolls back) at a random later step; the
    // reader reads between steps with a random page size. Everything happens within the hole TTL.
    const scenario = fc
      .integer({ min: 1, max: 30 })
      .chain((n) =>
        fc.record({
          n: fc.constant(n),
          commitOrder: fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i + 1), { minLength: 0, maxLength: n }),
          readsAfter: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
          limits: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 3 * n + 3, maxLength: 3 * n + 3 }),
        }),
      );
    fc.assert(
      fc.property(scenario, ({ commitOrder, readsAfter, limits }) => {
        const committed = new Set<number>();
        const returned: number[] = [];
        let cursor: AccessChangeCursor = cursorAt(0);
        let reads = 0;
        const read = () => {
          const limit = limits[reads++ % limits.length];
          const { after, holeIds } = planAccessRead(cursor, 1000);
          const rows = [...committed].filter((id) => id > after || holeIds.includes(id)).sort((a, b) => a - b).slice(0, limit).map(row);
          const oldest = committed.size ? Math.min(...committed) : null;
          const page = advanceCursor(cursor, rows, { limit, now: 1000, oldest });
          returned.push(...page.changes.map((c) => c.id));
          cursor = page.cursor;
          // Acknowledged position: every committed id at or below it was read.
          const position = safePosition(cursor);
          for (const id of committed) if (id <= position) expect(returned).toContain(id);
          return page.more;
        };
        commitOrder.forEach((id, i) => {
          committed.add(id);
          if (readsAfter[i]) while (read());
        });
        while (read());
        expect(returned.sort((a, b) => a - b)).toEqual([...committed].sort((a, b) => a - b));
        expect(new Set(returned).size).toBe(returned.length);
      }),
      { numRuns: 300 },
    );
  });

  it('a hole that stays empty past the TTL is a rollback: the position moves past it', () => {
    let cursor = cursorAt(0);
    let page = advanceCursor(cursor, [row(2)], { limit: 10, now: 0, oldest: 2 });
    cursor = page.cursor;
    expect(page.changes.map((c) => c.id)).toEqual([2]);
    expect(safePosition(cursor)).toBe(0);
    expect(planAccessRead(cursor, HOLE_TTL_MS - 1).holeIds).toEqual([1]);
    expect(planAccessRead(cursor, HOLE_TTL_MS).holeIds).toEqual([]);
    page = advanceCursor(cursor, [], { limit: 10, now: HOLE_TTL_MS, oldest: 2 });
    expect(safePosition(page.cursor)).toBe(2);
  });
});

describe('access-change log on PostgreSQL: commits out of id order', () => {
  let server: TestPostgres;
  let store: PostgresStore;
  beforeAll(async () => {
    server = await startPostgres();
    store = new PostgresStore({ connectionString: server.url, max: 4 });
    await store.init();
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('a change whose transaction commits after a later id was read is still read, once, and holds the acknowledged position back until then', async () => {
    const a = await store.createAccount({});
    const slow = (await store.createApiKey(a.account_id, {})).key;
    const fast = (await store.createApiKey(a.account_id, {})).key;
    let cursor = await store.accessChangeHead();
    const tx = new pg.Client({ connectionString: server.url });
    await tx.connect();
    try {
      await tx.query('BEGIN');
      await tx.query("UPDATE api_keys SET status = 'inactive' WHERE key_id = $1", [slow.key_id]); // takes the lower id
      await store.setApiKeyStatus(fast.key_id, 'inactive'); // takes the next id, commits first
      let page = await store.readAccessChanges(cursor, { reader: 'n1' });
      expect(page.changes.map((c) => c.key_id)).toEqual([fast.key_id]);
      cursor = page.cursor;
      page = await store.readAccessChanges(cursor, { reader: 'n1' });
      expect(page.changes).toEqual([]);
      const { head, readers } = await store.accessChangeReaders(60_000);
      expect(readers[0].position).toBeLessThan(head); // the hole below it is not acknowledged
      await tx.query('COMMIT');
      page = await store.readAccessChanges(page.cursor, { reader: 'n1' });
      expect(page.changes.map((c) => c.key_id)).toEqual([slow.key_id]);
      page = await store.readAccessChanges(page.cursor, { reader: 'n1' });
      expect(page.changes).toEqual([]);
      const after = await store.accessChangeReaders(60_000);
      expect(after.readers).toEqual([{ reader: 'n1', position: after.head }]);
    } finally {
      await tx.end();
    }
  });
});
