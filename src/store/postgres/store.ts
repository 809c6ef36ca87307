/**
 * PostgreSQL implementation of the Store seam: the shared store of a multi-node deployment
 * (SPEC §7). Semantics mirror the SQLite store exactly (same token format and hashing via
 * ../keys.ts, same error classes, same seq / idempotency / delivery / lease behaviour, run
 * against the same contract suite); what differs is how they hold with several nodes writing:
 *
 * - Migrations: under a session advisory lock, so nodes starting at once on an empty
 *   database apply each migration once (the others wait, then see the version).
 * - Per-account seq: the recipient account rows are locked (`SELECT … ORDER BY account_id FOR
 *   UPDATE`, a fixed order so two batches never deadlock on each other) and `last_seq` is bumped
 *   in the same transaction as the event rows. The row lock is held until COMMIT, so seq follows
 *   the order in which publishes were accepted for that account, across nodes.
 * - Idempotency: `events.msg_id` is UNIQUE. A msg_id already stored is a duplicate (pass 1); two
 *   nodes inserting the same new msg_id at once are resolved by `ON CONFLICT DO NOTHING`: the
 *   loser waits for the winner's commit, gets no row back and answers "duplicate" with the
 *   winner's recipients, before any seq is consumed.
 * - Throughput: a batch costs a fixed number of round trips whatever its size (multi-row
 *   INSERT … SELECT FROM unnest(…) for events, account_events and deliveries).
 * - Deliveries: claims are serialized by a transaction advisory lock (exact per-endpoint
 *   in-flight limits across nodes) and take rows with `FOR UPDATE SKIP LOCKED` (never wait on a
 *   row an attempt is being recorded on). A lease whose holder died expires and the delivery is
 *   claimable again.
 * - Deadlocks / serialization failures are retried (whole transaction) a few times.
 *
 * BIGINT columns are parsed to JS numbers (seq and epoch ms stay far below 2^53).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
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
  type ReadEventsResult,
  type RecordAttemptItem,
  type Store,
  type WebhookEndpoint,
  type WebhookPatch,
} from '../types.js';
import { uuidv7 } from '../ids.js';
import { type ApiKeyRow, type DeliveryRow, type WebhookRow, iso, isoOrNull, isoToMs, normalizeIso, toApiKey, toDelivery, toWebhook, validatePartnerId, validateRooms, applyWebhookPatch, newWebhookEndpoint } from '../common.js';
import { CLAIM_LOCK_KEY, LATEST_SCHEMA_VERSION, MIGRATIONS, MIGRATION_LOCK_KEY, PRUNE_LOCK_KEY } from './schema.js';

const LAST_USED_RESOLUTION_MS = 60_000;
const DEFAULT_LIST_LIMIT = 1000;
const MAX_TX_RETRIES = 5;

// BIGINT (20) and NUMERIC-free counts → JS numbers, without touching pg's global parsers.
const INT8_OID = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: string): any {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
};

type Queryable = pg.Pool | pg.PoolClient;

interface AccountRow {
  account_id: string;
  name: string | null;
  partner_id: string | null;
  rooms: string[];
  created_at: string;
}

const ACCOUNT_COLS = 'account_id, name, partner_id, rooms, created_at';
const KEY_COLS = 'key_id, account_id, name, token_prefix, status, expires_at, created_at, last_used_at';
const WEBHOOK_COLS =
  'webhook_id, account_id, url, secret, previous_secret, previous_secret_expires_at, enabled, disabled_reason, description, failing_since, created_at, updated_at';
const DELIVERY_COLS =
  'delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, lease_owner, lease_until, last_status_code, last_error, created_at, completed_at';

function toAccount(r: AccountRow): Account {
  return { account_id: r.account_id, name: r.name, partner_id: r.partner_id, rooms: [...r.rooms] as EventType[], created_at: r.created_at };
}

const pgCode = (err: unknown): string | undefined => (err as { code?: string })?.code;
const isUniqueViolation = (err: unknown, constraint: string): boolean =>
  pgCode(err) === '23505' && String((err as { constraint?: string }).constraint ?? '').includes(constraint);
const isForeignKeyViolation = (err: unknown): boolean => pgCode(err) === '23503';
/** Deadlock detected / serialization failure: the whole transaction may simply be retried. */
const isRetryable = (err: unknown): boolean => pgCode(err) === '40P01' || pgCode(err) === '40001';

interface PlannedEvent {
  event: NewEvent;
  duplicateOf: { msg_id: string; recipients: number } | null;
  recipients: string[];
}

export interface PostgresStoreOptions {
  connectionString: string;
  /** Pool size per node (default 10). */
  max?: number;
  /** Passed to pg as `application_name`. */
  applicationName?: string;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private ready = false;
  private closed = false;

  constructor(opts: PostgresStoreOptions | string) {
    const o = typeof opts === 'string' ? { connectionString: opts } : opts;
    this.pool = new pg.Pool({
      connectionString: o.connectionString,
      max: o.max ?? 10,
      application_name: o.applicationName ?? 'tpx-realtime',
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      types: typeParsers,
    });
    // An idle client losing its connection (database restart) must not crash the process;
    // the pool discards it and the next query opens a fresh one.
    this.pool.on('error', () => {});
  }

