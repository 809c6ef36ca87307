import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/index.js';
import { createStore, sqliteFilename } from '../../src/store/index.js';
import { PRUNE_MAX_SEQ_SQL, PRUNE_SUCCEEDED_DELIVERIES_SQL, SqliteStore } from '../../src/store/sqlite/store.js';
import { LATEST_SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { hashToken } from '../../src/store/keys.js';
import type { Store } from '../../src/store/types.js';
import { appendOne, ev, loopTurnsDuring, storeContract } from './contract.js';
import { waitFor } from '../helpers/server.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-store-'));
let n = 0;
const freshFile = () => path.join(root, `db-${++n}`, 'tpx.sqlite');

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

storeContract('sqlite (file)', async () => {
  const store = new SqliteStore({ filename: freshFile() });
  await store.init();
  return store;
});

/** One value read through a separate read-only connection: what is on disk, not what the store caches. */
function rawValue(file: string, sql: string, ...args: unknown[]): unknown {
  const raw = new Database(file, { readonly: true });
  try {
    return raw.prepare(sql).pluck().get(...args);
  } finally {
    raw.close();
  }
}

/** Every byte SQLite holds for this database: main file, WAL and shared memory. */
function dbBytes(file: string): Buffer {
  const dir = path.dirname(file);
  return Buffer.concat(
    readdirSync(dir)
      .filter((f) => f.startsWith(path.basename(file)))
      .map((f) => readFileSync(path.join(dir, f))),
  );
}

