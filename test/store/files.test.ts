/**
 * The database holds webhook secrets: its files are the server user's only (0600) in a 0700
 * data directory, whatever the umask, and files of an older installation are tightened at start.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createStore } from '../../src/store/index.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { ev } from './contract.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-files-'));
let n = 0;
const savedUmask = process.umask();
afterEach(() => {
  process.umask(savedUmask);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;
const modes = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, mode(path.join(dir, f)).toString(8)]));

async function exercise(store: { createAccount: SqliteStore['createAccount']; createWebhook: SqliteStore['createWebhook']; appendEvents: SqliteStore['appendEvents'] }) {
  const a = await store.createAccount({});
  await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_secret_material' });
  await store.appendEvents([ev([a.account_id])]);
}

describe('data file permissions', () => {
  it('a new data directory is 0700 and the database, WAL and shared-memory files 0600, even with umask 000', async () => {
    process.umask(0);
    const dataDir = path.join(root, `fresh-${++n}`, 'data');
    const store = createStore(loadConfig({ TPX_DATA_DIR: dataDir }));
    await store.init();
    await exercise(store);
    expect(mode(dataDir).toString(8)).toBe('700');
    expect(existsSync(path.join(dataDir, 'tpx.sqlite-wal'))).toBe(true);
    expect(modes(dataDir)).toEqual({ 'tpx.sqlite': '600', 'tpx.sqlite-wal': '600', 'tpx.sqlite-shm': '600' });
    await store.close();
    expect(modes(dataDir)).toEqual({ 'tpx.sqlite': '600' });
  });

  it('an existing installation with readable files and directory is tightened at start', async () => {
    const dataDir = path.join(root, `old-${++n}`);
    mkdirSync(dataDir, { recursive: true });
    const first = new SqliteStore({ filename: path.join(dataDir, 'tpx.sqlite'), backgroundCheckpoints: false });
    await first.init();
    await exercise(first);
    // Simulate files left by an older version (umask 022) without closing: WAL and shm exist.
    for (const f of readdirSync(dataDir)) chmodSync(path.join(dataDir, f), 0o644);
    chmodSync(dataDir, 0o755);
    writeFileSync(path.join(dataDir, 'unrelated.txt'), 'x', { mode: 0o644 });
    const second = createStore(loadConfig({ TPX_DATA_DIR: dataDir }));
    await second.init();
    expect(mode(dataDir).toString(8)).toBe('700');
    const m = modes(dataDir);
    expect([m['tpx.sqlite'], m['tpx.sqlite-wal'], m['tpx.sqlite-shm']]).toEqual(['600', '600', '600']);
    expect(m['unrelated.txt']).toBe('644'); // only the database's files are ours to change
    await second.close();
    await first.close();
  });

  it('an explicit sqlite: file outside the data directory gets 0600 files and a 0700 directory when it creates one', async () => {
    process.umask(0o022);
    const dir = path.join(root, `explicit-${++n}`, 'nested');
    const store = createStore(loadConfig({ TPX_DATA_DIR: path.join(root, `dd-${n}`), TPX_DATABASE_URL: `sqlite:${path.join(dir, 'custom.db')}` }));
    await store.init();
    await exercise(store);
    expect(mode(dir).toString(8)).toBe('700');
    expect(modes(dir)).toEqual({ 'custom.db': '600', 'custom.db-wal': '600', 'custom.db-shm': '600' });
    await store.close();
  });
});
