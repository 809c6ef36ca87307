/**
 * Adversarial review: is a key deactivation (or revocation) on the embedded store on disk before
 * the admin API answers? A 202 waits for an fdatasync of the WAL (issue 10); a deactivation is a
 * commit to the same WAL with synchronous=NORMAL, so unless something syncs it, an OS crash or
 * power loss right after the 200 brings the key back to life (SPEC §2.5: a revoked key stops
 * receiving). Seen from outside, as durability-trace.test.ts does: `tpx serve` under strace.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api } from '../helpers/server.js';
import { haveStrace as straceInstalled, traceServer } from '../helpers/strace.js';
import { samplePayload } from '../helpers/payloads.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-review-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const ROUNDS = 6;
const ADMIN = 'tpx_admin_review_trace_0123456789abcdef';

/** Runs the server under strace: ROUNDS key creations and deactivations, then one publish as a control. */
function traceRun(): Promise<string> {
  return traceServer({
    root,
    adminToken: ADMIN,
    syscalls: 'fdatasync,fsync,write,writev',
    strsize: 60,
    env: { TPX_DURABILITY: 'synced', TPX_DATABASE_URL: '', TPX_REDIS_URL: '' },
    drive: async (server) => {
      const account = (await api(server, 'POST', '/admin/accounts', {})).body;
      for (let i = 0; i < ROUNDS; i++) {
        const key = (await api(server, 'POST', `/admin/accounts/${account.account_id}/api-keys`, {})).body;
        const res = await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
        expect(res.status).toBe(200);
        expect(res.body.status).toBe('inactive');
      }
      // Control: a publish, whose 202 must follow a WAL sync (the parser sees syncs when they happen).
      const published = await api(server, 'POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
      expect(published.status).toBe(202);
    },
  });
}

/**
 * For each deactivation answer (the only 200s of the run) and each publish (202), whether an fdatasync/fsync of
 * the WAL completed between the answer before it (the key's 201) and it.
 */
function syncedBeforeAnswers(trace: string): { deactivations: boolean[]; publishes: boolean[] } {
  const deactivations: boolean[] = [];
  const publishes: boolean[] = [];
  const pending = new Set<string>();
  let synced = false;
  for (const line of trace.split('\n')) {
    const tid = line.split(' ', 1)[0];
    if (/f(data)?sync\(\d+<[^>]*-wal>/.test(line)) {
      if (line.includes('<unfinished ...>')) pending.add(tid);
      else if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (/<\.\.\. f(data)?sync resumed>/.test(line) && pending.delete(tid)) {
      if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (/write(v)?\(\d+</.test(line) && /HTTP\/1\.1 20[012]/.test(line)) {
      if (line.includes('HTTP/1.1 200')) deactivations.push(synced);
      if (line.includes('HTTP/1.1 202')) publishes.push(synced);
      synced = false;
    }
  }
  return { deactivations, publishes };
}

describe('review: revocation durability on the embedded store', () => {
  const haveStrace = straceInstalled();

  it('every deactivation is synced to disk before its 200, as every publish is before its 202', async () => {
    expect(haveStrace).toBe(true);
    const { deactivations, publishes } = syncedBeforeAnswers(await traceRun());
    expect(publishes).toEqual([true]);
    expect(deactivations).toEqual(Array(ROUNDS).fill(true));
  }, 180_000);
});
