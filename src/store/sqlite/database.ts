/**
 * The embedded store's connection and what every aggregate shares: opening the file (0600,
 * WAL, pragmas), migrations, the supervised checkpointer (started when the WAL grows), synced durability (wal-sync.ts), the
 * statement cache and the notice of commits made by other connections.
 *
 * better-sqlite3 is synchronous: statements run inline and the aggregates return resolved
 * promises, which keeps the async seam (a network store fits the same callers) at no cost. Write
 * transactions use BEGIN IMMEDIATE so two processes sharing the file never deadlock on a
 * read→write lock upgrade.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StoreLogger } from '../logger.js';
import { StoreUnavailableError, type Durability } from '../types.js';
import { SupervisedCheckpointer, type CheckpointFault } from './checkpointer.js';
import { prepareDatabaseFiles } from './files.js';
import { pendingMigrations } from '../shared/migrations.js';
import { MIGRATIONS } from './schema.js';
import { WalSync, type SyncFn } from './wal-sync.js';

export type Stmt = Database.Statement<unknown[], any>;

export interface SqliteStoreOptions {
  /** File path, or ':memory:' (tests). */
  filename: string;
  /**
   * 'synced' (default): appends are acknowledged once the WAL is fdatasynced (wal-sync.ts).
   * 'relaxed': once written; survives the process dying, not the machine (TPX_DURABILITY).
   */
  durability?: Durability;
  /** Test hook: replaces fdatasync of the WAL (e.g. to observe or delay it); default the real one. */
  syncWal?: SyncFn;
  busyTimeoutMs?: number;
  /** Run WAL checkpoints on a worker thread (default true for files; see checkpointer.ts). */
  backgroundCheckpoints?: boolean;
  /** Test hook: make the first checkpoint worker fail for real (checkpointer.ts). */
  checkpointFault?: CheckpointFault;
  /** Start the checkpoint worker once the WAL is larger than this (default 4 MiB; 0: at once). */
  checkpointAtWalBytes?: number;
  /** Stop the checkpoint worker after this long with nothing to copy (default 60 s). */
  checkpointIdleStopMs?: number;
  /** How long staged per-account stream rows wait to be moved in one batch (stream-index.ts). */
  streamBatchMs?: number;
  /** How long api_keys.last_used_at updates wait to be written in one batch (shared/key-touches.ts). */
  keyTouchBatchMs?: number;
  /** Rows per retention-pruning transaction (shared/prune.ts). */
  pruneChunkRows?: number;
  logger?: StoreLogger;
}

export class SqliteDatabase {
  readonly db: Database.Database;
  readonly filename: string;
  readonly durability: Durability;
  /** Null for ':memory:' and in relaxed mode: commits are acknowledged once written. */
  wal: WalSync | null = null;
  checkpointer: SupervisedCheckpointer | null = null;
  ready = false;
  /**
   * Set when the storage failed (a WAL sync, or a checkpoint with an I/O error): from then on
   * nothing is written, nothing of unknown durability is read or claimed, and the process is
   * expected to exit so that a restart's recovery reads what is really on disk (fail()).
   */
  fatal: StoreUnavailableError | null = null;
  private readonly fatalListeners: Array<(err: StoreUnavailableError) => void> = [];
  private readonly cache = new Map<string, Stmt>();
  private readonly externalWriteListeners: Array<() => void> = [];
  private dataVersionStmt: Stmt | null = null;
  private dataVersion = -1;

  constructor(readonly opts: SqliteStoreOptions) {
    this.filename = opts.filename;
    this.durability = opts.durability ?? 'synced';
    const onDisk = opts.filename !== ':memory:';
    if (onDisk) prepareDatabaseFiles(opts.filename);
    this.db = new Database(opts.filename);
    this.db.pragma('journal_mode = WAL');
    // The write itself stays NORMAL (no fsync inside COMMIT, on the loop); synced mode syncs the
    // WAL on the thread pool after each group commit instead (wal-sync.ts).
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('temp_store = MEMORY');
    // Checkpoints run on a worker thread so no COMMIT on the event loop pays for one; with them
    // off the loop, the serving connection never checkpoints itself.
    if (onDisk && opts.backgroundCheckpoints !== false) this.db.pragma('wal_autocheckpoint = 0');
  }

  /** Migrations, then the durability and checkpoint machinery (both need the WAL file to exist). */
  open(): void {
    this.migrate();
    this.dataVersionStmt = this.db.prepare('PRAGMA data_version').pluck();
    const onDisk = this.filename !== ':memory:';
    if (onDisk && this.durability === 'synced') this.wal = new WalSync(`${path.resolve(this.filename)}-wal`, this.opts.syncWal, (err) => this.fail(err));
    if (onDisk && this.opts.backgroundCheckpoints !== false) {
      this.checkpointer = new SupervisedCheckpointer({
        filename: this.filename,
        logger: this.opts.logger,
        fault: this.opts.checkpointFault,
        onIoError: (problem) => this.fail(new StoreUnavailableError(`WAL ${problem}`)),
        startAtWalBytes: this.opts.checkpointAtWalBytes,
        idleStopMs: this.opts.checkpointIdleStopMs,
      });
    }
    this.ready = true;
  }

