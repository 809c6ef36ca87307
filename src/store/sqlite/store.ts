/**
 * Embedded SQLite implementation of the Store seam (better-sqlite3).
 *
 * better-sqlite3 is synchronous: every method does its work inline and returns a resolved
 * promise, which keeps the async interface (a network store fits the same callers) at no cost.
 * Statements are prepared once in init(); write transactions use BEGIN IMMEDIATE so two
 * processes sharing the file never deadlock on a read→write lock upgrade.
 *
 * Durability: WAL + synchronous=NORMAL. In WAL mode a commit is appended to the WAL with
 * write(2) before COMMIT returns, so once appendEvent resolves the event survives the process
 * being killed (kill -9, OOM, crash): the OS still holds the bytes and the next open replays the
 * WAL. What NORMAL gives up versus FULL is an fsync per commit, i.e. only an operating-system
 * crash or power loss can lose the last few commits (the database stays consistent). That is
 * the guarantee "an accepted event is never lost when the process dies" needs, at a fraction
 * of FULL's cost; deployments that need power-loss durability use the PostgreSQL store.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { EVENT_TYPES, isEventType, type EventType } from '@tpx-realtime/protocol';
import { generateToken, hashToken, hashesEqual, isWellFormedToken, tokenPrefix } from '../keys.js';
import {
  StoreConflictError,
  StoreValidationError,
  UnknownAccountsError,
  type Account,
  type AccountEvent,
  type AccountPatch,
  type ApiKey,
  type ApiKeyStatus,
  type AppendResult,
  type AttemptResolution,
  type ClaimedDelivery,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryStatus,
  type KeyLookup,
  type NewEvent,
  type ReadEventsQuery,
  type RecordAttemptItem,
  type ReadEventsResult,
  type Store,
  type WebhookEndpoint,
  type WebhookPatch,
} from '../types.js';
import { uuidv7 } from '../ids.js';
import { BackgroundCheckpointer } from './checkpointer.js';
import { StreamIndex } from './stream-index.js';
import { KeyTouches } from './key-touches.js';
import { type ApiKeyRow, type DeliveryRow, type WebhookRow, iso, isoOrNull, isoToMs, normalizeIso, toApiKey, toDelivery, toWebhook, validatePartnerId, validateRooms, applyWebhookPatch, newWebhookEndpoint } from '../common.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from './schema.js';

type Stmt = Database.Statement<unknown[], any>;

/** last_used_at is written at most once per this interval per key (no write per auth). */
const LAST_USED_RESOLUTION_MS = 60_000;
/** Bound on cached token lookups (oldest dropped first); a few hundred bytes each. */
const TOKEN_CACHE_MAX = 10_000;

/**
 * Pruning reads only what expired. Left to itself the planner answered the GROUP BY by walking
 * the whole stream in primary-key order (a 10-minute soak: a 2.6 s event-loop stall at the first
 * prune), and the delivery prune walked every succeeded delivery through deliveries_due.
 */
export const PRUNE_MAX_SEQ_SQL =
  'SELECT account_id, MAX(seq) AS max_seq FROM account_events INDEXED BY account_events_created WHERE created_at_ms < ? GROUP BY account_id';
export const PRUNE_SUCCEEDED_DELIVERIES_SQL = `DELETE FROM deliveries WHERE rowid IN (
  SELECT rowid FROM deliveries INDEXED BY deliveries_succeeded_created WHERE status = 'succeeded' AND created_at < ? LIMIT ?)`;
/** Rows per pruning transaction; the event loop runs between chunks. */
const PRUNE_CHUNK_ROWS = 5_000;

type KeyJoinRow = ApiKeyRow & { token_hash: Buffer; a_name: string | null; a_partner_id: string | null; a_rooms: string; a_created_at: string };
const DEFAULT_LIST_LIMIT = 1000;
/** Claims: due rows read per keyset page, and rows read before switching to per-endpoint probes. */
const CLAIM_SCAN_CHUNK = 128;
const CLAIM_SCAN_BUDGET = 256;

interface AccountRow {
  account_id: string;
  name: string | null;
  partner_id: string | null;
  rooms: string;
  created_at: string;
}

function toAccount(r: AccountRow): Account {
  return { account_id: r.account_id, name: r.name, partner_id: r.partner_id, rooms: JSON.parse(r.rooms) as EventType[], created_at: r.created_at };
}

function isUniqueViolation(err: unknown, column: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof e.message === 'string' && e.message.includes(column);
}

function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** Per-account data needed while appending, cached for the duration of one transaction. */
interface Recipient {
  rooms: ReadonlySet<string>;
  webhooks: string[] | null;
}

interface PlannedEvent {
  event: NewEvent;
  duplicateOf: { msg_id: string; recipients: number } | null;
  recipients: string[];
}

export interface SqliteStoreOptions {
  /** File path, or ':memory:' (tests). */
  filename: string;
  busyTimeoutMs?: number;
  /** Run WAL checkpoints on a worker thread (default true for files; see checkpointer.ts). */
  backgroundCheckpoints?: boolean;
  /** How long staged per-account stream rows wait to be moved in one batch (stream-index.ts). */
  streamBatchMs?: number;
  /** How long api_keys.last_used_at updates wait to be written in one batch (key-touches.ts). */
  keyTouchBatchMs?: number;
  /** Rows per retention-pruning transaction (see pruneEvents). */
  pruneChunkRows?: number;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly filename: string;
  private checkpointer: BackgroundCheckpointer | null = null;
  private readonly db: Database.Database;
  private s!: ReturnType<SqliteStore['prepareAll']>;
  /** Per-account stream rows, written behind the commit in batches (stream-index.ts). */
  private stream!: StreamIndex;
  /** api_keys.last_used_at updates, written in batches (key-touches.ts). */
  private touches!: KeyTouches;
  private ready = false;
  /**
   * Routing view used by every append: each account's accessible rooms and enabled webhook ids.
   * Loaded once and dropped by this store's own writes to accounts or webhooks, or when another
   * connection committed (syncExternalWrites), so a publish does not re-read and re-parse them
   * per event.
   */
  private routing: { accounts: Map<string, Recipient>; all: string[] } | null = null;
  /**
   * Successful token lookups by token hash: the joined key + account row and the parsed account.
   * A reconnect storm authenticates the same keys thousands of times, and the join plus the JSON
   * parse of the rooms were ~10 % of server CPU per connection. Status and expiry are still
   * checked on every lookup; the entries go with every write to keys or accounts (dropCaches).
   */
  private readonly tokenCache = new Map<string, { row: KeyJoinRow; account: Account }>();
  /** PRAGMA data_version last seen: it changes when ANOTHER connection commits (see syncExternalWrites). */
  private dataVersion = -1;
  private readonly dynamic = new Map<string, Stmt>();
  private readonly appendTx: (events: NewEvent[]) => AppendResult[];
  /** Several appends in one IMMEDIATE transaction, each in its own savepoint (group commit). */
  private readonly groupAppendTx: (groups: NewEvent[][]) => Array<{ ok: true; value: AppendResult[] } | { ok: false; error: unknown }>;
  private pendingAppends: Array<{ events: NewEvent[]; resolve: (r: AppendResult[]) => void; reject: (e: unknown) => void }> = [];
  private appendFlushScheduled = false;

