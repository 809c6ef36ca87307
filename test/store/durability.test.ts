/**
 * Synced durability of the embedded store (SPEC §3.1: a 202 means the event and its deliveries
 * are on disk, synced). The WAL sync is observed through the store's sync hook, which wraps the
 * real fdatasync: a test holds it, looks at what is (not) visible meanwhile, then lets it run.
 * test/store/durability-trace.test.ts shows the same order in a syscall trace of `tpx serve`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { fdatasyncOnThreadPool } from '../../src/store/sqlite/wal-sync.js';
import { ev } from './contract.js';
import { connectAuthed, closeAllClients } from '../helpers/ws-client.js';
import { api, sleep, waitFor } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-durability-'));
let n = 0;
const freshDir = () => path.join(root, `d-${++n}`);
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await closeAllClients();
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A WAL sync hook: records each sync and can hold them until released; the real fdatasync runs after. */
class SyncGate {
  started = 0;
  completed = 0;
  held = false;
  fail: Error | null = null;
  private waiting: Array<() => void> = [];
  readonly fn = async (fd: number): Promise<void> => {
    this.started++;
    if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    if (this.fail) throw this.fail;
    await fdatasyncOnThreadPool(fd);
    this.completed++;
  };
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    for (const r of this.waiting.splice(0)) r();
  }
}

const settled = <T>(p: Promise<T>) => {
  const state = { done: false, value: undefined as T | undefined };
  p.then(
    (v) => Object.assign(state, { done: true, value: v }),
    () => Object.assign(state, { done: true }),
  );
  return state;
};

async function openStore(gate: SyncGate, extra: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}) {
  const file = path.join(freshDir(), 'tpx.sqlite');
  const store = new SqliteStore({ filename: file, syncWal: gate.fn, ...extra });
  await store.init();
  cleanups.push(() => (gate.release(), store.close())); // a failed test may leave a sync held
  return { store, file };
}

function rawCount(file: string, sql: string): number {
  const raw = new Database(file, { readonly: true });
  try {
    return raw.prepare(sql).pluck().get() as number;
  } finally {
    raw.close();
  }
}

