/**
 * Account and API-key semantics both stores apply identically: input validation, the shape of
 * new records, patches, and how a token lookup row becomes an answer (constant-time compare,
 * status, expiry, when last_used_at is worth writing).
 */
import { randomUUID } from 'node:crypto';
import { EVENT_TYPES, isEventType, type EventType } from '@tpx-realtime/protocol';
import { generateToken, hashToken, hashesEqual, tokenPrefix } from '../keys.js';
import { StoreConflictError, StoreValidationError, type Account, type AccountPatch, type ApiKey, type ApiKeyStatus, type KeyLookup } from '../types.js';
import { toApiKey, type KeyLookupRow } from './rows.js';
import { normalizeIso } from './time.js';

/** last_used_at is written at most once per this interval per key (no write per authentication). */
export const LAST_USED_RESOLUTION_MS = 60_000;
/** Default page of listAccounts. */
export const DEFAULT_ACCOUNT_PAGE = 1000;

export function validateRooms(rooms: unknown): EventType[] {
  if (!Array.isArray(rooms)) throw new StoreValidationError('rooms must be an array of event types');
  const bad = rooms.filter((r) => !isEventType(r));
  if (bad.length) throw new StoreValidationError(`rooms contains unknown event types: ${bad.map(String).join(', ')}`);
  return [...new Set(rooms as EventType[])];
}

export function validatePartnerId(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || value.length === 0) throw new StoreValidationError('partner_id must be a non-empty string or null');
  return value;
}

export function validateKeyStatus(status: unknown): ApiKeyStatus {
  if (status !== 'active' && status !== 'inactive') throw new StoreValidationError(`Invalid key status: ${String(status)}`);
  return status;
}

export function newAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Account {
  return {
    account_id: randomUUID(),
    name: input.name ?? null,
    partner_id: validatePartnerId(input.partner_id),
    rooms: input.rooms === undefined ? [...EVENT_TYPES] : validateRooms(input.rooms),
    created_at: new Date().toISOString(),
  };
}

/** `current` with the patched fields applied and validated (undefined = unchanged). */
export function applyAccountPatch(current: Account, patch: AccountPatch): Account {
  return {
    ...current,
    name: patch.name !== undefined ? patch.name : current.name,
    partner_id: patch.partner_id !== undefined ? validatePartnerId(patch.partner_id) : current.partner_id,
    rooms: patch.rooms !== undefined ? validateRooms(patch.rooms) : current.rooms,
  };
}

/** How a backend recognises constraint violations in its driver's errors. */
export interface ConstraintErrors {
  isUnique(err: unknown, column: string): boolean;
  isForeignKey(err: unknown): boolean;
}

/**
 * The store error a failed insert or update means (a partner_id already taken → conflict; an
 * unknown account → validation error); anything else is rethrown as it is.
 */
export function rethrowConstraint(err: unknown, c: ConstraintErrors, ctx: { partnerId?: string | null; accountId?: string }): never {
  if (ctx.partnerId !== undefined && c.isUnique(err, 'partner_id')) throw new StoreConflictError(`partner_id "${ctx.partnerId}" is already used by another account`);
  if (ctx.accountId !== undefined && c.isForeignKey(err)) throw new StoreValidationError(`Unknown account id: ${ctx.accountId}`);
  throw err;
}

/** A new key with its token (shown once) and the hash, the only form stored. */
export function newApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): { key: ApiKey; token: string; hash: Buffer } {
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
  return { key, token, hash: hashToken(token) };
}

/**
 * The answer to a token lookup from its row (undefined: no key has this hash) and the row's
 * parsed account. The index lookup already matched the hash; the constant-time compare is
 * defence in depth. `touch` is the last_used_at to write, when the one known (`lastUsed`) is
 * older than the resolution. The account is copied: callers may keep or change theirs.
 */
export function resolveKeyLookup(
  row: KeyLookupRow | undefined,
  account: Account | undefined,
  hash: Uint8Array,
  now: Date,
  lastUsed: string | null,
): { lookup: KeyLookup; touch: string | null } {
  if (!row || !account || !hashesEqual(row.token_hash, hash)) return { lookup: { ok: false, reason: 'invalid' }, touch: null };
  if (row.status !== 'active') return { lookup: { ok: false, reason: 'inactive' }, touch: null };
  if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) return { lookup: { ok: false, reason: 'expired' }, touch: null };
  const nowMs = Date.now();
  let touch: string | null = null;
  if (lastUsed === null || nowMs - Date.parse(lastUsed) >= LAST_USED_RESOLUTION_MS) touch = new Date(nowMs).toISOString();
  const key = toApiKey({ ...row, last_used_at: touch ?? lastUsed });
  return { lookup: { ok: true, key, account: { ...account, rooms: [...account.rooms] } }, touch };
}
