/**
 * Revocation that holds everywhere (SPEC §2.5, §7; issue 9 defects 2-4).
 *
 * - Tombstones: a node remembers keys (and accounts) disabled recently. Every authentication
 *   consults them after its awaits: a key disabled after the authentication's lookup began is
 *   refused even if the lookup saw it active. A tombstone is dropped on reactivation or once no
 *   authentication that began before it can still be running (the auth timeout bounds them).
 * - Connections already known by key are closed at once by the hub (Hub.disableKey), so the
 *   per-event path needs no check beyond the connection's state.
 * - A node that cannot hear the bus (or whose announcer could not reach it) learns of a disable
 *   from the store's access-change log, read every 500 ms whatever the bus does (access-feed.ts).
 */
import type { KeyDisableReason } from '../bus/types.js';
import type { Logger } from '../observability/logger.js';
import type { AccountStore, ApiKey } from '../store/types.js';
import type { KeyGuard } from './connection.js';

interface Tombstone {
  reason: KeyDisableReason;
  at: number;
}

export class Revocations implements KeyGuard {
  private readonly keys = new Map<string, Tombstone>();
  private readonly accounts = new Map<string, number>();

  /** `ttlMs`: longer than any authentication may take (the auth timeout plus a margin). */
  constructor(private readonly ttlMs: number) {}

  keyDisabled(keyId: string, reason: KeyDisableReason, now = Date.now()): void {
    this.keys.set(keyId, { reason, at: now });
  }

  keyEnabled(keyId: string): void {
    this.keys.delete(keyId);
  }

  accountDeleted(accountId: string, now = Date.now()): void {
    this.accounts.set(accountId, now);
  }

  /** Was the key or its account disabled at or after `sinceMs` (when authentication began)? */
  refusal(keyId: string, accountId: string, sinceMs: number): KeyDisableReason | null {
    const key = this.keys.get(keyId);
    if (key && key.at >= sinceMs) return key.reason;
    const deletedAt = this.accounts.get(accountId);
    if (deletedAt !== undefined && deletedAt >= sinceMs) return 'revoked';
    return null;
  }

  prune(now = Date.now()): void {
    for (const [keyId, t] of this.keys) if (now - t.at > this.ttlMs) this.keys.delete(keyId);
    for (const [accountId, at] of this.accounts) if (now - at > this.ttlMs) this.accounts.delete(accountId);
  }
}

/** The status a stored key gives a live connection: null while it may keep receiving. */
export function keyVerdict(key: ApiKey | undefined, now: number): KeyDisableReason | null {
  if (!key) return 'revoked';
  if (key.status !== 'active') return 'inactive';
  if (key.expires_at && Date.parse(key.expires_at) <= now) return 'expired';
  return null;
}

export interface KeyStatusSource {
  /** Keys with connections on this node, grouped by account. */
  keysByAccount(): Map<string, string[]>;
}

/** Store reads in flight at once during one re-check. */
const RECHECK_CONCURRENCY = 8;

/**
 * Re-read the status of every key with connections here from the store (one listApiKeys per
 * account) and apply any disable found. Only for when the access-change log cannot be trusted
 * to hold everything this node missed (its cursor fell behind the log's pruning).
 */
export async function recheckKeys(
  store: AccountStore,
  source: KeyStatusSource,
  apply: (keyId: string, reason: KeyDisableReason) => void,
  logger: Logger,
): Promise<void> {
  const work = [...source.keysByAccount()];
  const worker = async () => {
    for (let item = work.pop(); item; item = work.pop()) {
      const [accountId, keyIds] = item;
      try {
        const keys = new Map((await store.listApiKeys(accountId)).map((k) => [k.key_id, k]));
        const now = Date.now();
        for (const keyId of keyIds) {
          const verdict = keyVerdict(keys.get(keyId), now);
          if (verdict) apply(keyId, verdict);
        }
      } catch (err) {
        logger.warn({ err: (err as Error).message, account_id: accountId }, 'key re-check failed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RECHECK_CONCURRENCY, work.length) }, worker));
}
