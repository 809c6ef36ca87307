/**
 * Accounts, API keys and token lookups on the embedded store (the AccountStore aggregate).
 *
 * Every write answers once it is on disk: in synced mode it waits for the WAL sync that covers
 * it (database.ts written(), the appends' group-commit sync), so a deactivated key stays
 * deactivated, and a deleted account deleted, after an operating-system crash (SPEC §2.5).
 * last_used_at touches are bookkeeping and are not waited for.
 */
import type { EventType } from '@tpx-realtime/protocol';
import {
  type Account,
  type AccountPatch,
  type AccountStore,
  type ApiKey,
  type ApiKeyStatus,
  type KeyLookup,
} from '../types.js';
import { applyAccountPatch, DEFAULT_ACCOUNT_PAGE, newAccount, newApiKey, rethrowConstraint, validateKeyStatus, type ConstraintErrors } from '../shared/accounts.js';
import { KeyTouches } from '../shared/key-touches.js';
import { ACCOUNT_COLS, KEY_COLS, KEY_LOOKUP_SELECT, toAccount, toApiKey, type AccountRow, type ApiKeyRow, type KeyLookupRow } from '../shared/rows.js';
import { TokenResolver } from '../shared/token-resolver.js';
import type { SqliteDatabase } from './database.js';

/** SQLite's constraint violations (better-sqlite3 error codes). */
export const SQLITE_CONSTRAINTS: ConstraintErrors = {
  isUnique: (err, column) => {
    const e = err as { code?: string; message?: string };
    return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof e.message === 'string' && e.message.includes(column);
  },
  isForeignKey: (err) => (err as { code?: string })?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY',
};

export class SqliteAccounts implements AccountStore {
  readonly touches: KeyTouches;
  private readonly tokens: TokenResolver;

  constructor(
    private readonly d: SqliteDatabase,
    /** Called on writes that change who may receive what (accounts' rooms, existence). */
    private readonly onRoutingChange: () => void,
  ) {
    const touch = d.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE key_id = ?');
    const writeTouches = d.db.transaction((entries: Array<[string, string]>) => {
      for (const [keyId, at] of entries) touch.run(at, keyId);
    });
    this.touches = new KeyTouches((entries) => {
      // Bookkeeping: after a storage failure nothing more is written (the process is going down).
      if (d.fatal === null) writeTouches(entries);
    }, d.opts.keyTouchBatchMs);
    const byHash = d.db.prepare(`${KEY_LOOKUP_SELECT} WHERE k.token_hash = ?`);
    this.tokens = new TokenResolver({
      find: (hash) => byHash.get(hash) as KeyLookupRow | undefined,
      touches: this.touches,
      check: () => this.d.check(),
      // Own writes call forget(); commits of other connections are noticed here.
      ttlMs: Infinity,
      beforeLookup: () => this.d.noticeExternalWrites(),
    });
    d.onExternalWrite(() => this.tokens.forget());
  }

  /** Own writes to keys or accounts make cached lookups (and, for accounts, routing) stale. */
  private changed(routing: boolean): void {
    this.tokens.forget();
    if (routing) this.onRoutingChange();
  }

  forgetCachedAuth(): void {
    this.tokens.forget();
  }

  // ---------------------------------------------------------------- settings

  async getSetting(key: string): Promise<string | null> {
    this.d.check();
    return (this.d.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined) ?? null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    this.d.checkWritable();
    if (this.d.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(key, value).changes > 0) await this.d.written();
    return (await this.getSetting(key))!;
  }

  // ---------------------------------------------------------------- accounts

