/**
 * Adversarial review: a WAL sync that fails (EIO) on the embedded store. The design (wal-sync.ts)
 * refuses every later append until the operator restarts the node, and hides the commit whose
 * durability is unknown. But events accepted (202) BEFORE the failure were synced: they are on
 * disk, and SPEC §4 retries their webhooks until acknowledged. The failure must not stop their
 * delivery (the process keeps running and /healthz keeps answering ok, so nothing restarts it).
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

describe('review: a failed WAL sync and deliveries accepted before it', () => {
  it('a delivery synced and acknowledged before the failure can still be claimed and attempted', async () => {
    let fail: Error | null = null;
    const store = new SqliteStore({
      filename: path.join(root, 'tpx.sqlite'),
      syncWal: async (fd) => {
        if (fail) throw fail;
        await fdatasyncOnThreadPool(fd);
      },
    });
    await store.init();
    try {
      const account = await store.createAccount({});
      await store.createWebhook(account.account_id, { url: 'http://127.0.0.1:9/hook', secret: 'whsec_review' });
      const [accepted] = await store.appendEvents([ev([account.account_id])]); // synced: this is a 202
      expect(accepted.deliveries).toBe(1);

      fail = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      await expect(store.appendEvents([ev([account.account_id])])).rejects.toMatchObject({ name: 'StoreUnavailableError' });

      const claim = store.claimDueDeliveries({ now: new Date(Date.now() + 1000), limit: 10, leaseMs: 30_000, owner: 'review', perEndpointLimit: 10 });
      const claimed = await claim.catch((err: Error) => `claim refused: ${err.message}`);
      expect(claimed).toEqual([expect.objectContaining({ event: expect.objectContaining({ msg_id: accepted.msg_id }) })]);
    } finally {
      await store.close();
    }
  });
});
