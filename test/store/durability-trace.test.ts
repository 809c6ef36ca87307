/**
 * Synced durability seen from outside: `tpx serve` runs under strace, and every 202 of the publish
 * API must be preceded by a completed fdatasync of the WAL file since the previous 202. No hook,
 * no mock: the syscalls the kernel saw. The same run with TPX_DURABILITY=relaxed shows that the
 * trace tells the two apart (there, the WAL is synced only by the checkpointer, once in a while).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api } from '../helpers/server.js';
import { haveStrace as straceInstalled, traceServer } from '../helpers/strace.js';
import { samplePayload } from '../helpers/payloads.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const PUBLISHES = 8;
const ADMIN = 'tpx_admin_trace_test_token_0123456789';

/** Runs the server under strace, publishes PUBLISHES events one after the other, returns the trace. */
function traceRun(durability: 'synced' | 'relaxed'): Promise<string> {
  return traceServer({
    root,
    adminToken: ADMIN,
    syscalls: 'fdatasync,write,writev',
    strsize: 40,
    env: { TPX_DURABILITY: durability },
    drive: async (server) => {
      const account = (await api(server, 'POST', '/admin/accounts', {})).body;
      for (let i = 0; i < PUBLISHES; i++) {
        const res = await api(server, 'POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
        expect(res.status).toBe(202);
      }
    },
  });
}

/** For each 202 written, whether a WAL fdatasync completed since the previous 202 (or the start). */
function syncedBefore202(trace: string): boolean[] {
  const out: boolean[] = [];
  const pendingWalSync = new Set<string>(); // thread ids inside an unfinished fdatasync of the WAL
  let synced = false;
  for (const line of trace.split('\n')) {
    const tid = line.split(' ', 1)[0];
    if (/fdatasync\(\d+<[^>]*-wal>/.test(line)) {
      if (line.includes('<unfinished ...>')) pendingWalSync.add(tid);
      else if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (line.includes('<... fdatasync resumed>') && pendingWalSync.delete(tid)) {
      if (/\)\s+= 0$/.test(line)) synced = true;
    } else if (/write(v)?\(\d+</.test(line) && line.includes('HTTP/1.1 202')) {
      out.push(synced);
      synced = false;
    }
  }
  return out;
}

describe('synced durability in a syscall trace', () => {
  const haveStrace = straceInstalled();

  it('every 202 of POST /v1/events follows an fdatasync of the WAL (synced); relaxed does not sync per publish', async () => {
    expect(haveStrace).toBe(true);
    const synced = syncedBefore202(await traceRun('synced'));
    expect(synced).toHaveLength(PUBLISHES);
    expect(synced.every(Boolean)).toBe(true);
    const relaxed = syncedBefore202(await traceRun('relaxed'));
    expect(relaxed).toHaveLength(PUBLISHES);
    // Only the checkpointer (about once a second) syncs the WAL there.
    expect(relaxed.filter(Boolean).length).toBeLessThan(PUBLISHES / 2);
  }, 180_000);
});