  private readonly pruneChunkRows: number;

  constructor(private readonly opts: SqliteStoreOptions) {
    this.filename = opts.filename;
    this.pruneChunkRows = Math.max(1, Math.floor(opts.pruneChunkRows ?? PRUNE_CHUNK_ROWS));
    if (opts.filename !== ':memory:') mkdirSync(path.dirname(path.resolve(opts.filename)), { recursive: true });
    this.db = new Database(opts.filename);
    this.db.pragma('journal_mode = WAL');
    // See the file comment: WAL + NORMAL survives process death; only OS crash/power loss can drop the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('temp_store = MEMORY');
    // Checkpoints run on a worker thread (checkpointer.ts) so no COMMIT on the event loop pays
    // for one; with them off the loop, the serving connection never checkpoints itself.
    if (opts.filename !== ':memory:' && opts.backgroundCheckpoints !== false) {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new BackgroundCheckpointer(opts.filename);
    }
    const tx = this.db.transaction((events: NewEvent[]) => this.appendInTx(events));
    this.appendTx = (events) => tx.immediate(events);
    // Inside a transaction, calling `tx` again runs it as a SAVEPOINT: a request whose events
    // fail (unknown account…) rolls back alone while the others in the group commit.
    const group = this.db.transaction((groups: NewEvent[][]) =>
      groups.map((events) => {
        try {
          return { ok: true as const, value: tx(events) };
        } catch (error) {
          return { ok: false as const, error };
        }
      }),
    );
    this.groupAppendTx = (groups) => group.immediate(groups);
  }

  // ---------------------------------------------------------------- lifecycle

  async init(): Promise<void> {
    if (this.ready) return;
    this.migrate();
    this.s = this.prepareAll();
    this.stream = new StreamIndex(this.db, this.opts.streamBatchMs);
    this.stream.materialize(); // rows a crash left staged
    this.touches = new KeyTouches(this.db, this.opts.keyTouchBatchMs);
    this.ready = true;
  }