describe('SQLite store specifics', () => {
  it('never stores the plain token, only its SHA-256', async () => {
    const file = freshFile();
    const store = new SqliteStore({ filename: file });
    await store.init();
    const a = await store.createAccount({});
    const { token } = await store.createApiKey(a.account_id, { name: 'k' });
    await store.lookupToken(token);
    await store.close(); // checkpoints the WAL into the main file
    const bytes = dbBytes(file);
    expect(bytes.includes(Buffer.from(token))).toBe(false);
    expect(bytes.includes(Buffer.from(token.slice(12)))).toBe(false);
    expect(bytes.includes(hashToken(token))).toBe(true);
  });

  it('persists everything across close and reopen', async () => {
    const file = freshFile();
    let store: Store = new SqliteStore({ filename: file });
    await store.init();
    const a = await store.createAccount({ partner_id: 'persist', rooms: ['BID_REQUEST', 'AUCTION_RESULT'] });
    const { token } = await store.createApiKey(a.account_id, {});
    const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
    const e = ev([a.account_id]);
    await store.appendEvents([e, ev([a.account_id])]);
    await store.setSettingIfAbsent('admin_token_hash', 'h');
    await store.close();

    store = new SqliteStore({ filename: file });
    await store.init();
    expect(await store.getAccount(a.account_id)).toEqual(a);
    expect((await store.lookupToken(token)).ok).toBe(true);
    expect(await store.getWebhook(w.webhook_id)).toMatchObject({ url: 'https://example.com/h', enabled: true });
    expect(await store.getSetting('admin_token_hash')).toBe('h');
    const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 });
    expect(read.events.map((x) => x.seq)).toEqual([1, 2]);
    expect((await appendOne(store, e)).duplicate).toBe(true);
    expect((await appendOne(store, ev([a.account_id]))).events[0].seq).toBe(3);
    const claimed = await store.claimDueDeliveries({ now: new Date(Date.now() + 1), limit: 10, leaseMs: 1000, owner: 'n', perEndpointLimit: 10 });
    expect(claimed.map((c) => c.delivery.seq)).toEqual([1, 2, 3]);
    await store.close();
  });

  it('uses WAL, foreign keys and a schema_version; init is idempotent across processes sharing the file', async () => {
    const file = freshFile();
    const s1 = new SqliteStore({ filename: file });
    const s2 = new SqliteStore({ filename: file });
    await Promise.all([s1.init(), s2.init()]);
    const a = await s1.createAccount({});
    expect(await s2.getAccount(a.account_id)).toEqual(a);
    expect(await s1.getSetting('schema_version')).toBe(String(LATEST_SCHEMA_VERSION));
    await s1.close();
    await s2.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('two handles on one file keep seq strictly increasing', async () => {
    const file = freshFile();
    const s1 = new SqliteStore({ filename: file });
    const s2 = new SqliteStore({ filename: file });
    await s1.init();
    await s2.init();
    const a = await s1.createAccount({});
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const s = i % 2 ? s1 : s2;
      seqs.push(...(await appendOne(s, ev([a.account_id]))).events.map((e) => e.seq));
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await s1.close();
    await s2.close();
  });

  describe('write-behind stream rows (stream-index.ts)', () => {
    const pendingCount = (file: string) => rawValue(file, 'SELECT COUNT(*) FROM account_events_pending') as number;
    const streamCount = (file: string) => rawValue(file, 'SELECT COUNT(*) FROM account_events') as number;

    // A batch window far longer than any test step: rows stay staged until something moves them.
    const HOLD = { streamBatchMs: 600_000 };

    it('stages rows at commit; reads see staged and moved rows alike; pruning moves them first', async () => {
      const file = freshFile();
      const store = new SqliteStore({ filename: file, ...HOLD });
      await store.init();
      const accounts = await Promise.all(Array.from({ length: 5 }, () => store.createAccount({})));
      const ids = accounts.map((a) => a.account_id);
      await store.appendEvents([ev(ids), ev(ids), ev([ids[0]])]);
      // 5 + 5 staged, not yet in account_events; the single-recipient event's row goes straight in.
      expect(pendingCount(file)).toBe(10);
      expect(streamCount(file)).toBe(1);
      const read = await store.readEvents({ account_id: ids[0], after_seq: 0, types: null, limit: 10 });
      expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(pendingCount(file)).toBe(10); // read without moving anything
      expect(await store.pruneEvents(0)).toBe(0); // pruning moves staged rows before it looks
      expect(pendingCount(file)).toBe(0);
      expect(streamCount(file)).toBe(11);
      // Some rows moved, later ones staged: one read returns both, in seq order, typed or not, paged.
      await store.appendEvents([ev(ids, { msg_type: 'AUCTION_RESULT' }), ev([ids[0]])]);
      expect(pendingCount(file)).toBe(5);
      const all = await store.readEvents({ account_id: ids[0], after_seq: 0, types: null, limit: 10 });
      expect(all.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(all.last_seq).toBe(5);
      const page = await store.readEvents({ account_id: ids[0], after_seq: 2, types: null, limit: 2 });
      expect(page.events.map((e) => e.seq)).toEqual([3, 4]);
      const typed = await store.readEvents({ account_id: ids[0], after_seq: 0, types: new Set(['AUCTION_RESULT']), limit: 10 });
      expect(typed.events.map((e) => [e.seq, e.msg_type])).toEqual([[4, 'AUCTION_RESULT']]);
      expect((await store.readEvents({ account_id: ids[1], after_seq: 2, types: null, limit: 10 })).events.map((e) => e.seq)).toEqual([3]);
      await store.close();
    });

    it('the batch timer moves staged rows without any read', async () => {
      const file = freshFile();
      const store = new SqliteStore({ filename: file, streamBatchMs: 50 });
      await store.init();
      const a = await store.createAccount({});
      const b = await store.createAccount({});
      for (let i = 0; i < 3; i++) await appendOne(store, ev([a.account_id, b.account_id]));
      await waitFor(() => pendingCount(file) === 0, 10_000, 'the staged rows moved');
      expect(pendingCount(file)).toBe(0);
      expect(streamCount(file)).toBe(6);
      for (const acc of [a, b]) {
        const r = await store.readEvents({ account_id: acc.account_id, after_seq: 0, types: null, limit: 10 });
        expect(r.events.map((e) => e.seq)).toEqual([1, 2, 3]);
      }
      await store.close();
    });

    it('rows staged by a process killed before they moved are read after restart', async () => {
      const file = freshFile();
      const store = new SqliteStore({ filename: file });
      await store.init();
      const a = await store.createAccount({});
      const b = await store.createAccount({});
      await store.close();
      const storeModule = pathToFileURL(path.resolve('src/store/sqlite/store.ts')).href;
      const script = `
        import { SqliteStore } from ${JSON.stringify(storeModule)};
        const s = new SqliteStore({ filename: ${JSON.stringify(file)}, streamBatchMs: 600000 });
        await s.init();
        for (let i = 0; i < 3; i++) {
          await s.appendEvents([{ msg_id: crypto.randomUUID(), msg_type: 'BID_REQUEST', payload_json: '{"i":' + i + '}',
            source_id: null, target: ${JSON.stringify([a.account_id, b.account_id])}, created_at_ms: Date.now() }]);
        }
        process.kill(process.pid, 'SIGKILL'); // no close, no timer tick: the rows are only staged
      `;
      const child = spawnSync(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
      expect(child.signal).toBe('SIGKILL');
      expect(pendingCount(file)).toBe(6);

      const again = new SqliteStore({ filename: file });
      await again.init();
      expect(pendingCount(file)).toBe(0);
      for (const acc of [a, b]) {
        const r = await again.readEvents({ account_id: acc.account_id, after_seq: 0, types: null, limit: 10 });
        expect(r.events.map((e) => [e.seq, JSON.parse(e.payload_json).i])).toEqual([[1, 0], [2, 1], [3, 2]]);
      }
      expect((await appendOne(again, ev([a.account_id]))).events[0].seq).toBe(4);
      await again.close();
    });

    it('deleting an account drops its staged rows with it; the others still move', async () => {
      const file = freshFile();
      const store = new SqliteStore({ filename: file, ...HOLD });
      await store.init();
      const a = await store.createAccount({});
      const b = await store.createAccount({});
      await appendOne(store, ev([a.account_id, b.account_id]));
      expect(pendingCount(file)).toBe(2);
      expect(await store.deleteAccount(a.account_id)).toBe(true);
      expect(pendingCount(file)).toBe(1);
      const r = await store.readEvents({ account_id: b.account_id, after_seq: 0, types: null, limit: 10 });
      expect(r.events.map((e) => e.seq)).toEqual([1]);
      await store.close(); // moves what is staged: the deleted account's row is not among it
      expect(pendingCount(file)).toBe(0);
      expect(streamCount(file)).toBe(1);
    });

    it('a read through one handle sees rows another handle on the same file staged', async () => {
      const file = freshFile();
      const s1 = new SqliteStore({ filename: file, ...HOLD });
      const s2 = new SqliteStore({ filename: file, ...HOLD });
      await s1.init();
      await s2.init();
      const a = await s1.createAccount({});
      await appendOne(s2, ev([a.account_id]));
      await appendOne(s2, ev([a.account_id]));
      const r = await s1.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 });
      expect(r.events.map((e) => e.seq)).toEqual([1, 2]);
      await s1.close();
      await s2.close();
    });
  });

  describe('batched api_keys.last_used_at (key-touches.ts)', () => {
    const rawLastUsed = (file: string, keyId: string) => rawValue(file, 'SELECT last_used_at FROM api_keys WHERE key_id = ?', keyId) as string | null;

    it('an authentication queues the touch; key reads and close write it', async () => {
      const file = freshFile();
      let store = new SqliteStore({ filename: file, keyTouchBatchMs: 600_000 });
      await store.init();
      const a = await store.createAccount({});
      const k1 = await store.createApiKey(a.account_id, {});
      const k2 = await store.createApiKey(a.account_id, {});
      const r1 = await store.lookupToken(k1.token);
      expect(r1.ok && r1.key.last_used_at).toBeTruthy();
      expect(rawLastUsed(file, k1.key.key_id)).toBeNull(); // queued, not written yet
      const again = await store.lookupToken(k1.token);
      expect(again.ok && again.key.last_used_at).toBe(r1.ok && r1.key.last_used_at); // the queued value counts
      expect((await store.getApiKey(k1.key.key_id))!.last_used_at).toBe(r1.ok && r1.key.last_used_at);
      expect(rawLastUsed(file, k1.key.key_id)).toBe(r1.ok && r1.key.last_used_at);

      await store.lookupToken(k2.token);
      expect(rawLastUsed(file, k2.key.key_id)).toBeNull();
      await store.close();
      expect(rawLastUsed(file, k2.key.key_id)).not.toBeNull();
      store = new SqliteStore({ filename: file });
      await store.init();
      expect((await store.listApiKeys(a.account_id)).every((k) => k.last_used_at !== null)).toBe(true);
      await store.close();
    });

    it('the batch timer writes queued touches without any read', async () => {
      const file = freshFile();
      const store = new SqliteStore({ filename: file, keyTouchBatchMs: 30 });
      await store.init();
      const a = await store.createAccount({});
      const k = await store.createApiKey(a.account_id, {});
      await store.lookupToken(k.token);
      await waitFor(() => rawLastUsed(file, k.key.key_id) !== null, 10_000, 'the touch written');
      expect(rawLastUsed(file, k.key.key_id)).not.toBeNull();
      await store.close();
    });
  });

  it('cached token lookups follow writes made through another handle on the same file', async () => {
    const file = freshFile();
    const s1 = new SqliteStore({ filename: file });
    const s2 = new SqliteStore({ filename: file });
    await s1.init();
    await s2.init();
    const a = await s1.createAccount({ rooms: ['BID_REQUEST'] });
    const { key, token } = await s1.createApiKey(a.account_id, {});
    for (let i = 0; i < 3; i++) expect((await s1.lookupToken(token)).ok).toBe(true); // now served from the cache
    await s2.updateAccount(a.account_id, { rooms: ['BID_REQUEST', 'AUCTION_RESULT'] });
    const after = await s1.lookupToken(token);
    expect(after.ok && after.account.rooms).toEqual(['BID_REQUEST', 'AUCTION_RESULT']);
    await s2.setApiKeyStatus(key.key_id, 'inactive');
    expect(await s1.lookupToken(token)).toEqual({ ok: false, reason: 'inactive' });
    await s2.setApiKeyStatus(key.key_id, 'active');
    expect((await s1.lookupToken(token)).ok).toBe(true);
    await s2.deleteApiKey(key.key_id);
    expect(await s1.lookupToken(token)).toEqual({ ok: false, reason: 'invalid' });
    await s1.close();
    await s2.close();
  });

  it('retention pruning searches only expired rows (no scan of the stream or of all succeeded deliveries)', async () => {
    const file = freshFile();
    const store = new SqliteStore({ filename: file });
    await store.init();
    await store.close();
    const raw = new Database(file, { readonly: true });
    const plan = (sql: string) =>
      (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...new Array<number>(sql.split('?').length - 1).fill(0)) as { detail: string }[])
        .map((r) => r.detail)
        .join(' | ');
    expect(plan(PRUNE_MAX_SEQ_SQL)).toMatch(/SEARCH account_events USING (COVERING )?INDEX account_events_created \(created_at_ms<\?\)/);
    expect(plan(PRUNE_MAX_SEQ_SQL)).not.toMatch(/SCAN account_events/);
    expect(plan(PRUNE_SUCCEEDED_DELIVERIES_SQL)).toMatch(/SEARCH deliveries USING (COVERING )?INDEX deliveries_succeeded_created \(created_at<\?\)/);
    raw.close();
  });

  it('retention pruning runs in chunks, lets the event loop run between them, and ends exactly where one transaction would', async () => {
    const store = new SqliteStore({ filename: freshFile(), pruneChunkRows: 3 });
    await store.init();
    const a = await store.createAccount({});
    const b = await store.createAccount({});
    const old = Date.now() - 10 * 3600_000;
    const ids = [a.account_id, b.account_id];
    await store.appendEvents(Array.from({ length: 10 }, (_, i) => ev(ids, { created_at_ms: old + i })));
    await store.appendEvents([ev(ids), ev([a.account_id])]);
    const { value: removed, turns } = await loopTurnsDuring(store.pruneEvents(old + 3600_000));
    expect(removed).toBe(20);
    expect(turns).toBeGreaterThanOrEqual(6); // 2 accounts x 4 chunks of <= 3 rows, plus the event rows
    const ra = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
    expect(ra.events.map((e) => e.seq)).toEqual([11, 12]);
    expect(ra.pruned_through).toBe(10);
    const rb = await store.readEvents({ account_id: b.account_id, after_seq: 0, types: null, limit: 100 });
    expect(rb.events.map((e) => e.seq)).toEqual([11]);
    expect(rb.pruned_through).toBe(10);
    expect(await store.pruneEvents(old + 3600_000)).toBe(0);
    await store.close();
  });

  it('refuses a database written by a newer schema', async () => {
    const file = freshFile();
    const s = new SqliteStore({ filename: file });
    await s.init();
    await s.close();
    const raw = new Database(file);
    raw.prepare("UPDATE settings SET value = '999' WHERE key = 'schema_version'").run();
    raw.close();
    const again = new SqliteStore({ filename: file });
    await expect(again.init()).rejects.toThrow(/newer/);
    await again.close();
  });

  it('methods before init fail clearly', async () => {
    const s = new SqliteStore({ filename: freshFile() });
    await expect(s.getAccount('x')).rejects.toThrow(/init/);
    await s.close();
  });
});