describe('synced durability (SQLite)', () => {
  it('an append is answered, readable and claimable only after the WAL sync that covers it', async () => {
    const gate = new SyncGate();
    const { store, file } = await openStore(gate);
    const a = await store.createAccount({});
    await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
    const base = gate.completed; // admin writes are synced too
    await store.appendEvents([ev([a.account_id])]); // seq 1, synced
    expect(gate.completed).toBe(base + 1);

    gate.hold();
    const append = settled(store.appendEvents([ev([a.account_id])]));
    await waitFor(() => gate.started === base + 2, 5000, 'the sync of the second append to start');
    // Written to the WAL (another connection sees the row) but not synced: not acknowledged, not shown.
    expect(rawCount(file, 'SELECT COUNT(*) FROM events')).toBe(2);
    await sleep(30);
    expect(append.done).toBe(false);
    const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 });
    expect(read.events.map((e) => e.seq)).toEqual([1]);
    expect(read.last_seq).toBe(1); // the gateway's fan-out baseline must not count it yet
    const claim = settled(store.claimDueDeliveries({ now: new Date(Date.now() + 1), limit: 10, leaseMs: 60_000, owner: 'n', perEndpointLimit: 10 }));
    await sleep(30);
    expect(claim.done).toBe(false); // its delivery must not be sent before it is durable

    gate.release();
    await waitFor(() => append.done && claim.done, 5000, 'append and claim to finish');
    expect(append.value![0].events[0].seq).toBe(2);
    expect((claim.value ?? []).map((c) => c.delivery.seq)).toEqual([1, 2]);
    expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).last_seq).toBe(2);
  });

  it('appends committed while a sync runs share the next one, and the event loop keeps committing', async () => {
    const gate = new SyncGate();
    const { store, file } = await openStore(gate);
    const a = await store.createAccount({});
    const base = gate.started; // the account's own sync
    gate.hold();
    const first = settled(store.appendEvents([ev([a.account_id])]));
    await waitFor(() => gate.started === base + 1, 5000, 'first sync');
    const later: Array<ReturnType<typeof settled>> = [];
    for (let i = 0; i < 5; i++) {
      later.push(settled(store.appendEvents([ev([a.account_id])]))); // five separate group commits
      await new Promise((r) => setImmediate(r));
    }
    // The loop kept committing while the first sync was held: all six are written, none answered.
    await waitFor(() => rawCount(file, 'SELECT COUNT(*) FROM events') === 6, 5000, 'the later commits');
    expect(first.done || later.some((l) => l.done)).toBe(false);
    gate.release();
    await waitFor(() => later.every((l) => l.done), 5000, 'later appends');
    expect(gate.started).toBe(base + 2); // one sync for the first commit, one for the five behind it
    const seqs = (await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).events.map((e) => e.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a failed sync refuses the append and every later one, and the store reports it', async () => {
    const gate = new SyncGate();
    const { store } = await openStore(gate);
    const a = await store.createAccount({});
    gate.fail = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    await expect(store.appendEvents([ev([a.account_id])])).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    await expect(store.appendEvents([ev([a.account_id])])).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    // The committed-but-unsynced event is never shown.
    expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).last_seq).toBe(0);
    const status = store.status();
    expect(status.ok).toBe(false);
    expect(status.checks.durability).toMatch(/WAL sync failed/);
  });

  it('admin writes (key deactivation, deletions, endpoint changes) answer only after the WAL sync that covers them', async () => {
    const gate = new SyncGate();
    const { store } = await openStore(gate);
    const a = await store.createAccount({});
    const { key } = await store.createApiKey(a.account_id, {});
    const hook = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
    const other = await store.createAccount({});
    gate.hold();
    const started = gate.started;
    const writes = [
      settled(store.setApiKeyStatus(key.key_id, 'inactive')),
      settled(store.updateWebhook(hook.webhook_id, { enabled: false })),
      settled(store.updateAccount(a.account_id, { name: 'renamed' })),
      settled(store.deleteAccount(other.account_id)),
    ];
    await waitFor(() => gate.started > started, 5000, 'a sync covering the admin writes');
    await sleep(30);
    expect(writes.map((w) => w.done)).toEqual([false, false, false, false]); // written, not yet on disk: no answer
    expect((await store.getApiKey(key.key_id))!.status).toBe('inactive'); // already in force for lookups
    gate.release();
    await waitFor(() => writes.every((w) => w.done), 5000, 'the admin writes to answer');
    expect(gate.started - started).toBeLessThanOrEqual(2); // they share syncs (group commit), not one each
  });

  it('relaxed durability never syncs an append', async () => {
    const gate = new SyncGate();
    const { store } = await openStore(gate, { durability: 'relaxed' });
    const a = await store.createAccount({});
    await store.appendEvents([ev([a.account_id])]);
    expect(gate.started).toBe(0);
    expect(store.status().checks.durability).toBe('relaxed');
  });
});

describe('synced durability through the publish API', () => {
  it('POST /v1/events answers 202, and WebSocket clients get the event, only after the WAL sync', async () => {
    const gate = new SyncGate();
    const dataDir = freshDir();
    const config = loadConfig({ TPX_DATA_DIR: dataDir, TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: 'tpx_admin_durability_test_token' });
    const server: RunningServer = await startServer(config, { logger: pino({ level: 'silent' }), storeOptions: { sqlite: { syncWal: gate.fn } } });
    cleanups.push(() => (gate.release(), server.close()));
    const target = { url: server.url, adminToken: server.adminToken };
    const account = (await api(target, 'POST', '/admin/accounts', {})).body;
    const key = (await api(target, 'POST', `/admin/accounts/${account.account_id}/api-keys`, {})).body;
    const client = await connectAuthed(`${server.url.replace('http', 'ws')}/ws`, key.token, ['ALL']);

    gate.hold();
    const syncsBefore = gate.started;
    const order: string[] = [];
    const publish = api(target, 'POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') }).then((r) => {
      order.push(`response ${r.status}`);
      return r;
    });
    await waitFor(() => gate.started > syncsBefore, 5000, 'the WAL sync of the publish');
    await sleep(50);
    expect(order).toEqual([]); // no answer while the sync is held
    expect(client.history.filter((f) => f.msg_type === 'BID_REQUEST')).toEqual([]); // and no fan-out
    order.push('sync released');
    gate.release();
    const res = await publish;
    expect(res.status).toBe(202);
    expect(order).toEqual(['sync released', 'response 202']);
    const frame = await client.nextOfType('BID_REQUEST');
    expect(frame.msg_id).toBe(res.body.msg_id);
  });
});