  async createAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Promise<Account> {
    this.d.checkWritable();
    const account = newAccount(input);
    try {
      this.changed(true);
      this.d
        .prepare('INSERT INTO accounts (account_id, name, partner_id, rooms, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(account.account_id, account.name, account.partner_id, JSON.stringify(account.rooms), account.created_at);
    } catch (err) {
      rethrowConstraint(err, SQLITE_CONSTRAINTS, { partnerId: account.partner_id });
    }
    await this.d.written();
    return account;
  }

  async getAccount(accountId: string): Promise<Account | null> {
    this.d.check();
    const row = this.d.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE account_id = ?`).get(accountId) as AccountRow | undefined;
    return row ? toAccount(row) : null;
  }

  async listAccounts(opts: { limit?: number; after?: string } = {}): Promise<Account[]> {
    this.d.check();
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_ACCOUNT_PAGE));
    // Creation order = rowid order (monotonic, unlike created_at which ties within a millisecond).
    const rows = (
      opts.after
        ? this.d
            .prepare(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE rowid > (SELECT rowid FROM accounts WHERE account_id = ?) ORDER BY rowid LIMIT ?`)
            .all(opts.after, limit)
        : this.d.prepare(`SELECT ${ACCOUNT_COLS} FROM accounts ORDER BY rowid LIMIT ?`).all(limit)
    ) as AccountRow[];
    return rows.map(toAccount);
  }

  async updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null> {
    this.d.checkWritable();
    const current = await this.getAccount(accountId);
    if (!current) return null;
    const next = applyAccountPatch(current, patch);
    try {
      this.changed(true);
      this.d.prepare('UPDATE accounts SET name = ?, partner_id = ?, rooms = ? WHERE account_id = ?').run(next.name, next.partner_id, JSON.stringify(next.rooms), accountId);
    } catch (err) {
      rethrowConstraint(err, SQLITE_CONSTRAINTS, { partnerId: next.partner_id });
    }
    await this.d.written();
    return next;
  }

  async deleteAccount(accountId: string): Promise<boolean> {
    this.d.checkWritable();
    // FK cascades remove keys, webhooks (→ deliveries → attempts) and the account's stream.
    // Shared event rows go at the next prune once nothing references them.
    this.changed(true);
    if (this.d.prepare('DELETE FROM accounts WHERE account_id = ?').run(accountId).changes === 0) return false;
    await this.d.written();
    return true;
  }

  // ---------------------------------------------------------------- api keys

  async createApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): Promise<{ key: ApiKey; token: string }> {
    this.d.checkWritable();
    const { key, token, hash } = newApiKey(accountId, input);
    try {
      this.d
        .prepare(
          `INSERT INTO api_keys (key_id, account_id, name, token_hash, token_prefix, status, expires_at, created_at)
           VALUES (?, ?, ?, ?, ?, 'active', ?, ?)`,
        )
        .run(key.key_id, accountId, key.name, hash, key.token_prefix, key.expires_at, key.created_at);
    } catch (err) {
      rethrowConstraint(err, SQLITE_CONSTRAINTS, { accountId });
    }
    await this.d.written(); // the token is shown once: it must still work after a crash
    return { key, token };
  }

  async listApiKeys(accountId: string): Promise<ApiKey[]> {
    this.d.check();
    await this.touches.flush();
    return (this.d.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE account_id = ? ORDER BY rowid`).all(accountId) as ApiKeyRow[]).map(toApiKey);
  }

  async getApiKey(keyId: string): Promise<ApiKey | null> {
    this.d.check();
    await this.touches.flush();
    const row = this.d.prepare(`SELECT ${KEY_COLS} FROM api_keys WHERE key_id = ?`).get(keyId) as ApiKeyRow | undefined;
    return row ? toApiKey(row) : null;
  }

  async setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null> {
    this.d.checkWritable();
    validateKeyStatus(status);
    this.changed(false);
    if (this.d.prepare('UPDATE api_keys SET status = ? WHERE key_id = ?').run(status, keyId).changes === 0) return null;
    const key = await this.getApiKey(keyId);
    await this.d.written(); // a deactivation must survive an OS crash (SPEC §2.5)
    return key;
  }

  async deleteApiKey(keyId: string): Promise<ApiKey | null> {
    this.d.checkWritable();
    const key = await this.getApiKey(keyId);
    if (!key) return null;
    this.changed(false);
    this.d.prepare('DELETE FROM api_keys WHERE key_id = ?').run(keyId);
    await this.d.written();
    return key;
  }

  lookupToken(token: string, now?: Date): Promise<KeyLookup> {
    return this.tokens.lookup(token, now);
  }
}
