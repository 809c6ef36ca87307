import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/index.js';
import { createStore, sqliteFilename } from '../../src/store/index.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { LATEST_SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { hashToken } from '../../src/store/keys.js';
import type { Store } from '../../src/store/types.js';
import { ev, storeContract } from './contract.js';

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
    expect((await store.appendEvent(e)).duplicate).toBe(true);
    expect((await store.appendEvent(ev([a.account_id]))).events[0].seq).toBe(3);
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
      seqs.push(...(await s.appendEvent(ev([a.account_id]))).events.map((e) => e.seq));
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await s1.close();
    await s2.close();
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
    expect((await store.appendEvent(ev([a.account_id]))).recipients).toBe(1);
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