  /** Forward-only migrations; the version lives in settings.schema_version. Safe for concurrent starts (IMMEDIATE lock). */
  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const run = this.db.transaction(() => {
      const row = this.db.prepare("SELECT value FROM settings WHERE key = 'schema_version'").get() as { value: string } | undefined;
      for (const m of pendingMigrations(row ? Number(row.value) : 0, MIGRATIONS)) {
        this.db.exec(m.sql);
        this.db.prepare("INSERT INTO settings (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(m.version));
      }
    });
    run.immediate();
  }

  check(): void {
    if (!this.ready) throw new Error(this.db.open ? 'Store not initialized: call init() first' : 'Store is closed');
  }

  /** Refuse every write once the storage failed (fail()). */
  checkWritable(): void {
    this.check();
    if (this.fatal) throw new StoreUnavailableError(this.fatal.message, { cause: this.fatal });
  }

  /**
   * The storage failed: after a failed fsync the kernel cannot say what reached the disk (Linux
   * may have dropped the dirty pages and will report the next sync clean), so, as PostgreSQL
   * PANICs, this store stops for good instead of carrying on over a page cache that may not
   * match the disk. The checkpointer is halted at once (a checkpoint would copy WAL frames the
   * disk may not hold into the database file, and a torn file is worse than a lost tail), writes
   * are refused, and the listeners (the composition root: log, then exit non-zero so a
   * supervisor restarts the node) are told. Called once.
   */
  fail(err: StoreUnavailableError): void {
    if (this.fatal) return;
    this.fatal = new StoreUnavailableError(`${err.message}; restart required`, { cause: err });
    this.checkpointer?.halt();
    this.opts.logger?.error({ err: err.message }, 'store storage failed: no more writes; the process must be restarted so that recovery reads what is on disk');
    for (const listener of this.fatalListeners) listener(this.fatal);
  }

  onFatal(listener: (err: StoreUnavailableError) => void): void {
    this.fatalListeners.push(listener);
    if (this.fatal) listener(this.fatal);
  }

  /** A prepared statement, prepared once per distinct SQL text. */
  prepare(sql: string): Stmt {
    let st = this.cache.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.cache.set(sql, st);
    }
    return st;
  }

  /** Resolves once every append committed so far is synced (immediately when not in synced mode). */
  durable(): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    return this.wal ? this.wal.durable() : Promise.resolve();
  }

  /**
   * A write outside the event log (admin: accounts, keys, endpoints, retries) was just
   * committed: resolves once the WAL holding it is synced, through the same group-commit sync as
   * appends (a sync in flight or the next one), so its answer means on disk as a 202 does. A
   * deactivated key must stay deactivated after an operating-system crash (SPEC §2.5).
   */
  written(): Promise<void> {
    const wal = this.wal;
    return wal ? wal.durable(wal.committed()) : Promise.resolve();
  }

  onExternalWrite(listener: () => void): void {
    this.externalWriteListeners.push(listener);
  }

  /**
   * Caches follow this store's own writes; a commit by any other connection to the file (a
   * second process or handle) is noticed here (PRAGMA data_version changes) and drops them, so
   * e.g. a key revoked elsewhere is refused at its next authentication. One cheap pragma.
   */
  noticeExternalWrites(): void {
    const version = this.dataVersionStmt!.get() as number;
    if (version === this.dataVersion) return;
    this.dataVersion = version;
    for (const listener of this.externalWriteListeners) listener();
  }

  /** Stop the background machinery and close the connection. */
  async close(): Promise<void> {
    if (!this.db.open) return;
    await this.wal?.close();
    if (this.checkpointer) {
      await this.checkpointer.stop();
      this.checkpointer = null;
    }
    if (this.fatal) return this.closeWithoutCheckpoint();
    try {
      if (this.ready) this.db.pragma('optimize');
    } finally {
      this.db.close();
      this.ready = false;
    }
  }

  /**
   * After a storage failure: close without the checkpoint SQLite runs when the last connection
   * closes (it would copy WAL frames of unknown durability into the database file and delete the
   * WAL). A read-only connection holding a read lock makes this one not the last; being
   * read-only, it cannot checkpoint either when it closes. The WAL stays for recovery.
   */
  private closeWithoutCheckpoint(): void {
    let guard: Database.Database | null = null;
    try {
      guard = new Database(this.filename, { readonly: true });
      guard.prepare('SELECT COUNT(*) FROM settings').get();
    } catch {
      // Unreadable storage: close as is.
    }
    try {
      this.db.close();
    } finally {
      this.ready = false;
      guard?.close();
    }
  }
}
