/**
 * Token resolution shared by both stores: shape check, SHA-256, a bounded cache of successful
 * lookups, the key status/expiry rules and batched last_used_at.
 *
 * Why a cache: a reconnect storm authenticates the same keys thousands of times; the join and
 * (SQLite) the JSON parse of the rooms were ~10 % of server CPU per connection, and on
 * PostgreSQL each lookup is a network round trip. Only ACTIVE keys are cached, so activating a
 * key needs no invalidation; status and expiry are checked on every lookup from the cached row.
 * What invalidates:
 *  - this store's own writes to keys and accounts (`forget()`, synchronously, before the write
 *    returns);
 *  - SQLite: a commit by another connection to the file (PRAGMA data_version, `beforeLookup`);
 *  - PostgreSQL: the bus's control messages from other nodes (key disabled, account changed or
 *    deleted → `Store.forgetCachedAuth()`), and a short time-to-live for what the bus missed.
 * A lookup racing an invalidation is not cached (generation check), so it can never re-insert
 * a row read before the write.
 */
import { hashToken, isWellFormedToken } from '../keys.js';
import type { Account, KeyLookup } from '../types.js';
import { resolveKeyLookup } from './accounts.js';
import type { KeyTouches } from './key-touches.js';
import { lookupAccount, type KeyLookupRow } from './rows.js';

/** Bound on cached lookups (oldest dropped first); a few hundred bytes each. */
export const TOKEN_CACHE_MAX = 10_000;

interface Entry {
  row: KeyLookupRow;
  account: Account;
  cachedAt: number;
}

export interface TokenResolverOptions {
  /** The key + account row for a token hash (undefined when none). */
  find(hash: Buffer): KeyLookupRow | undefined | Promise<KeyLookupRow | undefined>;
  touches: KeyTouches;
  /** How long a cached lookup may be served (Infinity when every change is seen at once). */
  ttlMs: number;
  /** Throws when the store cannot serve (not initialised, closed). */
  check: () => void;
  /** Called before each lookup (SQLite: notice commits by other connections). */
  beforeLookup?: () => void;
  max?: number;
}

export class TokenResolver {
  private readonly cache = new Map<string, Entry>();
  private generation = 0;
  private readonly max: number;

  constructor(private readonly opts: TokenResolverOptions) {
    this.max = opts.max ?? TOKEN_CACHE_MAX;
  }

  forget(): void {
    this.generation++;
    this.cache.clear();
  }

  async lookup(token: string, now: Date = new Date()): Promise<KeyLookup> {
    this.opts.check();
    // Malformed tokens never reach the database.
    if (!isWellFormedToken(token)) return { ok: false, reason: 'invalid' };
    const hash = hashToken(token);
    this.opts.beforeLookup?.();
    const cacheKey = hash.toString('base64');
    const nowMs = Date.now();
    let entry = this.cache.get(cacheKey);
    if (entry && nowMs - entry.cachedAt > this.opts.ttlMs) {
      this.cache.delete(cacheKey);
      entry = undefined;
    }
    if (!entry) {
      const generation = this.generation;
      const row = await this.opts.find(hash);
      if (!row) return resolveKeyLookup(undefined, undefined, hash, now, null).lookup;
      entry = { row, account: lookupAccount(row), cachedAt: nowMs };
      if (row.status === 'active' && generation === this.generation) {
        if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(cacheKey, entry);
      }
    }
    const { row, account } = entry;
    const { lookup, touch } = resolveKeyLookup(row, account, hash, now, this.opts.touches.get(row.key_id) ?? row.last_used_at);
    if (touch) {
      this.opts.touches.set(row.key_id, touch);
      row.last_used_at = touch; // the cached row stays current once the touch is written
    }
    return lookup;
  }
}
