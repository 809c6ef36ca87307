/**
 * API key tokens: generation, shape check and hashing.
 *
 * A token is `tp_live_` followed by 43 base62 characters drawn uniformly (rejection sampling,
 * no modulo bias): 43 × log2(62) ≈ 256 bits of entropy, alphanumeric only so it survives
 * double-click selection, URLs and shell quoting.
 *
 * Only SHA-256(token) is stored. A fast, unsalted hash is the right tool here, as GitHub and
 * Stripe do for their tokens: slow password hashes (bcrypt, scrypt, argon2) and salts exist to
 * make guessing *low-entropy human passwords* expensive. A 256-bit random token cannot be
 * brute-forced or found in a rainbow table whatever the hash speed, so the stored hash leaks
 * nothing usable, while a fast hash keeps authentication O(1) and lets the store look the key
 * up by its hash (a salted/slow hash would force scanning and verifying candidates).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { API_KEY_PREFIX } from '@tpx-realtime/protocol';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const TOKEN_BODY_LENGTH = 43;
export const TOKEN_LENGTH = API_KEY_PREFIX.length + TOKEN_BODY_LENGTH;
/** Characters of the token kept in clear for display (`tp_live_AbC1`). */
export const TOKEN_PREFIX_LENGTH = 12;
const TOKEN_RE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${TOKEN_BODY_LENGTH}}$`);

/** A new random token: `tp_live_` + 43 base62 characters (≈256 bits). */
export function generateToken(): string {
  let body = '';
  while (body.length < TOKEN_BODY_LENGTH) {
    const bytes = randomBytes(64);
    for (let i = 0; i < bytes.length && body.length < TOKEN_BODY_LENGTH; i++) {
      const b = bytes[i];
      // 248 = 4 × 62: accepting only bytes below it keeps every character equally likely.
      if (b < 248) body += ALPHABET[b % 62];
    }
  }
  return API_KEY_PREFIX + body;
}

/** Cheap shape check done before any database access: wrong prefix, length or alphabet → false. */
export function isWellFormedToken(token: unknown): token is string {
  return typeof token === 'string' && token.length === TOKEN_LENGTH && TOKEN_RE.test(token);
}

/** SHA-256 of the token (32 bytes); the only form in which a token is stored. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The displayable beginning of a token. */
export function tokenPrefix(token: string): string {
  return token.slice(0, TOKEN_PREFIX_LENGTH);
}

/** Constant-time equality of two hashes (false on length mismatch). */
export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