  // ---------------------------------------------------------------- lifecycle

  async init(): Promise<void> {
    if (this.ready) return;
    const client = await this.pool.connect();
    try {
      // Session lock: concurrent starters queue here; the first migrates, the others find it done.
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        await client.query('CREATE TABLE IF NOT EXISTS settings (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)');
        const { rows } = await client.query<{ value: string }>("SELECT value FROM settings WHERE key = 'schema_version'");
        const current = rows.length ? Number(rows[0].value) : 0;
        if (current > LATEST_SCHEMA_VERSION) {
          throw new Error(`Database schema version ${current} is newer than this build supports (${LATEST_SCHEMA_VERSION}); upgrade tpx-realtime`);
        }
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query(
              "INSERT INTO settings (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              [String(m.version)],
            );
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
      }
    } finally {
      client.release();
    }
    this.ready = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    await this.pool.end();
  }

  async ping(): Promise<void> {
    this.check();
    await this.pool.query('SELECT 1');
  }

  private check(): void {
    if (!this.ready) throw new Error(this.closed ? 'Store is closed' : 'Store not initialized: call init() first');
  }

  /** Run fn in one transaction; deadlocks and serialization failures retry the whole thing. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        if (attempt < MAX_TX_RETRIES && isRetryable(err)) {
          await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
          continue;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  private async one<T extends pg.QueryResultRow>(q: Queryable, sql: string, args: unknown[] = []): Promise<T | undefined> {
    return (await q.query<T>(sql, args)).rows[0];
  }

  // ---------------------------------------------------------------- settings

  async getSetting(key: string): Promise<string | null> {
    this.check();
    const row = await this.one<{ value: string }>(this.pool, 'SELECT value FROM settings WHERE key = $1', [key]);
    return row ? row.value : null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    this.check();
    const row = await this.one<{ value: string }>(
      this.pool,
      `WITH ins AS (INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value)
       SELECT value FROM ins UNION ALL SELECT value FROM settings WHERE key = $1 LIMIT 1`,
      [key, value],
    );
    return row!.value;
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
      await this.pool.query('INSERT INTO accounts (account_id, name, partner_id, rooms, created_at) VALUES ($1, $2, $3, $4, $5)', [
        account.account_id,
        account.name,
        account.partner_id,
        rooms,
        account.created_at,
      ]);
    } catch (err) {
      if (isUniqueViolation(err, 'partner_id')) throw new StoreConflictError(`partner_id "${partnerId}" is already used by another account`);
      throw err;
    }
    return account;
  }

  async getAccount(accountId: string): Promise<Account | null> {
    this.check();
    const row = await this.one<AccountRow>(this.pool, `SELECT ${ACCOUNT_COLS} FROM accounts WHERE account_id = $1`, [accountId]);
    return row ? toAccount(row) : null;
  }

  async listAccounts(opts: { limit?: number; after?: string } = {}): Promise<Account[]> {
    this.check();
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_LIST_LIMIT));
    const { rows } = opts.after
      ? await this.pool.query<AccountRow>(
          `SELECT ${ACCOUNT_COLS} FROM accounts
           WHERE row_no > (SELECT row_no FROM accounts WHERE account_id = $1) ORDER BY row_no LIMIT $2`,
          [opts.after, limit],
        )
      : await this.pool.query<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts ORDER BY row_no LIMIT $1`, [limit]);
    return rows.map(toAccount);
  }

  async updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null> {
    this.check();
    const partnerId = patch.partner_id !== undefined ? validatePartnerId(patch.partner_id) : undefined;
    const rooms = patch.rooms !== undefined ? validateRooms(patch.rooms) : undefined;
    try {
      const row = await this.one<AccountRow>(
        this.pool,
        `UPDATE accounts SET
           name = CASE WHEN $2 THEN $3 ELSE name END,
           partner_id = CASE WHEN $4 THEN $5 ELSE partner_id END,
           rooms = COALESCE($6::text[], rooms)
         WHERE account_id = $1 RETURNING ${ACCOUNT_COLS}`,
        [accountId, patch.name !== undefined, patch.name ?? null, partnerId !== undefined, partnerId ?? null, rooms ?? null],
      );
      return row ? toAccount(row) : null;
    } catch (err) {
      if (isUniqueViolation(err, 'partner_id')) throw new StoreConflictError(`partner_id "${partnerId}" is already used by another account`);
      throw err;
    }
  }

  async deleteAccount(accountId: string): Promise<boolean> {
    this.check();
    // FK cascades remove keys, webhooks (→ deliveries → attempts) and the account's stream.
    return ((await this.pool.query('DELETE FROM accounts WHERE account_id = $1', [accountId])).rowCount ?? 0) > 0;
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
      await this.pool.query(
        `INSERT INTO api_keys (key_id, account_id, name, token_hash, token_prefix, status, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)`,
        [key.key_id, accountId, key.name, hashToken(token), key.token_prefix, expiresAt, key.created_at],
      );
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new StoreValidationError(`Unknown account id: ${accountId}`);
      throw err;
    }
    return { key, token };
  }

  async listApiKeys(accountId: string): Promise<ApiKey[]> {
    this.check();
    const { rows } = await this.pool.query<ApiKeyRow>(`SELECT ${KEY_COLS} FROM api_keys WHERE account_id = $1 ORDER BY row_no`, [accountId]);
    return rows.map(toApiKey);
  }

  async getApiKey(keyId: string): Promise<ApiKey | null> {
    this.check();
    const row = await this.one<ApiKeyRow>(this.pool, `SELECT ${KEY_COLS} FROM api_keys WHERE key_id = $1`, [keyId]);
    return row ? toApiKey(row) : null;
  }

  async setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null> {
    this.check();
    if (status !== 'active' && status !== 'inactive') throw new StoreValidationError(`Invalid key status: ${String(status)}`);
    const row = await this.one<ApiKeyRow>(this.pool, `UPDATE api_keys SET status = $2 WHERE key_id = $1 RETURNING ${KEY_COLS}`, [keyId, status]);
    return row ? toApiKey(row) : null;
  }

  async deleteApiKey(keyId: string): Promise<ApiKey | null> {
    this.check();
    const row = await this.one<ApiKeyRow>(this.pool, `DELETE FROM api_keys WHERE key_id = $1 RETURNING ${KEY_COLS}`, [keyId]);
    return row ? toApiKey(row) : null;
  }

  async lookupToken(token: string, now: Date = new Date()): Promise<KeyLookup> {
    this.check();
    if (!isWellFormedToken(token)) return { ok: false, reason: 'invalid' };
    const hash = hashToken(token);
    const row = await this.one<ApiKeyRow & { token_hash: Buffer; a_name: string | null; a_partner_id: string | null; a_rooms: string[]; a_created_at: string }>(
      this.pool,
      `SELECT k.key_id, k.account_id, k.name, k.token_hash, k.token_prefix, k.status, k.expires_at, k.created_at, k.last_used_at,
              a.name AS a_name, a.partner_id AS a_partner_id, a.rooms AS a_rooms, a.created_at AS a_created_at
       FROM api_keys k JOIN accounts a ON a.account_id = k.account_id WHERE k.token_hash = $1`,
      [hash],
    );
    if (!row || !hashesEqual(row.token_hash, hash)) return { ok: false, reason: 'invalid' };
    if (row.status !== 'active') return { ok: false, reason: 'inactive' };
    if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) return { ok: false, reason: 'expired' };

    const nowMs = Date.now();
    let lastUsed = row.last_used_at;
    if (lastUsed === null || nowMs - Date.parse(lastUsed) >= LAST_USED_RESOLUTION_MS) {
      lastUsed = iso(nowMs);
      try {
        await this.pool.query('UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2', [lastUsed, row.key_id]);
      } catch {
        // Bookkeeping only: a busy database must not fail authentication.
      }
    }
    const key = toApiKey({ ...row, last_used_at: lastUsed });
    const account = toAccount({ account_id: row.account_id, name: row.a_name, partner_id: row.a_partner_id, rooms: row.a_rooms, created_at: row.a_created_at });
    return { ok: true, key, account };
  }

  // ---------------------------------------------------------------- event log

  async appendEvent(event: NewEvent): Promise<AppendResult> {
    this.check();
    return (await this.tx((c) => this.appendInTx(c, [event])))[0];
  }

  async appendEvents(events: NewEvent[]): Promise<AppendResult[]> {
    this.check();
    if (events.length === 0) return [];
    return this.tx((c) => this.appendInTx(c, events));
  }

  /**
   * One transaction, a fixed number of round trips:
   *   1. stored msg_ids (duplicates) and the rooms of the addressed accounts → plan, or throw
   *   2. INSERT events … ON CONFLICT DO NOTHING (a msg_id another node committed meanwhile → duplicate)
   *   3. lock recipient accounts in account_id order, bump last_seq
   *   4. INSERT account_events, read enabled webhooks, INSERT deliveries
   */
  private async appendInTx(c: pg.PoolClient, events: NewEvent[]): Promise<AppendResult[]> {
    for (const event of events) {
      if (!isEventType(event.msg_type)) throw new StoreValidationError(`Unknown msg_type: ${String(event.msg_type)}`);
    }
    // ---- pass 1: idempotency and targets (nothing written yet)
    const msgIds = [...new Set(events.map((e) => e.msg_id))];
    const stored = new Map<string, number>();
    for (const r of (await c.query<{ msg_id: string; recipients: number }>('SELECT msg_id, recipients FROM events WHERE msg_id = ANY($1::text[])', [msgIds])).rows) {
      stored.set(r.msg_id, r.recipients);
    }
    const rooms = new Map<string, ReadonlySet<string>>();
    let broadcastAll: string[] | null = null;
    const needsBroadcast = events.some((e) => e.target === 'broadcast' && !stored.has(e.msg_id));
    if (needsBroadcast) {
      const { rows } = await c.query<{ account_id: string; rooms: string[] }>('SELECT account_id, rooms FROM accounts ORDER BY row_no');
      broadcastAll = rows.map((r) => (rooms.set(r.account_id, new Set(r.rooms)), r.account_id));
    }
    const addressed = new Set<string>();
    for (const e of events) if (e.target !== 'broadcast' && !stored.has(e.msg_id)) for (const id of e.target) if (!rooms.has(id)) addressed.add(id);
    if (addressed.size > 0) {
      const { rows } = await c.query<{ account_id: string; rooms: string[] }>('SELECT account_id, rooms FROM accounts WHERE account_id = ANY($1::text[])', [
        [...addressed],
      ]);
      for (const r of rows) rooms.set(r.account_id, new Set(r.rooms));
    }

    const seen = new Map<string, PlannedEvent>();
    const plans: PlannedEvent[] = [];
    const unknown = new Set<string>();
    for (const event of events) {
      const earlier = seen.get(event.msg_id);
      if (earlier) {
        plans.push({ event, duplicateOf: { msg_id: event.msg_id, recipients: earlier.duplicateOf?.recipients ?? earlier.recipients.length }, recipients: [] });
        continue;
      }
      const storedRecipients = stored.get(event.msg_id);
      if (storedRecipients !== undefined) {
        const plan = { event, duplicateOf: { msg_id: event.msg_id, recipients: storedRecipients }, recipients: [] };
        seen.set(event.msg_id, plan);
        plans.push(plan);
        continue;
      }
      let recipients: string[];
      if (event.target === 'broadcast') {
        recipients = broadcastAll!.filter((id) => rooms.get(id)!.has(event.msg_type));
      } else {
        recipients = [];
        for (const id of new Set(event.target)) {
          const r = rooms.get(id);
          if (r === undefined) unknown.add(id);
          else if (r.has(event.msg_type)) recipients.push(id);
        }
      }
      const plan: PlannedEvent = { event, duplicateOf: null, recipients };
      seen.set(event.msg_id, plan);
      plans.push(plan);
    }
    if (unknown.size > 0) throw new UnknownAccountsError([...unknown]);

    // ---- pass 2: event rows (idempotency race resolved here, before any seq is consumed)
    const fresh = plans.filter((p) => p.duplicateOf === null);
    const eventIds = new Map<string, number>();
    if (fresh.length > 0) {
      const { rows } = await c.query<{ event_id: number; msg_id: string }>(
        `INSERT INTO events (msg_id, msg_type, payload_json, source_id, created_at_ms, recipients)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[])
         ON CONFLICT (msg_id) DO NOTHING RETURNING event_id, msg_id`,
        [
          fresh.map((p) => p.event.msg_id),
          fresh.map((p) => p.event.msg_type),
          fresh.map((p) => p.event.payload_json),
          fresh.map((p) => p.event.source_id),
          fresh.map((p) => p.event.created_at_ms),
          fresh.map((p) => p.recipients.length),
        ],
      );
      for (const r of rows) eventIds.set(r.msg_id, r.event_id);
      const raced = fresh.filter((p) => !eventIds.has(p.event.msg_id));
      if (raced.length > 0) {
        // Another transaction committed these msg_ids after our pass 1: they are duplicates.
        const won = await c.query<{ msg_id: string; recipients: number }>('SELECT msg_id, recipients FROM events WHERE msg_id = ANY($1::text[])', [
          raced.map((p) => p.event.msg_id),
        ]);
        const byId = new Map(won.rows.map((r) => [r.msg_id, r.recipients]));
        // Every occurrence of a raced msg_id in this batch answers the winner's result.
        for (const p of plans) {
          const winner = byId.get(p.event.msg_id);
          if (winner !== undefined) p.duplicateOf = { msg_id: p.event.msg_id, recipients: winner };
        }
      }
    }

    // ---- pass 3: per-account seq under row locks taken in a fixed order
    const live = plans.filter((p) => p.duplicateOf === null);
    const perAccount = new Map<string, number>();
    for (const p of live) for (const id of p.recipients) perAccount.set(id, (perAccount.get(id) ?? 0) + 1);
    const nextSeq = new Map<string, number>();
    if (perAccount.size > 0) {
      const ids = [...perAccount.keys()];
      const locked = await c.query<{ account_id: string; last_seq: number }>(
        'SELECT account_id, last_seq FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE',
        [ids],
      );
      if (locked.rows.length !== ids.length) {
        const found = new Set(locked.rows.map((r) => r.account_id));
        throw new UnknownAccountsError(ids.filter((id) => !found.has(id))); // deleted meanwhile
      }
      for (const r of locked.rows) nextSeq.set(r.account_id, r.last_seq + 1);
      await c.query('UPDATE accounts a SET last_seq = a.last_seq + v.n FROM unnest($1::text[], $2::bigint[]) AS v(id, n) WHERE a.account_id = v.id', [
        ids,
        ids.map((id) => perAccount.get(id)!),
      ]);
    }

    // ---- pass 4: stream rows and deliveries
    const aeAccount: string[] = [];
    const aeSeq: number[] = [];
    const aeEvent: number[] = [];
    const aeCreated: number[] = [];
    const copiesOf = new Map<PlannedEvent, AccountEvent[]>();
    for (const p of live) {
      const eventId = eventIds.get(p.event.msg_id)!;
      const copies: AccountEvent[] = [];
      for (const accountId of p.recipients) {
        const seq = nextSeq.get(accountId)!;
        nextSeq.set(accountId, seq + 1);
        aeAccount.push(accountId);
        aeSeq.push(seq);
        aeEvent.push(eventId);
        aeCreated.push(p.event.created_at_ms);
        copies.push({
          account_id: accountId,
          seq,
          msg_id: p.event.msg_id,
          msg_type: p.event.msg_type,
          payload_json: p.event.payload_json,
          source_id: p.event.source_id,
          created_at_ms: p.event.created_at_ms,
        });
      }
      copiesOf.set(p, copies);
    }
    const deliveriesOf = new Map<PlannedEvent, number>();
    if (aeAccount.length > 0) {
      await c.query(
        'INSERT INTO account_events (account_id, seq, event_id, created_at_ms) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])',
        [aeAccount, aeSeq, aeEvent, aeCreated],
      );
      const hooks = await c.query<{ webhook_id: string; account_id: string }>(
        'SELECT webhook_id, account_id FROM webhooks WHERE account_id = ANY($1::text[]) AND enabled ORDER BY row_no',
        [[...perAccount.keys()]],
      );
      const hooksOf = new Map<string, string[]>();
      for (const h of hooks.rows) {
        const list = hooksOf.get(h.account_id);
        if (list) list.push(h.webhook_id);
        else hooksOf.set(h.account_id, [h.webhook_id]);
      }
      if (hooks.rows.length > 0) {
        const d = { id: [] as string[], webhook: [] as string[], account: [] as string[], event: [] as number[], msg: [] as string[], type: [] as string[], seq: [] as number[], at: [] as number[] };
        for (const p of live) {
          let n = 0;
          const eventId = eventIds.get(p.event.msg_id)!;
          for (const copy of copiesOf.get(p)!) {
            for (const webhookId of hooksOf.get(copy.account_id) ?? []) {
              d.id.push(uuidv7());
              d.webhook.push(webhookId);
              d.account.push(copy.account_id);
              d.event.push(eventId);
              d.msg.push(p.event.msg_id);
              d.type.push(p.event.msg_type);
              d.seq.push(copy.seq);
              d.at.push(p.event.created_at_ms);
              n++;
            }
          }
          deliveriesOf.set(p, n);
        }
        if (d.id.length > 0) {
          await c.query(
            `INSERT INTO deliveries (delivery_id, webhook_id, account_id, event_id, msg_id, msg_type, seq, status, attempt_count, next_attempt_at, created_at)
             SELECT v.id, v.webhook, v.account, v.event, v.msg, v.type, v.seq, 'pending', 0, v.at, v.at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
                  AS v(id, webhook, account, event, msg, type, seq, at)`,
            [d.id, d.webhook, d.account, d.event, d.msg, d.type, d.seq, d.at],
          );
        }
      }
    }

    return plans.map((p) =>
      p.duplicateOf
        ? { msg_id: p.event.msg_id, recipients: p.duplicateOf.recipients, duplicate: true, events: [], deliveries: 0 }
        : { msg_id: p.event.msg_id, recipients: p.recipients.length, duplicate: false, events: copiesOf.get(p)!, deliveries: deliveriesOf.get(p) ?? 0 },
    );
  }

  async readEvents(query: ReadEventsQuery): Promise<ReadEventsResult> {
    this.check();
    const limit = Math.max(0, Math.floor(query.limit));
    const after = Math.max(0, Math.floor(Math.min(query.after_seq, Number.MAX_SAFE_INTEGER)));
    const noRows = limit === 0 || (query.types !== null && query.types.size === 0);
    // One statement, one snapshot: the stream page and the account's counters agree.
    const { rows } = await this.pool.query<{
      last_seq: number;
      pruned_through: number;
      seq: number | null;
      created_at_ms: number;
      msg_id: string;
      msg_type: EventType;
      payload_json: string;
      source_id: string | null;
    }>(
      `SELECT a.last_seq, a.pruned_through, x.seq, x.created_at_ms, x.msg_id, x.msg_type, x.payload_json, x.source_id
       FROM accounts a
       LEFT JOIN LATERAL (
         SELECT ae.seq, ae.created_at_ms, e.msg_id, e.msg_type, e.payload_json, e.source_id
         FROM account_events ae JOIN events e ON e.event_id = ae.event_id
         WHERE ae.account_id = a.account_id AND ae.seq > $2 AND ($3::text[] IS NULL OR e.msg_type = ANY($3::text[]))
         ORDER BY ae.seq LIMIT $4
       ) x ON NOT $5
       WHERE a.account_id = $1
       ORDER BY x.seq`,
      [query.account_id, after, query.types === null ? null : [...query.types], limit, noRows],
    );
    if (rows.length === 0) return { events: [], pruned_through: 0, last_seq: 0 };
    const events: AccountEvent[] = [];
    for (const r of rows) {
      if (r.seq === null) continue;
      events.push({
        account_id: query.account_id,
        seq: r.seq,
        msg_id: r.msg_id,
        msg_type: r.msg_type,
        payload_json: r.payload_json,
        source_id: r.source_id,
        created_at_ms: r.created_at_ms,
      });
    }
    return { events, pruned_through: rows[0].pruned_through, last_seq: rows[0].last_seq };
  }

  async pruneEvents(olderThanMs: number): Promise<number> {
    this.check();
    return this.tx(async (c) => {
      // One pruner at a time across nodes; the others have nothing to add.
      const lock = await this.one<{ ok: boolean }>(c, 'SELECT pg_try_advisory_xact_lock($1) AS ok', [PRUNE_LOCK_KEY]);
      if (!lock?.ok) return 0;
      const { rows } = await c.query<{ account_id: string; max_seq: number }>(
        'SELECT account_id, MAX(seq) AS max_seq FROM account_events WHERE created_at_ms < $1 GROUP BY account_id ORDER BY account_id',
        [olderThanMs],
      );
      let removed = 0;
      if (rows.length > 0) {
        const ids = rows.map((r) => r.account_id);
        const maxes = rows.map((r) => r.max_seq);
        // Same lock order as appends (account_id), so pruning never deadlocks with publishing.
        await c.query('SELECT 1 FROM accounts WHERE account_id = ANY($1::text[]) ORDER BY account_id FOR UPDATE', [ids]);
        await c.query(
          'UPDATE accounts a SET pruned_through = GREATEST(a.pruned_through, v.m) FROM unnest($1::text[], $2::bigint[]) AS v(id, m) WHERE a.account_id = v.id',
          [ids, maxes],
        );
        const del = await c.query(
          'DELETE FROM account_events ae USING unnest($1::text[], $2::bigint[]) AS v(id, m) WHERE ae.account_id = v.id AND ae.seq <= v.m',
          [ids, maxes],
        );
        removed = del.rowCount ?? 0;
      }
      await c.query("DELETE FROM deliveries WHERE status = 'succeeded' AND created_at < $1", [olderThanMs]);
      await c.query(
        `DELETE FROM events WHERE created_at_ms < $1
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.event_id AND d.status <> 'succeeded')`,
        [olderThanMs],
      );
      return removed;
    });
  }

  // ---------------------------------------------------------------- webhooks

  async createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint> {
    this.check();
    const webhook = newWebhookEndpoint(accountId, input);
    const now = webhook.created_at;
    try {
      await this.pool.query(
        `INSERT INTO webhooks (webhook_id, account_id, url, secret, enabled, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, TRUE, $5, $6, $7)`,
        [webhook.webhook_id, accountId, webhook.url, webhook.secret, webhook.description, now, now],
      );
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new StoreValidationError(`Unknown account id: ${accountId}`);
      throw err;
    }
    return webhook;
  }

  async listWebhooks(accountId: string): Promise<WebhookEndpoint[]> {
    this.check();
    const { rows } = await this.pool.query<WebhookRow>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE account_id = $1 ORDER BY row_no`, [accountId]);
    return rows.map(toWebhook);
  }

  async getWebhook(webhookId: string): Promise<WebhookEndpoint | null> {
    this.check();
    const row = await this.one<WebhookRow>(this.pool, `SELECT ${WEBHOOK_COLS} FROM webhooks WHERE webhook_id = $1`, [webhookId]);
    return row ? toWebhook(row) : null;
  }

  async updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null> {
    this.check();
    return this.tx(async (c) => {
      const row = await this.one<WebhookRow>(c, `SELECT ${WEBHOOK_COLS} FROM webhooks WHERE webhook_id = $1 FOR UPDATE`, [webhookId]);
      if (!row) return null;
      const cur = toWebhook(row);
      const next = applyWebhookPatch(cur, patch);
      await c.query(
        `UPDATE webhooks SET url = $1, secret = $2, previous_secret = $3, previous_secret_expires_at = $4, enabled = $5,
         disabled_reason = $6, description = $7, failing_since = $8, updated_at = $9 WHERE webhook_id = $10`,
        [
          next.url,
          next.secret,
          next.previous_secret,
          next.previous_secret_expires_at,
          next.enabled,
          next.disabled_reason,
          next.description,
          next.failing_since,
          next.updated_at,
          webhookId,
        ],
      );
      return next;
    });
  }

  async deleteWebhook(webhookId: string): Promise<boolean> {
    this.check();
    return ((await this.pool.query('DELETE FROM webhooks WHERE webhook_id = $1', [webhookId])).rowCount ?? 0) > 0;
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
    const add = (cond: (n: string) => string, value: unknown) => {
      args.push(value);
      where.push(cond(`$${args.length}`));
    };
    if (filter.account_id !== undefined) add((n) => `account_id = ${n}`, filter.account_id);
    if (filter.webhook_id !== undefined) add((n) => `webhook_id = ${n}`, filter.webhook_id);
    if (filter.status !== undefined) add((n) => `status = ${n}`, filter.status);
    const since = isoToMs(filter.since, 'since');
    const until = isoToMs(filter.until, 'until');
    if (since !== null) add((n) => `created_at >= ${n}`, since);
    if (until !== null) add((n) => `created_at <= ${n}`, until);
    args.push(Math.max(1, Math.floor(filter.limit ?? 100)));
    const sql = `SELECT ${DELIVERY_COLS} FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY created_at DESC, row_no DESC LIMIT $${args.length}`;
    return (await this.pool.query<DeliveryRow>(sql, args)).rows.map(toDelivery);
  }

  async getDelivery(deliveryId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] } | null> {
    this.check();
    const row = await this.one<DeliveryRow>(this.pool, `SELECT ${DELIVERY_COLS} FROM deliveries WHERE delivery_id = $1`, [deliveryId]);
    if (!row) return null;
    const { rows } = await this.pool.query<DeliveryAttempt>(
      'SELECT attempt_id, delivery_id, attempted_at, status_code, latency_ms, error, outcome FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt_no',
      [deliveryId],
    );
    return { delivery: toDelivery(row), attempts: rows };
  }

  // ---------------------------------------------------------------- deliveries (dispatcher)

  async claimDueDeliveries(opts: { now: Date; limit: number; leaseMs: number; owner: string; perEndpointLimit: number }): Promise<ClaimedDelivery[]> {
    this.check();
    const limit = Math.floor(opts.limit);
    const perEndpoint = Math.floor(opts.perEndpointLimit);
    if (limit <= 0 || perEndpoint <= 0) return [];
    const now = opts.now.getTime();
    const leaseUntil = now + Math.max(0, opts.leaseMs);
    return this.tx(async (c) => {
      // Claims are short; serializing them makes per-endpoint in-flight counts exact across nodes.
      await c.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK_KEY]);
      // Oldest due first, seq order within an endpoint, at most perEndpoint in flight per endpoint
      // (live leases count). SKIP LOCKED: never wait on a row whose attempt is being recorded.
      const { rows: picked } = await c.query<{ delivery_id: string }>(
        `WITH inflight AS (
           SELECT webhook_id, COUNT(*) AS n FROM deliveries
           WHERE lease_owner IS NOT NULL AND lease_until > $1 GROUP BY webhook_id
         ), due AS (
           SELECT d.delivery_id, d.webhook_id, d.next_attempt_at, d.seq,
                  ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.seq, d.delivery_id) AS rn
           FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
           WHERE d.status = 'pending' AND d.next_attempt_at <= $1
             AND (d.lease_owner IS NULL OR d.lease_until <= $1) AND w.enabled
         ), chosen AS (
           SELECT due.delivery_id FROM due LEFT JOIN inflight i ON i.webhook_id = due.webhook_id
           WHERE due.rn + COALESCE(i.n, 0) <= $2
           ORDER BY due.next_attempt_at, due.seq, due.delivery_id LIMIT $3
         )
         SELECT d.delivery_id FROM deliveries d WHERE d.delivery_id IN (SELECT delivery_id FROM chosen)
           AND d.status = 'pending' AND (d.lease_owner IS NULL OR d.lease_until <= $1)
         ORDER BY d.next_attempt_at, d.seq, d.delivery_id
         FOR UPDATE SKIP LOCKED`,
        [now, perEndpoint, limit],
      );
      if (picked.length === 0) return [];
      const ids = picked.map((r) => r.delivery_id);
      const { rows } = await c.query<
        DeliveryRow & { a_partner_id: string | null; e_event_id: number | null; e_payload_json: string; e_source_id: string | null; e_created_at_ms: number } & {
          [K in keyof WebhookRow as `w_${K}`]: WebhookRow[K];
        }
      >(
        `SELECT ${DELIVERY_COLS.split(', ').map((col) => `d.${col}`).join(', ')},
                a.partner_id AS a_partner_id, e.event_id AS e_event_id, e.payload_json AS e_payload_json,
                e.source_id AS e_source_id, e.created_at_ms AS e_created_at_ms,
                ${WEBHOOK_COLS.split(', ').map((col) => `w.${col} AS w_${col}`).join(', ')}
         FROM deliveries d JOIN accounts a ON a.account_id = d.account_id JOIN webhooks w ON w.webhook_id = d.webhook_id
         LEFT JOIN events e ON e.event_id = d.event_id
         WHERE d.delivery_id = ANY($1::text[])
         ORDER BY d.next_attempt_at, d.seq, d.delivery_id`,
        [ids],
      );
      const orphans: string[] = [];
      const leased: string[] = [];
      const out: ClaimedDelivery[] = [];
      for (const d of rows) {
        if (d.e_event_id === null) {
          orphans.push(d.delivery_id);
          continue;
        }
        leased.push(d.delivery_id);
        out.push({
          delivery: toDelivery(d),
          endpoint: toWebhook({
            webhook_id: d.w_webhook_id,
            account_id: d.w_account_id,
            url: d.w_url,
            secret: d.w_secret,
            previous_secret: d.w_previous_secret,
            previous_secret_expires_at: d.w_previous_secret_expires_at,
            enabled: d.w_enabled,
            disabled_reason: d.w_disabled_reason,
            description: d.w_description,
            failing_since: d.w_failing_since,
            created_at: d.w_created_at,
            updated_at: d.w_updated_at,
          }),
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
      if (orphans.length > 0) {
        // Cannot happen through this store's own pruning; guard so a lost event never blocks the queue.
        await c.query(
          `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, last_error = 'event no longer stored', completed_at = $2
           WHERE delivery_id = ANY($1::text[])`,
          [orphans, now],
        );
      }
      if (leased.length > 0) {
        await c.query('UPDATE deliveries SET lease_owner = $2, lease_until = $3 WHERE delivery_id = ANY($1::text[])', [leased, opts.owner, leaseUntil]);
      }
      return out;
    });
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
    // Validate everything first: a bad item rejects the call before anything is written.
    const prepared = items.map((it, index) => {
      const { resolution, attempt } = it;
      let nextAt: number | null = null;
      if (resolution.status === 'pending') {
        nextAt = Date.parse(resolution.next_attempt_at);
        if (!Number.isFinite(nextAt)) throw new StoreValidationError(`next_attempt_at must be an ISO-8601 date-time, got "${resolution.next_attempt_at}"`);
      } else if (resolution.status !== 'succeeded' && resolution.status !== 'failed') {
        throw new StoreValidationError(`Invalid resolution status: ${String((resolution as { status: unknown }).status)}`);
      }
      const attemptedAt = normalizeIso(attempt.attempted_at, 'attempted_at') ?? new Date().toISOString();
      return { ...it, index, nextAt, attemptedAt };
    });
    // Row locks taken in delivery_id order so two nodes' batches never deadlock.
    const ordered = [...prepared].sort((x, y) => (x.deliveryId < y.deliveryId ? -1 : x.deliveryId > y.deliveryId ? 1 : x.index - y.index));
    return this.tx(async (c) => {
      const out = new Array<boolean>(items.length).fill(false);
      const completedAt = Date.now();
      for (const { deliveryId, owner, attempt, resolution, nextAt, attemptedAt, index } of ordered) {
        const cur = await this.one<{ lease_owner: string | null; attempt_count: number }>(
          c,
          'SELECT lease_owner, attempt_count FROM deliveries WHERE delivery_id = $1 FOR UPDATE',
          [deliveryId],
        );
        if (!cur || cur.lease_owner !== owner) continue;
        await c.query(
          `INSERT INTO delivery_attempts (attempt_id, delivery_id, attempt_no, attempted_at, status_code, latency_ms, error, outcome)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [uuidv7(), deliveryId, cur.attempt_count + 1, attemptedAt, attempt.status_code, attempt.latency_ms, attempt.error, attempt.outcome],
        );
        await c.query(
          `UPDATE deliveries SET attempt_count = attempt_count + 1, status = $1, next_attempt_at = $2, last_status_code = $3, last_error = $4,
           completed_at = $5, lease_owner = NULL, lease_until = NULL WHERE delivery_id = $6`,
          [resolution.status, nextAt, attempt.status_code, attempt.error, resolution.status === 'pending' ? null : completedAt, deliveryId],
        );
        out[index] = true;
      }
      return out;
    });
  }

  async retryDelivery(deliveryId: string, now: Date = new Date()): Promise<Delivery | null> {
    this.check();
    // A live lease is kept: an attempt in flight finishes and records normally, never two at once.
    const row = await this.one<DeliveryRow>(
      this.pool,
      `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, completed_at = NULL WHERE delivery_id = $2 RETURNING ${DELIVERY_COLS}`,
      [now.getTime(), deliveryId],
    );
    return row ? toDelivery(row) : null;
  }

  async retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now: Date = new Date()): Promise<number> {
    this.check();
    const since = isoToMs(filter.since, 'since') ?? Number.MIN_SAFE_INTEGER;
    const until = isoToMs(filter.until, 'until') ?? Number.MAX_SAFE_INTEGER;
    const res = await this.pool.query(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, completed_at = NULL
       WHERE account_id = $2 AND status = 'failed' AND created_at >= $3 AND created_at <= $4`,
      [now.getTime(), filter.account_id, since, until],
    );
    return res.rowCount ?? 0;
  }

  async nextDueAt(): Promise<Date | null> {
    this.check();
    const row = await this.one<{ next_attempt_at: number }>(
      this.pool,
      `SELECT d.next_attempt_at FROM deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id
       WHERE d.status = 'pending' AND w.enabled AND (d.lease_owner IS NULL OR d.lease_until <= $1)
       ORDER BY d.next_attempt_at LIMIT 1`,
      [Date.now()],
    );
    return row ? new Date(row.next_attempt_at) : null;
  }

  async deliveryCounts(): Promise<{ pending: number; failed: number }> {
    this.check();
    const out = { pending: 0, failed: 0 };
    const { rows } = await this.pool.query<{ status: 'pending' | 'failed'; n: number }>(
      "SELECT status, COUNT(*) AS n FROM deliveries WHERE status IN ('pending', 'failed') GROUP BY status",
    );
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}