  /** Forward-only migrations; the version lives in settings.schema_version. Safe for concurrent starts (IMMEDIATE lock). */
  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const run = this.db.transaction(() => {
      const row = this.db.prepare("SELECT value FROM settings WHERE key = 'schema_version'").get() as { value: string } | undefined;
      const current = row ? Number(row.value) : 0;
      if (current > LATEST_SCHEMA_VERSION) {
        throw new Error(`Database schema version ${current} is newer than this build supports (${LATEST_SCHEMA_VERSION}); upgrade tpx-realtime`);
      }
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        this.db.exec(m.sql);
        this.db.prepare("INSERT INTO settings (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(m.version));
      }
    });
    run.immediate();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    if (this.pendingAppends.length > 0) this.flushAppends(); // accepted work is committed, not dropped
    if (this.ready) {
      this.stream.materialize(); // leaves nothing staged, stops its timer
      this.touches.stop();
    }
    if (this.checkpointer) {
      await this.checkpointer.stop();
      this.checkpointer = null;
    }
    try {
      if (this.ready) this.db.pragma('optimize');
    } finally {
      this.db.close();
      this.ready = false;
    }
  }

  async ping(): Promise<void> {
    this.check();
    this.s.ping.get();
  }

  private check(): void {
    if (!this.ready) throw new Error(this.db.open ? 'Store not initialized: call init() first' : 'Store is closed');
  }

  private prepareAll() {
    const p = (sql: string): Stmt => this.db.prepare(sql);
    return {
      ping: p('SELECT 1'),
      dataVersion: p('PRAGMA data_version').pluck(),
      getSetting: p('SELECT value FROM settings WHERE key = ?'),
      insertSettingIfAbsent: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),

      insertAccount: p('INSERT INTO accounts (account_id, name, partner_id, rooms, created_at) VALUES (?, ?, ?, ?, ?)'),
      getAccount: p('SELECT account_id, name, partner_id, rooms, created_at FROM accounts WHERE account_id = ?'),
      // Creation order = rowid order (monotonic, unlike created_at which ties within a millisecond).
      listAccounts: p('SELECT account_id, name, partner_id, rooms, created_at FROM accounts ORDER BY rowid LIMIT ?'),
      listAccountsAfter: p(
        `SELECT account_id, name, partner_id, rooms, created_at FROM accounts
         WHERE rowid > (SELECT rowid FROM accounts WHERE account_id = ?) ORDER BY rowid LIMIT ?`,
      ),
      updateAccount: p('UPDATE accounts SET name = ?, partner_id = ?, rooms = ? WHERE account_id = ?'),
      deleteAccount: p('DELETE FROM accounts WHERE account_id = ?'),
      accountRooms: p('SELECT rooms FROM accounts WHERE account_id = ?'),
      allAccountRooms: p('SELECT account_id, rooms FROM accounts'),
      accountSeqState: p('SELECT last_seq, pruned_through FROM accounts WHERE account_id = ?'),

      insertKey: p(
        `INSERT INTO api_keys (key_id, account_id, name, token_hash, token_prefix, status, expires_at, created_at)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?)`,
      ),
      getKey: p('SELECT key_id, account_id, name, token_prefix, status, expires_at, created_at, last_used_at FROM api_keys WHERE key_id = ?'),
      listKeys: p('SELECT key_id, account_id, name, token_prefix, status, expires_at, created_at, last_used_at FROM api_keys WHERE account_id = ? ORDER BY rowid'),
      setKeyStatus: p('UPDATE api_keys SET status = ? WHERE key_id = ?'),
      deleteKey: p('DELETE FROM api_keys WHERE key_id = ?'),
      keyByHash: p(
        `SELECT k.key_id, k.account_id, k.name, k.token_hash, k.token_prefix, k.status, k.expires_at, k.created_at, k.last_used_at,
                a.name AS a_name, a.partner_id AS a_partner_id, a.rooms AS a_rooms, a.created_at AS a_created_at
         FROM api_keys k JOIN accounts a ON a.account_id = k.account_id WHERE k.token_hash = ?`,
      ),

      eventByMsgId: p('SELECT recipients FROM events WHERE msg_id = ?'),
      insertEvent: p('INSERT INTO events (msg_id, msg_type, payload_json, source_id, created_at_ms, recipients) VALUES (?, ?, ?, ?, ?, ?)'),
      bumpSeq: p('UPDATE accounts SET last_seq = last_seq + 1 WHERE account_id = ? RETURNING last_seq'),
      // Set-based variants for events with many recipients (broadcast): one statement each
      // instead of two per account; the account list travels as one JSON array.
      bumpSeqMany: p('UPDATE accounts SET last_seq = last_seq + 1 WHERE account_id IN (SELECT value FROM json_each(?)) RETURNING account_id, last_seq'),
      allEnabledWebhookIds: p('SELECT account_id, webhook_id FROM webhooks WHERE enabled = 1 ORDER BY rowid'),
      enabledWebhookIds: p('SELECT webhook_id FROM webhooks WHERE account_id = ? AND enabled = 1'),
      insertDelivery: p(
        `INSERT INTO deliveries (delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
      ),
      // The stream is account_events plus the rows still staged (stream-index.ts): one snapshot,
      // so a row is in exactly one of them. SQLite merges the two arms in seq order (the indexed
      // one stops at LIMIT; the staged one is one batch window of rows, scanned).
      // Types as ',A,B,' (or NULL for all) so one statement serves every filter.
      readEvents: p(
        `SELECT x.seq, x.created_at_ms, e.msg_id, e.msg_type, e.payload_json, e.source_id
         FROM (SELECT seq, event_id, created_at_ms FROM account_events WHERE account_id = :account AND seq > :after
               UNION ALL
               SELECT seq, event_id, created_at_ms FROM account_events_pending WHERE account_id = :account AND seq > :after) x
         JOIN events e ON e.event_id = x.event_id
         WHERE :types IS NULL OR instr(:types, ',' || e.msg_type || ',') > 0
         ORDER BY x.seq LIMIT :limit`,
      ),
      pruneMaxSeq: p(PRUNE_MAX_SEQ_SQL),
      setPrunedThrough: p('UPDATE accounts SET pruned_through = MAX(pruned_through, ?) WHERE account_id = ?'),
      deleteAccountEventsThrough: p('DELETE FROM account_events WHERE account_id = ? AND seq <= ?'),
      // The seq `offset` rows into an account's expired range: the end of one prune chunk.
      pruneChunkEnd: p('SELECT seq FROM account_events WHERE account_id = ? AND seq <= ? ORDER BY seq LIMIT 1 OFFSET ?').pluck(),
      pruneSucceededDeliveries: p(PRUNE_SUCCEEDED_DELIVERIES_SQL),
      // Account-event rows share their event's created_at_ms, so after deleting every row older than the
      // cutoff no stream references an older event; only unfinished deliveries can still need one.
      pruneEvents: p(
        `DELETE FROM events WHERE event_id IN (
           SELECT event_id FROM events WHERE created_at_ms < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.event_id AND d.status <> 'succeeded')
           LIMIT ?)`,
      ),

      insertWebhook: p(
        `INSERT INTO webhooks (webhook_id, account_id, url, secret, enabled, description, created_at, updated_at)
         VALUES (?, ?, ?, ?, 1, ?, ?, ?)`,
      ),
      getWebhook: p('SELECT * FROM webhooks WHERE webhook_id = ?'),
      listWebhooks: p('SELECT * FROM webhooks WHERE account_id = ? ORDER BY rowid'),
      updateWebhook: p(
        `UPDATE webhooks SET url = ?, secret = ?, previous_secret = ?, previous_secret_expires_at = ?, enabled = ?,
         disabled_reason = ?, description = ?, failing_since = ?, updated_at = ? WHERE webhook_id = ?`,
      ),
      deleteWebhook: p('DELETE FROM webhooks WHERE webhook_id = ?'),

      getDelivery: p('SELECT * FROM deliveries WHERE delivery_id = ?'),
      attemptsOf: p(
        'SELECT attempt_id, delivery_id, attempted_at, status_code, latency_ms, error, outcome FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt_no',
      ),
      // INDEXED BY: left alone the planner walks deliveries_webhook (every delivery) to avoid a sort of a few rows.
      liveLeases: p(
        'SELECT webhook_id, COUNT(*) AS n FROM deliveries INDEXED BY deliveries_leased WHERE lease_owner IS NOT NULL AND lease_until > ? GROUP BY webhook_id',
      ),
      // Keyset page over due, unleased deliveries of enabled endpoints, oldest due first (seq within).
      dueChunk: p(
        `SELECT d.delivery_id, d.webhook_id, d.next_attempt_at, d.seq FROM deliveries d INDEXED BY deliveries_due
         JOIN webhooks w ON w.webhook_id = d.webhook_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.next_attempt_at >= ?
           AND (d.next_attempt_at > ? OR (d.next_attempt_at = ? AND (d.seq > ? OR (d.seq = ? AND d.delivery_id > ?))))
           AND (d.lease_owner IS NULL OR d.lease_until <= ?)
           AND w.enabled = 1
         ORDER BY d.next_attempt_at, d.seq, d.delivery_id LIMIT ?`,
      ),
      // Loose index scan over deliveries_pending_endpoint: one probe per endpoint that has pending
      // deliveries (not one row read per pending delivery), keeping enabled endpoints with a due row.
      dueEndpoints: p(
        `WITH RECURSIVE ep(id) AS (
           SELECT (SELECT MIN(webhook_id) FROM deliveries INDEXED BY deliveries_pending_endpoint WHERE status = 'pending')
           UNION ALL
           SELECT (SELECT MIN(webhook_id) FROM deliveries INDEXED BY deliveries_pending_endpoint WHERE status = 'pending' AND webhook_id > ep.id)
           FROM ep WHERE ep.id IS NOT NULL
         )
         SELECT w.webhook_id FROM ep JOIN webhooks w ON w.webhook_id = ep.id
         WHERE w.enabled = 1
           AND EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_pending_endpoint
                       WHERE status = 'pending' AND webhook_id = ep.id AND next_attempt_at <= ?)`,
      ),
      // One endpoint's due, unleased deliveries in (next_attempt_at, seq) order (seq is unique within an
      // endpoint: one webhook belongs to one account). Reads at most its live leases + LIMIT rows.
      dueOfEndpoint: p(
        `SELECT delivery_id, webhook_id, next_attempt_at, seq FROM deliveries INDEXED BY deliveries_pending_endpoint
         WHERE status = 'pending' AND webhook_id = ? AND next_attempt_at <= ?
           AND (lease_owner IS NULL OR lease_until <= ?)
         ORDER BY next_attempt_at, seq LIMIT ?`,
      ),
      lease: p('UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE delivery_id = ?'),
      claimedDetail: p(
        `SELECT d.*, a.partner_id AS a_partner_id, e.event_id AS e_event_id, e.payload_json AS e_payload_json, e.source_id AS e_source_id,
                e.created_at_ms AS e_created_at_ms
         FROM deliveries d JOIN accounts a ON a.account_id = d.account_id LEFT JOIN events e ON e.event_id = d.event_id
         WHERE d.delivery_id = ?`,
      ),
      failOrphan: p(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, last_error = ?, completed_at = ? WHERE delivery_id = ?",
      ),
      leaseOf: p('SELECT lease_owner, attempt_count FROM deliveries WHERE delivery_id = ?'),
      insertAttempt: p(
        `INSERT INTO delivery_attempts (attempt_id, delivery_id, attempt_no, attempted_at, status_code, latency_ms, error, outcome)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      resolveDelivery: p(
        `UPDATE deliveries SET attempt_count = attempt_count + 1, status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?,
         completed_at = ?, lease_owner = NULL, lease_until = NULL WHERE delivery_id = ?`,
      ),
      retryDelivery: p("UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL WHERE delivery_id = ?"),
      retryFailed: p(
        `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, completed_at = NULL
         WHERE account_id = ? AND status = 'failed' AND created_at >= ? AND created_at <= ?`,
      ),
      nextDue: p(
        `SELECT d.next_attempt_at FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
         WHERE d.status = 'pending' AND w.enabled = 1 AND (d.lease_owner IS NULL OR d.lease_until <= ?)
         ORDER BY d.next_attempt_at LIMIT 1`,
      ),
      countByStatus: p("SELECT status, COUNT(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status"),
    };
  }

  // ---------------------------------------------------------------- settings

  async getSetting(key: string): Promise<string | null> {
    this.check();
    const row = this.s.getSetting.get(key) as { value: string } | undefined;
    return row ? row.value : null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    this.check();
    this.s.insertSettingIfAbsent.run(key, value);
    return (this.s.getSetting.get(key) as { value: string }).value;
  }

  // ---------------------------------------------------------------- accounts

  async createAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Promise<Account> {
    this.check();
    const rooms = input.rooms === undefined ? [...EVENT_TYPES] : validateRooms(input.rooms);
    const partnerId = validatePartnerId(input.partner_id);
    const account: Account = {
      account_id: randomUUID(),
      name: input.name ?? null,
      partner_id: partnerId,
      rooms,
      created_at: new Date().toISOString(),
    };
    try {
      this.dropCaches();
      this.s.insertAccount.run(account.account_id, account.name, account.partner_id, JSON.stringify(rooms), account.created_at);
    } catch (err) {
      if (isUniqueViolation(err, 'partner_id')) throw new StoreConflictError(`partner_id "${partnerId}" is already used by another account`);
      throw err;
    }
    return account;
  }

  async getAccount(accountId: string): Promise<Account | null> {
    this.check();
    const row = this.s.getAccount.get(accountId) as AccountRow | undefined;
    return row ? toAccount(row) : null;
  }

  async listAccounts(opts: { limit?: number; after?: string } = {}): Promise<Account[]> {
    this.check();
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_LIST_LIMIT));
    const rows = (opts.after ? this.s.listAccountsAfter.all(opts.after, limit) : this.s.listAccounts.all(limit)) as AccountRow[];
    return rows.map(toAccount);
  }

  async updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null> {
    this.check();
    const row = this.s.getAccount.get(accountId) as AccountRow | undefined;
    if (!row) return null;
    const current = toAccount(row);
    const next: Account = {
      ...current,
      name: patch.name !== undefined ? patch.name : current.name,
      partner_id: patch.partner_id !== undefined ? validatePartnerId(patch.partner_id) : current.partner_id,
      rooms: patch.rooms !== undefined ? validateRooms(patch.rooms) : current.rooms,
    };
    try {
      this.dropCaches();
      this.s.updateAccount.run(next.name, next.partner_id, JSON.stringify(next.rooms), accountId);
    } catch (err) {
      if (isUniqueViolation(err, 'partner_id')) throw new StoreConflictError(`partner_id "${next.partner_id}" is already used by another account`);
      throw err;
    }
    return next;
  }

  async deleteAccount(accountId: string): Promise<boolean> {
    this.check();
    // FK cascades remove keys, webhooks (→ deliveries → attempts) and the account's stream.
    // Shared event rows go at the next prune once nothing references them.
    this.dropCaches();
    return this.s.deleteAccount.run(accountId).changes > 0;
  }

  // ---------------------------------------------------------------- api keys

  async createApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): Promise<{ key: ApiKey; token: string }> {
    this.check();
    const expiresAt = normalizeIso(input.expires_at, 'expires_at');
    const token = generateToken();
    const key: ApiKey = {
      key_id: randomUUID(),
      account_id: accountId,
      name: input.name ?? null,
      token_prefix: tokenPrefix(token),
      status: 'active',
      expires_at: expiresAt,
      created_at: new Date().toISOString(),
      last_used_at: null,
    };
    try {
      this.s.insertKey.run(key.key_id, accountId, key.name, hashToken(token), key.token_prefix, expiresAt, key.created_at);
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new StoreValidationError(`Unknown account id: ${accountId}`);
      throw err;
    }
    return { key, token };
  }

  async listApiKeys(accountId: string): Promise<ApiKey[]> {
    this.check();
    this.touches.flush();
    return (this.s.listKeys.all(accountId) as ApiKeyRow[]).map(toApiKey);
  }

  async getApiKey(keyId: string): Promise<ApiKey | null> {
    this.check();
    this.touches.flush();
    const row = this.s.getKey.get(keyId) as ApiKeyRow | undefined;
    return row ? toApiKey(row) : null;
  }

  async setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null> {
    this.check();
    if (status !== 'active' && status !== 'inactive') throw new StoreValidationError(`Invalid key status: ${String(status)}`);
    this.dropCaches();
    if (this.s.setKeyStatus.run(status, keyId).changes === 0) return null;
    return this.getApiKey(keyId);
  }

  async deleteApiKey(keyId: string): Promise<ApiKey | null> {
    this.check();
    this.touches.flush();
    const row = this.s.getKey.get(keyId) as ApiKeyRow | undefined;
    if (!row) return null;
    this.dropCaches();
    this.s.deleteKey.run(keyId);
    return toApiKey(row);
  }

  async lookupToken(token: string, now: Date = new Date()): Promise<KeyLookup> {
    this.check();
    // Malformed tokens never reach the database.
    if (!isWellFormedToken(token)) return { ok: false, reason: 'invalid' };
    const hash = hashToken(token);
    this.syncExternalWrites();
    const cacheKey = hash.toString('base64');
    let cached = this.tokenCache.get(cacheKey);
    if (!cached) {
      const found = this.s.keyByHash.get(hash) as KeyJoinRow | undefined;
      if (found) {
        const account = toAccount({ account_id: found.account_id, name: found.a_name, partner_id: found.a_partner_id, rooms: found.a_rooms, created_at: found.a_created_at });
        cached = { row: found, account };
        if (this.tokenCache.size >= TOKEN_CACHE_MAX) this.tokenCache.delete(this.tokenCache.keys().next().value!);
        this.tokenCache.set(cacheKey, cached);
      }
    }
    // The index lookup already matched; the constant-time compare is defence in depth.
    if (!cached || !hashesEqual(cached.row.token_hash, hash)) return { ok: false, reason: 'invalid' };
    const { row, account } = cached;
    if (row.status !== 'active') return { ok: false, reason: 'inactive' };
    if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) return { ok: false, reason: 'expired' };

    const nowMs = Date.now();
    let lastUsed = this.touches.get(row.key_id) ?? row.last_used_at;
    if (lastUsed === null || nowMs - Date.parse(lastUsed) >= LAST_USED_RESOLUTION_MS) {
      lastUsed = iso(nowMs);
      this.touches.set(row.key_id, lastUsed);
      row.last_used_at = lastUsed; // the cached row stays current once the touch is written
    }
    const key = toApiKey({ ...row, last_used_at: lastUsed });
    return { ok: true, key, account: { ...account, rooms: [...account.rooms] } };
  }

  // ---------------------------------------------------------------- event log

  async appendEvent(event: NewEvent): Promise<AppendResult> {
    return (await this.enqueueAppend([event]))[0];
  }

  async appendEvents(events: NewEvent[]): Promise<AppendResult[]> {
    if (events.length === 0) {
      this.check();
      return [];
    }
    return this.enqueueAppend(events);
  }

  /**
   * Group commit: appends requested during one event-loop turn (e.g. several concurrent publish
   * requests) share one transaction, so the commit (WAL write) is paid once per turn instead of
   * once per request. Each caller still learns its own outcome, and only after the commit.
   */
  private enqueueAppend(events: NewEvent[]): Promise<AppendResult[]> {
    this.check();
    return new Promise((resolve, reject) => {
      this.pendingAppends.push({ events, resolve, reject });
      if (!this.appendFlushScheduled) {
        this.appendFlushScheduled = true;
        setImmediate(this.flushAppends);
      }
    });
  }

  private readonly flushAppends = (): void => {
    this.appendFlushScheduled = false;
    const batch = this.pendingAppends;
    this.pendingAppends = [];
    if (batch.length === 0) return;
    if (!this.ready) {
      for (const item of batch) item.reject(new Error('Store is closed'));
      return;
    }
    if (batch.length === 1) {
      try {
        batch[0].resolve(this.appendTx(batch[0].events));
      } catch (err) {
        batch[0].reject(err);
      }
      this.stream.afterCommit();
      return;
    }
    let outcomes: ReturnType<typeof this.groupAppendTx>;
    try {
      outcomes = this.groupAppendTx(batch.map((item) => item.events));
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i].resolve(outcome.value) : batch[i].reject(outcome.error)));
    this.stream.afterCommit();
  };

  /** Runs inside one IMMEDIATE transaction: plan (validate everything) first, then write. */
  /** Own writes to accounts, keys or webhooks make the cached views stale. */
  private dropCaches(): void {
    this.routing = null;
    this.tokenCache.clear();
  }

  /**
   * The caches follow this store's own writes; a commit by any other connection to the file (a
   * second process or handle) is detected here and drops them, so e.g. a key revoked elsewhere
   * is refused at its next authentication. One cheap pragma per call.
   */
  private syncExternalWrites(): void {
    const version = this.s.dataVersion.get() as number;
    if (version !== this.dataVersion) {
      this.dataVersion = version;
      this.dropCaches();
    }
  }

  private routingView(): { accounts: Map<string, Recipient>; all: string[] } {
    this.syncExternalWrites();
    if (this.routing) return this.routing;
    const accounts = new Map<string, Recipient>();
    for (const row of this.s.allAccountRooms.all() as { account_id: string; rooms: string }[]) {
      accounts.set(row.account_id, { rooms: new Set(JSON.parse(row.rooms) as string[]), webhooks: [] });
    }
    for (const row of this.s.allEnabledWebhookIds.all() as { account_id: string; webhook_id: string }[]) {
      accounts.get(row.account_id)?.webhooks!.push(row.webhook_id);
    }
    this.routing = { accounts, all: [...accounts.keys()] };
    return this.routing;
  }

  private appendInTx(events: NewEvent[]): AppendResult[] {
    const s = this.s;
    const routing = this.routingView();
    const cache = routing.accounts;
    const recipientOf = (accountId: string): Recipient | null => cache.get(accountId) ?? null;

    // Pass 1: idempotency and target resolution; nothing is written, so a throw stores nothing.
    const seen = new Map<string, PlannedEvent>();
    const plans: PlannedEvent[] = [];
    const unknown = new Set<string>();
    for (const event of events) {
      if (!isEventType(event.msg_type)) throw new StoreValidationError(`Unknown msg_type: ${String(event.msg_type)}`);
      const earlier = seen.get(event.msg_id);
      if (earlier) {
        plans.push({ event, duplicateOf: { msg_id: event.msg_id, recipients: earlier.duplicateOf?.recipients ?? earlier.recipients.length }, recipients: [] });
        continue;
      }
      const stored = s.eventByMsgId.get(event.msg_id) as { recipients: number } | undefined;
      if (stored) {
        const plan = { event, duplicateOf: { msg_id: event.msg_id, recipients: stored.recipients }, recipients: [] };
        seen.set(event.msg_id, plan);
        plans.push(plan);
        continue;
      }
      let recipients: string[];
      if (event.target === 'broadcast') {
        recipients = routing.all.filter((id) => cache.get(id)!.rooms.has(event.msg_type));
      } else {
        recipients = [];
        for (const id of new Set(event.target)) {
          const r = recipientOf(id);
          if (r === null) unknown.add(id);
          else if (r.rooms.has(event.msg_type)) recipients.push(id);
        }
      }
      const plan: PlannedEvent = { event, duplicateOf: null, recipients };
      seen.set(event.msg_id, plan);
      plans.push(plan);
    }
    if (unknown.size > 0) throw new UnknownAccountsError([...unknown]);

    // Pass 2: write.
    const results: AppendResult[] = [];
    for (const plan of plans) {
      const { event } = plan;
      if (plan.duplicateOf) {
        results.push({ msg_id: event.msg_id, recipients: plan.duplicateOf.recipients, duplicate: true, events: [], deliveries: 0 });
        continue;
      }
      const eventId = Number(
        s.insertEvent.run(event.msg_id, event.msg_type, event.payload_json, event.source_id, event.created_at_ms, plan.recipients.length).lastInsertRowid,
      );
      const copies: AccountEvent[] = [];
      let deliveries = 0;
      const addCopy = (accountId: string, seq: number) => {
        copies.push({
          account_id: accountId,
          seq,
          msg_id: event.msg_id,
          msg_type: event.msg_type,
          payload_json: event.payload_json,
          source_id: event.source_id,
          created_at_ms: event.created_at_ms,
        });
        for (const webhookId of cache.get(accountId)!.webhooks!) {
          s.insertDelivery.run(uuidv7(), webhookId, accountId, eventId, event.msg_id, event.msg_type, seq, event.created_at_ms, event.created_at_ms);
          deliveries++;
        }
      };
      if (plan.recipients.length <= 2) {
        for (const accountId of plan.recipients) {
          const seq = (s.bumpSeq.get(accountId) as { last_seq: number }).last_seq;
          this.stream.add(accountId, seq, eventId, event.created_at_ms);
          addCopy(accountId, seq);
        }
      } else {
        const ids = JSON.stringify(plan.recipients);
        const seqOf = new Map<string, number>();
        for (const row of s.bumpSeqMany.all(ids) as { account_id: string; last_seq: number }[]) seqOf.set(row.account_id, row.last_seq);
        this.stream.addMany(ids, eventId, event.created_at_ms);
        for (const accountId of plan.recipients) addCopy(accountId, seqOf.get(accountId)!);
      }
      results.push({ msg_id: event.msg_id, recipients: copies.length, duplicate: false, events: copies, deliveries });
    }
    return results;
  }

  async readEvents(query: ReadEventsQuery): Promise<ReadEventsResult> {
    this.check();
    const state = this.s.accountSeqState.get(query.account_id) as { last_seq: number; pruned_through: number } | undefined;
    if (!state) return { events: [], pruned_through: 0, last_seq: 0 };
    const limit = Math.max(0, Math.floor(query.limit));
    const after = Math.max(0, Math.floor(query.after_seq));
    if (limit === 0 || (query.types !== null && query.types.size === 0)) {
      return { events: [], pruned_through: state.pruned_through, last_seq: state.last_seq };
    }
    const types = query.types === null ? null : `,${[...query.types].join(',')},`;
    const rows = this.s.readEvents.all({ account: query.account_id, after, limit, types }) as { seq: number; created_at_ms: number; msg_id: string; msg_type: EventType; payload_json: string; source_id: string | null }[];
    const events = rows.map((r) => ({
      account_id: query.account_id,
      seq: r.seq,
      msg_id: r.msg_id,
      msg_type: r.msg_type,
      payload_json: r.payload_json,
      source_id: r.source_id,
      created_at_ms: r.created_at_ms,
    }));
    return { events, pruned_through: state.pruned_through, last_seq: state.last_seq };
  }

  /**
   * Retention. Runs in chunks of at most `pruneChunkRows` rows per transaction, yielding to the
   * event loop between them: once retention is reached, each run deletes everything that expired
   * since the previous one (millions of rows under load), which in one transaction stalled the
   * loop for seconds. Per account the oldest rows go first and each chunk raises pruned_through
   * to exactly what it deleted, so "seq <= pruned_through is gone" holds at every commit.
   */
  async pruneEvents(olderThanMs: number): Promise<number> {
    this.check();
    this.stream.materialize();
    const s = this.s;
    const chunk = this.pruneChunkRows;
    const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
    const pruneSome = this.db.transaction((accountId: string, through: number): number => {
      const end = (s.pruneChunkEnd.get(accountId, through, chunk - 1) as number | undefined) ?? through;
      s.setPrunedThrough.run(end, accountId);
      return s.deleteAccountEventsThrough.run(accountId, end).changes;
    });
    let removed = 0;
    for (const { account_id, max_seq } of s.pruneMaxSeq.all(olderThanMs) as { account_id: string; max_seq: number }[]) {
      for (;;) {
        if (!this.ready) return removed; // closed meanwhile: the next start prunes the rest
        const n = pruneSome.immediate(account_id, max_seq);
        removed += n;
        if (n < chunk) break;
        await yieldToLoop();
      }
    }
    // Succeeded deliveries leave the delivery log with their events; pending/failed ones stay (and keep their event).
    for (const statement of [s.pruneSucceededDeliveries, s.pruneEvents]) {
      for (;;) {
        if (!this.ready) return removed;
        if (statement.run(olderThanMs, chunk).changes < chunk) break;
        await yieldToLoop();
      }
    }
    return removed;
  }

  // ---------------------------------------------------------------- webhooks

  async createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint> {
    this.check();
    const webhook = newWebhookEndpoint(accountId, input);
    const now = webhook.created_at;
    try {
      this.dropCaches();
      this.s.insertWebhook.run(webhook.webhook_id, accountId, webhook.url, webhook.secret, webhook.description, now, now);
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new StoreValidationError(`Unknown account id: ${accountId}`);
      throw err;
    }
    return webhook;
  }

  async listWebhooks(accountId: string): Promise<WebhookEndpoint[]> {
    this.check();
    return (this.s.listWebhooks.all(accountId) as WebhookRow[]).map(toWebhook);
  }

  async getWebhook(webhookId: string): Promise<WebhookEndpoint | null> {
    this.check();
    const row = this.s.getWebhook.get(webhookId) as WebhookRow | undefined;
    return row ? toWebhook(row) : null;
  }

  async updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null> {
    this.check();
    const row = this.s.getWebhook.get(webhookId) as WebhookRow | undefined;
    if (!row) return null;
    const cur = toWebhook(row);
    const next = applyWebhookPatch(cur, patch);
    this.dropCaches();
    this.s.updateWebhook.run(
      next.url,
      next.secret,
      next.previous_secret,
      next.previous_secret_expires_at,
      next.enabled ? 1 : 0,
      next.disabled_reason,
      next.description,
      next.failing_since,
      next.updated_at,
      webhookId,
    );
    return next;
  }

  async deleteWebhook(webhookId: string): Promise<boolean> {
    this.check();
    this.dropCaches();
    return this.s.deleteWebhook.run(webhookId).changes > 0;
  }

  // ---------------------------------------------------------------- deliveries (admin)

  async listDeliveries(filter: {
    account_id?: string;
    webhook_id?: string;
    status?: DeliveryStatus;
    since?: string;
    until?: string;
    limit?: number;
  }): Promise<Delivery[]> {
    this.check();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.account_id !== undefined) (where.push('account_id = ?'), args.push(filter.account_id));
    if (filter.webhook_id !== undefined) (where.push('webhook_id = ?'), args.push(filter.webhook_id));
    if (filter.status !== undefined) (where.push('status = ?'), args.push(filter.status));
    const since = isoToMs(filter.since, 'since');
    const until = isoToMs(filter.until, 'until');
    if (since !== null) (where.push('created_at >= ?'), args.push(since));
    if (until !== null) (where.push('created_at <= ?'), args.push(until));
    const sql = `SELECT * FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    args.push(Math.max(1, Math.floor(filter.limit ?? 100)));
    return (this.cached(sql).all(...args) as DeliveryRow[]).map(toDelivery);
  }

  async getDelivery(deliveryId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] } | null> {
    this.check();
    const row = this.s.getDelivery.get(deliveryId) as DeliveryRow | undefined;
    if (!row) return null;
    const attempts = this.s.attemptsOf.all(deliveryId) as DeliveryAttempt[];
    return { delivery: toDelivery(row), attempts };
  }

  private cached(sql: string): Stmt {
    let st = this.dynamic.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.dynamic.set(sql, st);
    }
    return st;
  }

  // ---------------------------------------------------------------- deliveries (dispatcher)

  async claimDueDeliveries(opts: { now: Date; limit: number; leaseMs: number; owner: string; perEndpointLimit: number }): Promise<ClaimedDelivery[]> {
    this.check();
    const s = this.s;
    const limit = Math.floor(opts.limit);
    const perEndpoint = Math.floor(opts.perEndpointLimit);
    if (limit <= 0 || perEndpoint <= 0) return [];
    const now = opts.now.getTime();
    const leaseUntil = now + Math.max(0, opts.leaseMs);
    const tx = this.db.transaction((): ClaimedDelivery[] => {
      const inFlight = new Map<string, number>();
      for (const r of s.liveLeases.all(now) as { webhook_id: string; n: number }[]) inFlight.set(r.webhook_id, r.n);

      type Due = { delivery_id: string; webhook_id: string; next_attempt_at: number; seq: number };
      const room = (webhookId: string, taken: Map<string, number>) => perEndpoint - (inFlight.get(webhookId) ?? 0) - (taken.get(webhookId) ?? 0);

      // 1. The common case: walk due rows oldest first, skipping endpoints at their limit, within a
      //    row budget. Ending because the limit filled or the due rows ran out gives the exact answer.
      let picked: Due[] | null = [];
      const taken = new Map<string, number>();
      let cur = { at: -1e15, seq: -1, id: '' };
      let scanned = 0;
      const budget = Math.max(CLAIM_SCAN_BUDGET, limit);
      for (;;) {
        const rows = s.dueChunk.all(now, cur.at, cur.at, cur.at, cur.seq, cur.seq, cur.id, now, CLAIM_SCAN_CHUNK) as Due[];
        for (const r of rows) {
          cur = { at: r.next_attempt_at, seq: r.seq, id: r.delivery_id };
          if (room(r.webhook_id, taken) <= 0) continue;
          taken.set(r.webhook_id, (taken.get(r.webhook_id) ?? 0) + 1);
          picked.push(r);
          if (picked.length >= limit) break;
        }
        scanned += rows.length;
        if (picked.length >= limit || rows.length < CLAIM_SCAN_CHUNK) break;
        if (scanned >= budget) {
          picked = null; // a backlog of endpoints at their limit: do not read it row by row
          break;
        }
      }

      // 2. Many due rows belong to endpoints at their limit. Each endpoint can only contribute its free
      //    slots, in its own (next_attempt_at, seq) order (seq is unique within an endpoint); merging
      //    those candidates and keeping the first `limit` picks exactly what the scan above would,
      //    reading one index probe per endpoint with due work instead of every blocked row.
      if (picked === null) {
        picked = [];
        for (const { webhook_id } of s.dueEndpoints.all(now) as { webhook_id: string }[]) {
          const free = Math.min(limit, room(webhook_id, new Map()));
          if (free <= 0) continue;
          for (const r of s.dueOfEndpoint.all(webhook_id, now, now, free) as Due[]) picked.push(r);
        }
        picked.sort((x, y) => x.next_attempt_at - y.next_attempt_at || x.seq - y.seq || (x.delivery_id < y.delivery_id ? -1 : x.delivery_id > y.delivery_id ? 1 : 0));
        if (picked.length > limit) picked.length = limit;
      }

      const endpoints = new Map<string, WebhookEndpoint>();
      const out: ClaimedDelivery[] = [];
      for (const { delivery_id: id } of picked) {
        const d = s.claimedDetail.get(id) as
          | (DeliveryRow & { a_partner_id: string | null; e_event_id: number | null; e_payload_json: string; e_source_id: string | null; e_created_at_ms: number })
          | undefined;
        if (!d) continue;
        if (d.e_event_id === null) {
          // Cannot happen through this store's own pruning; guard so a lost event never blocks the queue.
          s.failOrphan.run('event no longer stored', now, id);
          continue;
        }
        s.lease.run(opts.owner, leaseUntil, id);
        let endpoint = endpoints.get(d.webhook_id);
        if (!endpoint) {
          endpoint = toWebhook(s.getWebhook.get(d.webhook_id) as WebhookRow);
          endpoints.set(d.webhook_id, endpoint);
        }
        out.push({
          delivery: toDelivery(d),
          endpoint: { ...endpoint },
          account: { account_id: d.account_id, partner_id: d.a_partner_id },
          event: {
            account_id: d.account_id,
            seq: d.seq,
            msg_id: d.msg_id,
            msg_type: d.msg_type,
            payload_json: d.e_payload_json,
            source_id: d.e_source_id,
            created_at_ms: d.e_created_at_ms,
          },
        });
      }
      return out;
    });
    return tx.immediate();
  }

  async recordAttempt(
    deliveryId: string,
    owner: string,
    attempt: Omit<DeliveryAttempt, 'attempt_id' | 'delivery_id'>,
    resolution: AttemptResolution,
  ): Promise<boolean> {
    const [recorded] = await this.recordAttempts([{ deliveryId, owner, attempt, resolution }]);
    return recorded;
  }

  async recordAttempts(items: RecordAttemptItem[]): Promise<boolean[]> {
    this.check();
    if (items.length === 0) return [];
    const s = this.s;
    // Validate everything first: a bad item rejects the call before anything is written.
    const prepared = items.map((it) => {
      const { resolution, attempt } = it;
      let nextAt: number | null = null;
      if (resolution.status === 'pending') {
        nextAt = Date.parse(resolution.next_attempt_at);
        if (!Number.isFinite(nextAt)) throw new StoreValidationError(`next_attempt_at must be an ISO-8601 date-time, got "${resolution.next_attempt_at}"`);
      } else if (resolution.status !== 'succeeded' && resolution.status !== 'failed') {
        throw new StoreValidationError(`Invalid resolution status: ${String((resolution as { status: unknown }).status)}`);
      }
      const attemptedAt = normalizeIso(attempt.attempted_at, 'attempted_at') ?? new Date().toISOString();
      return { ...it, nextAt, attemptedAt };
    });
    const tx = this.db.transaction((): boolean[] => {
      const completedAt = Date.now();
      return prepared.map(({ deliveryId, owner, attempt, resolution, nextAt, attemptedAt }) => {
        // Per item, exactly recordAttempt: only the current lease owner records (this also makes a
        // delivery listed twice in one batch record once).
        const cur = s.leaseOf.get(deliveryId) as { lease_owner: string | null; attempt_count: number } | undefined;
        if (!cur || cur.lease_owner !== owner) return false;
        s.insertAttempt.run(uuidv7(), deliveryId, cur.attempt_count + 1, attemptedAt, attempt.status_code, attempt.latency_ms, attempt.error, attempt.outcome);
        s.resolveDelivery.run(resolution.status, nextAt, attempt.status_code, attempt.error, resolution.status === 'pending' ? null : completedAt, deliveryId);
        return true;
      });
    });
    return tx.immediate();
  }

  async retryDelivery(deliveryId: string, now: Date = new Date()): Promise<Delivery | null> {
    this.check();
    // A live lease is kept: an attempt in flight finishes and records normally, never two at once.
    if (this.s.retryDelivery.run(now.getTime(), deliveryId).changes === 0) return null;
    return toDelivery(this.s.getDelivery.get(deliveryId) as DeliveryRow);
  }

  async retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now: Date = new Date()): Promise<number> {
    this.check();
    const since = isoToMs(filter.since, 'since') ?? Number.MIN_SAFE_INTEGER;
    const until = isoToMs(filter.until, 'until') ?? Number.MAX_SAFE_INTEGER;
    return this.s.retryFailed.run(now.getTime(), filter.account_id, since, until).changes;
  }

  async nextDueAt(): Promise<Date | null> {
    this.check();
    const row = this.s.nextDue.get(Date.now()) as { next_attempt_at: number } | undefined;
    return row ? new Date(row.next_attempt_at) : null;
  }

  async deliveryCounts(): Promise<{ pending: number; failed: number }> {
    this.check();
    const out = { pending: 0, failed: 0 };
    for (const r of this.s.countByStatus.all() as { status: 'pending' | 'failed'; n: number }[]) out[r.status] = r.n;
    return out;
  }
}
