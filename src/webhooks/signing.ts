/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/).
 *
 * signature = base64(HMAC-SHA256(key, `${msgId}.${timestamp}.${body}`)). For a `whsec_` secret
 * (the ones we generate) the key is the base64-decoded part after the prefix — byte-for-byte what
 * the `standardwebhooks` library computes, so `new Webhook(secret).verify(body, headers)` passes.
 * A secret the operator chose in another form (a partner's own shared secret, SPEC §3.2 puts no
 * format on it) is used as it is: its UTF-8 bytes are the key, what `createHmac('sha256', secret)`
 * does. Several secrets (rotation grace) produce space-separated `v1,<sig>` entries.
 */
import { createHmac, randomBytes } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
export const SECRET_BYTES = 32;
export const MIN_SECRET_BYTES = 24;

/** `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Longest secret accepted (characters). */
export const MAX_SECRET_LENGTH = 512;

/** HMAC key of a secret: the decoded bytes after `whsec_`, else the secret's own UTF-8 bytes. */
export function secretKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX) ? Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

/**
 * A secret we accept from operators: `whsec_` + strict base64 of ≥ 24 bytes (Standard Webhooks),
 * or any other string of 1 to 512 characters without control characters or surrounding spaces
 * (used as it is). A `whsec_` value that is not such base64 is refused: it is a typo, not a choice.
 */
export function isValidSecret(secret: string): boolean {
  if (typeof secret !== 'string' || secret.length === 0 || secret.length > MAX_SECRET_LENGTH) return false;
  if (!secret.startsWith(SECRET_PREFIX)) return !/[\u0000-\u001f\u007f]/.test(secret) && secret.trim() === secret;
  const raw = secret.slice(SECRET_PREFIX.length);
  if (!B64_RE.test(raw) || raw.length % 4 !== 0) return false;
  return Buffer.from(raw, 'base64').length >= MIN_SECRET_BYTES;
}

/** Why a secret is refused, for error messages. */
export const SECRET_RULE = 'whsec_ followed by base64 of at least 24 bytes, or any other 1-512 characters without control characters or surrounding spaces (used as they are)';

export interface SignArgs {
  msgId: string;
  /** Unix seconds (the `webhook-timestamp` header value). */
  timestamp: number;
  /** The exact request body bytes as a string. */
  body: string;
  /** Secrets that sign; order is preserved in the header. Empty entries are ignored. */
  secrets: string[];
}

/** Value for the `webhook-signature` header: `v1,<b64>[ v1,<b64>...]`. */
export function signPayload({ msgId, timestamp, body, secrets }: SignArgs): string {
  const toSign = `${msgId}.${Math.floor(timestamp)}.${body}`;
  const out: string[] = [];
  for (const s of secrets) {
    if (!s) continue;
    out.push('v1,' + createHmac('sha256', secretKey(s)).update(toSign).digest('base64'));
  }
  return out.join(' ');
}

/** The three Standard Webhooks headers for one request. */
export function webhookHeaders(args: SignArgs): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  return {
    'webhook-id': args.msgId,
    'webhook-timestamp': String(Math.floor(args.timestamp)),
    'webhook-signature': signPayload(args),
  };
}
