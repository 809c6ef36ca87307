/**
 * Store factory: picks the implementation from TPX_DATABASE_URL (SPEC §5).
 *   unset            → embedded SQLite at `${dataDir}/tpx.sqlite`
 *   sqlite:<path>    → embedded SQLite at <path> (`sqlite:/abs/file`, `sqlite:///abs/file`, `sqlite:rel/file`, `sqlite::memory:`)
 *   postgres://…     → shared PostgreSQL store (src/store/postgres)
 */
import path from 'node:path';
import type { Config } from '../config/index.js';
import type { StoreLogger } from './logger.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite/store.js';
import { secureDirectory } from './sqlite/files.js';
import { PostgresStore } from './postgres/store.js';
import type { Store } from './types.js';

export * from './types.js';
export { SqliteStore } from './sqlite/store.js';
export { PostgresStore } from './postgres/store.js';

/** Resolves the SQLite file a config points at, or null when the config selects another backend. */
export function sqliteFilename(config: Pick<Config, 'dataDir' | 'databaseUrl'>): string | null {
  const url = config.databaseUrl;
  if (url === null || url === '') return path.join(config.dataDir, 'tpx.sqlite');
  if (!url.startsWith('sqlite:')) return null;
  let rest = url.slice('sqlite:'.length);
  if (rest === ':memory:') return rest;
  if (rest.startsWith('//')) rest = rest.slice(2); // sqlite:///abs/path → /abs/path
  if (rest === '') throw new Error('TPX_DATABASE_URL: sqlite: URL needs a file path, e.g. sqlite:/var/lib/tpx/tpx.sqlite');
  return path.resolve(rest);
}

export interface CreateStoreOptions {
  logger?: StoreLogger;
  /** Test hooks of the embedded store (e.g. syncWal, checkpointFault). */
  sqlite?: Partial<SqliteStoreOptions>;
}

export function createStore(config: Config, opts: CreateStoreOptions = {}): Store {
  const url = config.databaseUrl;
  const durability = config.durability ?? 'synced';
  if (url && /^postgres(ql)?:\/\//i.test(url)) {
    return new PostgresStore({ connectionString: url, applicationName: `tpx-realtime/${config.nodeId}`, durability, logger: opts.logger });
  }
  const filename = sqliteFilename(config);
  if (filename === null) {
    throw new Error(`TPX_DATABASE_URL: unsupported database URL "${url}" (expected sqlite:<path> or postgres://…)`);
  }
  // The data directory holds the database (webhook secrets) and admin-token: this user's only.
  secureDirectory(config.dataDir);
  return new SqliteStore({ filename, durability, logger: opts.logger, ...opts.sqlite });
}
