/**
 * Adversarial review: a WAL sync that fails (EIO) on the embedded store. Events accepted (202)
 * BEFORE the failure were synced: they are on disk, and SPEC §4 retries their webhooks until
 * acknowledged. The review found that the store then refused every claim while the process kept
 * running with /healthz 200: nothing restarted it, so those webhooks were never attempted.
 *
 * The policy chosen (docs/decisions.md, "A failed WAL sync is fatal"), as PostgreSQL PANICs on a
 * failed fsync: the failure is fatal. The store writes and sends nothing more (after a failed
 * fsync the page cache may not match the disk), tells its owner, and `tpx serve` exits non-zero
 * (test/store/sync-failure-exit.test.ts) so that a supervisor restarts it; the restart's recovery
 * reads what is on disk, and the deliveries accepted before the failure are attempted then.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { fdatasyncOnThreadPool } from '../../src/store/sqlite/wal-sync.js';
import { ev } from './contract.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-review-sync-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const claimAll = (store: SqliteStore) => store.claimDueDeliveries({ now: new Date(Date.now() + 1000), limit: 10, leaseMs: 30_000, owner: 'review', perEndpointLimit: 10 });

describe('review: a failed WAL sync and deliveries accepted before it', () => {
  it('the failure is fatal (the owner is told, nothing more is written or sent); after the restart it forces, the delivery accepted before it is claimed', async () => {
    const filename = path.join(root, 'tpx.sqlite');
    let fail: Error | null = null;
    const store = new SqliteStore({
      filename,
      syncWal: async (fd) => {
        if (fail) throw fail;
        await fdatasyncOnThreadPool(fd);
      },
    });
    await store.init();
    const fatal: Error[] = [];
    store.onFatal((err) => fatal.push(err));
    let accepted: string;
    let account: string;
    try {
      account = (await store.createAccount({})).account_id;
      await store.createWebhook(account, { url: 'http://127.0.0.1:9/hook', secret: 'whsec_review' });
      const [result] = await store.appendEvents([ev([account])]); // synced: this is a 202
      expect(result.deliveries).toBe(1);
      accepted = result.msg_id;

      fail = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      await expect(store.appendEvents([ev([account])])).rejects.toMatchObject({ name: 'StoreUnavailableError' });

      // Fatal: reported once, to the owner (tpx serve exits non-zero on it) and to /readyz.
      expect(fatal.map((e) => e.message)).toEqual([expect.stringMatching(/WAL sync failed.*restart required/)]);
      expect(store.status()).toMatchObject({ ok: false, checks: { durability: expect.stringMatching(/restart required/) } });
      // Nothing more is written or sent from a page cache that may not match the disk.
      await expect(claimAll(store)).rejects.toMatchObject({ name: 'StoreUnavailableError' });
      await expect(store.createAccount({})).rejects.toMatchObject({ name: 'StoreUnavailableError' });
      await expect(store.setApiKeyStatus('k', 'inactive')).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    } finally {
      await store.close();
    }

    // The restart (a supervisor's): recovery reads the file; the delivery accepted before the failure is attempted.
    const restarted = new SqliteStore({ filename });
    await restarted.init();
    try {
      expect(restarted.status().ok).toBe(true);
      const claimed = await claimAll(restarted);
      expect(claimed.map((c) => c.event.msg_id)).toContain(accepted);
    } finally {
      await restarted.close();
    }
  });
});
