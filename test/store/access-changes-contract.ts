/**
 * Store contract of the access-change log (the revocation log, store/types.ts AccessChangeLog):
 * run by storeContract against SQLite and PostgreSQL. Every change of who may receive what is
 * logged by the database in the changing transaction, and readers following cursors get each
 * change exactly once, in order, and acknowledge how far they applied it.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccessChange, AccessChangeCursor, Store } from '../../src/store/types.js';

/** Everything after `cursor` (following `more`), and the cursor after it. */
async function drain(store: Store, cursor: AccessChangeCursor, reader: string | null = null, limit?: number): Promise<{ changes: AccessChange[]; cursor: AccessChangeCursor }> {
  const changes: AccessChange[] = [];
  for (;;) {
    const page = await store.readAccessChanges(cursor, { reader, limit });
    changes.push(...page.changes);
    cursor = page.cursor;
    if (!page.more) return { changes, cursor };
  }
}

const shape = (c: AccessChange) => ({ kind: c.kind, account_id: c.account_id, key_id: c.key_id, reason: c.reason });

export function accessChangeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract (access-change log): ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    it('logs every change of access, in order, and nothing else', async () => {
      const start = await store.accessChangeHead();
      const a = await store.createAccount({ name: 'A', rooms: ['BID_REQUEST'] });
      const { key, token } = await store.createApiKey(a.account_id, {});
      const other = await store.createApiKey(a.account_id, {});
      await store.lookupToken(token); // last_used_at is bookkeeping, not a change of access
      await store.getApiKey(key.key_id); // flushes the touch
      await store.updateAccount(a.account_id, { name: 'renamed' }); // not a change of access
      await store.setApiKeyStatus(key.key_id, 'inactive');
      await store.setApiKeyStatus(key.key_id, 'inactive'); // already inactive: nothing changes
      await store.setApiKeyStatus(key.key_id, 'active');
      await store.updateAccount(a.account_id, { rooms: ['BID_REQUEST', 'BID_OUTBID'] });
      await store.deleteApiKey(other.key.key_id);
      const before = Date.now();
      await store.deleteAccount(a.account_id);

      const { changes } = await drain(store, start);
      const ids = changes.map((c) => c.id);
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      const logged = changes.map(shape);
      expect(logged.slice(0, 4)).toEqual([
        { kind: 'key_disabled', account_id: a.account_id, key_id: key.key_id, reason: 'inactive' },
        { kind: 'key_enabled', account_id: a.account_id, key_id: key.key_id, reason: null },
        { kind: 'account_changed', account_id: a.account_id, key_id: null, reason: null },
        { kind: 'key_disabled', account_id: a.account_id, key_id: other.key.key_id, reason: 'revoked' },
      ]);
      // Deleting the account takes its remaining key with it (cascade), and the account itself.
      const deletion = logged.slice(4);
      expect(deletion).toHaveLength(2);
      expect(deletion).toContainEqual({ kind: 'account_deleted', account_id: a.account_id, key_id: null, reason: null });
      expect(deletion).toContainEqual({ kind: 'key_disabled', account_id: a.account_id, key_id: key.key_id, reason: 'revoked' });
      expect(changes.at(-1)!.at_ms).toBeGreaterThanOrEqual(before - 5000);
    });

    it('a refused change logs nothing (same transaction)', async () => {
      const a = await store.createAccount({ partner_id: `p-${randomUUID().slice(0, 8)}` });
      const b = await store.createAccount({});
      const start = await store.accessChangeHead();
      await expect(store.updateAccount(b.account_id, { partner_id: a.partner_id, rooms: ['PAYMENT_FAILED'] })).rejects.toThrow();
      expect(await store.setApiKeyStatus(randomUUID(), 'inactive')).toBeNull();
      expect(await store.deleteApiKey(randomUUID())).toBeNull();
      expect((await drain(store, start)).changes).toEqual([]);
    });

    it('a reader following its cursors gets each change once, across pages', async () => {
      const a = await store.createAccount({});
      let cursor = await store.accessChangeHead();
      expect((await store.readAccessChanges(cursor, { reader: null })).changes).toEqual([]);
      const keys = [];
      for (let i = 0; i < 7; i++) keys.push((await store.createApiKey(a.account_id, {})).key);
      for (const k of keys) await store.setApiKeyStatus(k.key_id, 'inactive');
      const seen: string[] = [];
      for (let round = 0; round < 10; round++) {
        const page = await store.readAccessChanges(cursor, { reader: null, limit: 3 });
        seen.push(...page.changes.map((c) => c.key_id!));
        cursor = page.cursor;
        if (!page.more) break;
      }
      expect(seen).toEqual(keys.map((k) => k.key_id));
      const again = await store.readAccessChanges(cursor, { reader: null });
      expect(again).toMatchObject({ changes: [], more: false, behind: false });
      // A new head starts after everything so far.
      expect((await drain(store, await store.accessChangeHead())).changes).toEqual([]);
    });

    it('a reader acknowledges the position it was read from; only recent readers are listed', async () => {
      const a = await store.createAccount({});
      const { key } = await store.createApiKey(a.account_id, {});
      const start = await store.accessChangeHead();
      await store.setApiKeyStatus(key.key_id, 'inactive');
      const first = await store.readAccessChanges(start, { reader: 'node-1' });
      expect(first.changes.map(shape)).toEqual([{ kind: 'key_disabled', account_id: a.account_id, key_id: key.key_id, reason: 'inactive' }]);
      let view = await store.accessChangeReaders(60_000);
      expect(view.head).toBe(first.changes[0].id);
      // The read that returned the change reported the position BEFORE it (not applied yet).
      expect(view.readers).toEqual([{ reader: 'node-1', position: start.after }]);
      await store.readAccessChanges(first.cursor, { reader: 'node-1' });
      view = await store.accessChangeReaders(60_000);
      expect(view.readers).toEqual([{ reader: 'node-1', position: view.head }]);
      await new Promise((r) => setTimeout(r, 30));
      expect((await store.accessChangeReaders(10)).readers).toEqual([]);
      // Reading without a reader id acknowledges nothing.
      await store.readAccessChanges(first.cursor, { reader: null });
      expect((await store.accessChangeReaders(60_000)).readers.map((r) => r.reader)).toEqual(['node-1']);
    });

    it('pruning keeps the newest change, so a new head never goes back; a cursor pruned past is behind', async () => {
      const a = await store.createAccount({});
      const stale = await store.accessChangeHead();
      const k1 = (await store.createApiKey(a.account_id, {})).key;
      const k2 = (await store.createApiKey(a.account_id, {})).key;
      await store.setApiKeyStatus(k1.key_id, 'inactive');
      await store.setApiKeyStatus(k2.key_id, 'inactive');
      const head = await store.accessChangeHead();
      expect(await store.pruneAccessChanges(Date.now() + 60_000)).toBe(1);
      expect((await store.accessChangeHead()).after).toBe(head.after);
      const page = await store.readAccessChanges(stale, { reader: null });
      expect(page.behind).toBe(true);
      expect(page.changes.map((c) => c.key_id)).toEqual([k2.key_id]);
      expect((await store.readAccessChanges(page.cursor, { reader: null })).behind).toBe(false);
      // New changes continue after the pruned ids.
      await store.setApiKeyStatus(k1.key_id, 'active');
      const next = await store.readAccessChanges(head, { reader: null });
      expect(next.changes.map(shape)).toEqual([{ kind: 'key_enabled', account_id: a.account_id, key_id: k1.key_id, reason: null }]);
      expect(next.changes[0].id).toBeGreaterThan(head.after);
    });
  });
}