describe('createStore', () => {
  const base = (env: Record<string, string>) => loadConfig({ TPX_DATA_DIR: path.join(root, `cfg-${++n}`), ...env });

  it('defaults to tpx.sqlite in the data dir, creating the directory', async () => {
    const config = base({});
    expect(existsSync(config.dataDir)).toBe(false);
    const store = createStore(config);
    expect(store.kind).toBe('sqlite');
    await store.init();
    await store.ping();
    await store.close();
    expect(existsSync(path.join(config.dataDir, 'tpx.sqlite'))).toBe(true);
  });

  it('honours sqlite: URLs', async () => {
    const file = path.join(root, `url-${++n}`, 'custom.db');
    expect(sqliteFilename({ dataDir: '/x', databaseUrl: `sqlite:${file}` })).toBe(file);
    expect(sqliteFilename({ dataDir: '/x', databaseUrl: `sqlite://${file}` })).toBe(file);
    expect(sqliteFilename({ dataDir: '/x', databaseUrl: 'sqlite::memory:' })).toBe(':memory:');
    expect(sqliteFilename({ dataDir: '/x', databaseUrl: null })).toBe(path.join('/x', 'tpx.sqlite'));
    const store = createStore(base({ TPX_DATABASE_URL: `sqlite:${file}` }));
    await store.init();
    await store.close();
    expect(existsSync(file)).toBe(true);
  });

  it('works in memory', async () => {
    const store = createStore(base({ TPX_DATABASE_URL: 'sqlite::memory:' }));
    await store.init();
    const a = await store.createAccount({});
    expect((await appendOne(store, ev([a.account_id]))).recipients).toBe(1);
    await store.close();
  });

  it('chooses PostgreSQL for postgres URLs and rejects unknown schemes clearly', async () => {
    for (const url of ['postgres://u:p@localhost/tpx', 'postgresql://localhost/tpx']) {
      const store = createStore(base({ TPX_DATABASE_URL: url }));
      expect(store.kind).toBe('postgres');
      await store.close();
    }
    expect(() => createStore(base({ TPX_DATABASE_URL: 'mysql://localhost/tpx' }))).toThrow(/unsupported/);
  });
});
