/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/).
 *
 * signature = base64(HMAC-SHA256(key, `${msgId}.${timestamp}.${body}`)) where key is the
 * base64-decoded part of the secret after the `whsec_` prefix — byte-for-byte what the
 * `standardwebhooks` library computes, so `new Webhook(secret).verify(body, headers)` passes.
 * Several secrets (rotation grace) produce space-separated `v1,<sig>` entries.
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

/** Decoded key bytes of a secret (prefix optional, like the library). */
export function secretKey(secret: string): Buffer {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(raw, 'base64');
}

/** A secret we accept from operators: `whsec_` + strict base64 of ≥ 24 bytes. */
export function isValidSecret(secret: string): boolean {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) return false;
  const raw = secret.slice(SECRET_PREFIX.length);
  if (!B64_RE.test(raw) || raw.length % 4 !== 0) return false;
  return Buffer.from(raw, 'base64').length >= MIN_SECRET_BYTES;
}

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
