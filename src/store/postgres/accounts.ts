/**
 * Accounts, API keys and token lookups on PostgreSQL (the AccountStore aggregate). Token lookups
 * are cached and last_used_at is written in batches exactly as on SQLite (shared/); what differs
 * is invalidation across nodes: the bus's control messages (Store.forgetCachedAuth) and a short
 * time-to-live for what the bus missed (shared/token-resolver.ts).
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
import { applyAccountPatch, DEFAULT_ACCOUNT_PAGE, newAccount, newApiKey, rethrowConstraint, validateKeyStatus } from '../shared/accounts.js';
import { KeyTouches } from '../shared/key-touches.js';
import { ACCOUNT_COLS, KEY_COLS, KEY_LOOKUP_SELECT, toAccount, toApiKey, type AccountRow, type ApiKeyRow, type KeyLookupRow } from '../shared/rows.js';
import { TokenResolver } from '../shared/token-resolver.js';
import { PG_CONSTRAINTS, type PgDatabase } from './database.js';

/** Default time-to-live of a cached token lookup: bounds what a node misses while the bus is down. */
export const TOKEN_CACHE_TTL_MS = 1000;

export class PgAccounts implements AccountStore {
  readonly touches: KeyTouches;
  private readonly tokens: TokenResolver;

  constructor(private readonly d: PgDatabase) {
    this.touches = new KeyTouches(async (entries) => {
      await d.query('UPDATE api_keys k SET last_used_at = v.at FROM unnest($1::text[], $2::text[]) AS v(id, at) WHERE k.key_id = v.id', [
        entries.map(([id]) => id),
        entries.map(([, at]) => at),
      ]);
    }, d.opts.keyTouchBatchMs);
    this.tokens = new TokenResolver({
      find: (hash) => d.one<KeyLookupRow>(`${KEY_LOOKUP_SELECT} WHERE k.token_hash = $1`, [hash]),
      touches: this.touches,
      check: () => this.d.check(),
      ttlMs: d.opts.tokenCacheTtlMs ?? TOKEN_CACHE_TTL_MS,
    });
  }

  forgetCachedAuth(): void {
    this.tokens.forget();
  }

  // ---------------------------------------------------------------- settings

  async getSetting(key: string): Promise<string | null> {
    const row = await this.d.one<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
    return row ? row.value : null;
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    const row = await this.d.one<{ value: string }>(
      `WITH ins AS (INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value)
       SELECT value FROM ins UNION ALL SELECT value FROM settings WHERE key = $1 LIMIT 1`,
      [key, value],
    );
    return row!.value;
  }

  // ---------------------------------------------------------------- accounts

  async createAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Promise<Account> {
    this.d.check();
    const account = newAccount(input);
    try {
      await this.d.query('INSERT INTO accounts (account_id, name, partner_id, rooms, created_at) VALUES ($1, $2, $3, $4, $5)', [
        account.account_id,
        account.name,
        account.partner_id,
        account.rooms,
        account.created_at,
      ]);
    } catch (err) {
      rethrowConstraint(err, PG_CONSTRAINTS, { partnerId: account.partner_id });
    }
    return account;
  }

  async getAccount(accountId: string): Promise<Account | null> {
    const row = await this.d.one<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE account_id = $1`, [accountId]);
    return row ? toAccount(row) : null;
  }

  async listAccounts(opts: { limit?: number; after?: string } = {}): Promise<Account[]> {
    const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_ACCOUNT_PAGE));
    const { rows } = opts.after
      ? await this.d.query<AccountRow>(
          `SELECT ${ACCOUNT_COLS} FROM accounts WHERE row_no > (SELECT row_no FROM accounts WHERE account_id = $1) ORDER BY row_no LIMIT $2`,
          [opts.after, limit],
        )
      : await this.d.query<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts ORDER BY row_no LIMIT $1`, [limit]);
    return rows.map(toAccount);
  }

  async updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null> {
    this.d.check();
    try {
      const next = await this.d.tx(async (c) => {
        const { rows } = await c.query<AccountRow>(`SELECT ${ACCOUNT_COLS} FROM accounts WHERE account_id = $1 FOR UPDATE`, [accountId]);
        if (rows.length === 0) return null;
        const updated = applyAccountPatch(toAccount(rows[0]), patch);
        await c.query('UPDATE accounts SET name = $2, partner_id = $3, rooms = $4 WHERE account_id = $1', [accountId, updated.name, updated.partner_id, updated.rooms]);
        return updated;
      });
      if (next) this.tokens.forget();
      return next;
    } catch (err) {
      rethrowConstraint(err, PG_CONSTRAINTS, { partnerId: patch.partner_id ?? null });
    }
  }

  async deleteAccount(accountId: string): Promise<boolean> {
    // FK cascades remove keys, webhooks (→ deliveries → attempts) and the account's stream.
    const deleted = ((await this.d.query('DELETE FROM accounts WHERE account_id = $1', [accountId])).rowCount ?? 0) > 0;
    this.tokens.forget();
    return deleted;
  }

  // ---------------------------------------------------------------- api keys

  async createApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): Promise<{ key: ApiKey; token: string }> {
    this.d.check();
    const { key, token, hash } = newApiKey(accountId, input);
    try {
      await this.d.query(
        `INSERT INTO api_keys (key_id, account_id, name, token_hash, token_prefix, status, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)`,
        [key.key_id, accountId, key.name, hash, key.token_prefix, key.expires_at, key.created_at],
      );
    } catch (err) {
      rethrowConstraint(err, PG_CONSTRAINTS, { accountId });
    }
    return { key, token };
  }

  async listApiKeys(accountId: string): Promise<ApiKey[]> {
    await this.touches.flush();
    const { rows } = await this.d.query<ApiKeyRow>(`SELECT ${KEY_COLS} FROM api_keys WHERE account_id = $1 ORDER BY row_no`, [accountId]);
    return rows.map(toApiKey);
  }

  async getApiKey(keyId: string): Promise<ApiKey | null> {
    await this.touches.flush();
    const row = await this.d.one<ApiKeyRow>(`SELECT ${KEY_COLS} FROM api_keys WHERE key_id = $1`, [keyId]);
    return row ? toApiKey(row) : null;
  }

  async setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null> {
    this.d.check();
    validateKeyStatus(status);
    await this.touches.flush();
    const row = await this.d.one<ApiKeyRow>(`UPDATE api_keys SET status = $2 WHERE key_id = $1 RETURNING ${KEY_COLS}`, [keyId, status]);
    this.tokens.forget();
    return row ? toApiKey(row) : null;
  }

  async deleteApiKey(keyId: string): Promise<ApiKey | null> {
    await this.touches.flush();
    const row = await this.d.one<ApiKeyRow>(`DELETE FROM api_keys WHERE key_id = $1 RETURNING ${KEY_COLS}`, [keyId]);
    this.tokens.forget();
    return row ? toApiKey(row) : null;
  }

  lookupToken(token: string, now?: Date): Promise<KeyLookup> {
    return this.tokens.lookup(token, now);
  }
}
