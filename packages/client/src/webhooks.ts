/**
 * Receiving TPX webhooks (SPEC §4) in the partner's process: Standard Webhooks signature and
 * timestamp verification, parsing into the same `TpxEvent` the WebSocket client produces,
 * and de-duplication through the same `Deduplicator`, so a partner consuming both paths
 * handles each event once.
 *
 * Pure WebCrypto (`globalThis.crypto.subtle`): runs in Node ≥ 20, browsers, Deno, Bun and
 * edge runtimes. The Node/Express adapters are typed structurally (no `node:` imports).
 */
import { isEventType } from '@tpx-realtime/protocol/core';
import type { Deduplicator } from './dedup.js';
import { WebhookVerificationError } from './errors.js';
import type { Awaitable, TpxEvent } from './types.js';

export type HeaderBag =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
  /**
   * Endpoint secret(s): `whsec_…` (the base64 key after the prefix, as Standard Webhooks defines),
   * or a secret the operator chose in another form (its UTF-8 bytes are the key, as the server
   * signs with it); a `Uint8Array` is taken as the raw key. Several are accepted during a rotation.
   */
  secret: string | Uint8Array | Array<string | Uint8Array>;
  /** Maximum |now − webhook-timestamp| in seconds. Default 300 (5 min). */
  toleranceSec?: number;
  /** Clock, epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

export interface WebhookRequest {
  headers: HeaderBag;
  /** The raw body exactly as received (never a re-serialised object). */
  body: string | Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available in this runtime');
  return s;
}

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin);
}

/** The HMAC key bytes of a secret: decoded after `whsec_`, else the string's UTF-8 bytes (as the server). */
export function webhookSecretBytes(secret: string | Uint8Array): Uint8Array {
  if (typeof secret !== 'string') return secret;
  if (!secret.startsWith('whsec_')) return new TextEncoder().encode(secret);
  try {
    return base64ToBytes(secret.slice('whsec_'.length));
  } catch {
    throw new TypeError('webhook secret "whsec_…" must be followed by base64');
  }
}

function hmacKey(secret: string | Uint8Array): Promise<CryptoKey> {
  const cacheKey = typeof secret === 'string' ? secret : undefined;
  if (cacheKey !== undefined) {
    const cached = keyCache.get(cacheKey);
    if (cached) return cached;
  }
  const bytes = webhookSecretBytes(secret);
  const p = subtle().importKey('raw', bytes as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  if (cacheKey !== undefined) {
    if (keyCache.size > 64) keyCache.clear();
    keyCache.set(cacheKey, p);
  }
  return p;
}

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const rec = headers as Record<string, string | string[] | undefined>;
  let v = rec[name];
  if (v === undefined) {
    const lower = name.toLowerCase();
    for (const k of Object.keys(rec)) if (k.toLowerCase() === lower) v = rec[k];
  }
  return Array.isArray(v) ? v.join(' ') : v;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Sign like the server does: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`. Handy for tests and local tools. */
export async function signWebhook(secret: string | Uint8Array, msgId: string, timestampSec: number, body: string | Uint8Array): Promise<string> {
  const sig = await hmac(secret, msgId, String(timestampSec), body);
  return `v1,${bytesToBase64(sig)}`;
}

async function hmac(secret: string | Uint8Array, id: string, ts: string, body: string | Uint8Array): Promise<Uint8Array> {
  const prefix = encoder.encode(`${id}.${ts}.`);
  const bodyBytes = typeof body === 'string' ? encoder.encode(body) : body;
  const data = new Uint8Array(prefix.length + bodyBytes.length);
  data.set(prefix, 0);
  data.set(bodyBytes, prefix.length);
  const key = await hmacKey(secret);
  return new Uint8Array(await subtle().sign('HMAC', key, data));
}

/**
 * Verify `webhook-id`, `webhook-timestamp`, `webhook-signature` (one or more space-separated
 * `v1,<sig>` entries; other versions are ignored). Throws `WebhookVerificationError`.
 * Returns the verified webhook id and timestamp.
 */
export async function verifyWebhookSignature(req: WebhookRequest, options: VerifyWebhookOptions): Promise<{ id: string; timestamp: number }> {
  const id = header(req.headers, 'webhook-id');
  const ts = header(req.headers, 'webhook-timestamp');
  const sigHeader = header(req.headers, 'webhook-signature');
  if (!id || !ts || !sigHeader) {
    throw new WebhookVerificationError('WEBHOOK_MISSING_HEADERS', 'missing webhook-id, webhook-timestamp or webhook-signature header');
  }
  if (!/^\d{1,12}$/.test(ts.trim())) throw new WebhookVerificationError('WEBHOOK_BAD_TIMESTAMP', 'webhook-timestamp is not a unix timestamp');
  const timestamp = Number(ts.trim());
  const tolerance = options.toleranceSec ?? 300;
  const nowSec = Math.floor((options.now ?? Date.now)() / 1000);
  if (Math.abs(nowSec - timestamp) > tolerance) {
    throw new WebhookVerificationError('WEBHOOK_BAD_TIMESTAMP', `webhook-timestamp is outside the ${tolerance} s tolerance`);
  }
  const candidates: Uint8Array[] = [];
  for (const part of sigHeader.split(' ')) {
    const comma = part.indexOf(',');
    if (comma < 0 || part.slice(0, comma) !== 'v1') continue;
    try {
      candidates.push(base64ToBytes(part.slice(comma + 1)));
    } catch {
      /* malformed entry: ignore */
    }
  }
  if (candidates.length === 0) throw new WebhookVerificationError('WEBHOOK_BAD_SIGNATURE', 'no v1 signature in webhook-signature');
  const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];
  if (secrets.length === 0) throw new TypeError('verifyWebhookSignature: no secret');
  let ok = false;
  for (const secret of secrets) {
    const expected = await hmac(secret, id, ts.trim(), req.body);
    // Compare against every candidate (no early exit) so timing does not reveal which matched.
    for (const c of candidates) ok = constantTimeEqual(expected, c) || ok;
  }
  if (!ok) throw new WebhookVerificationError('WEBHOOK_BAD_SIGNATURE', 'webhook signature does not match');
  return { id, timestamp };
}

/**
 * Parse a webhook body `{ msg_type, msg_id, seq, sent_at (s), source_id, destination_id, payload }`
 * into the WebSocket event shape (`sent_at` in ms, `via: 'webhook'`). `seq` is the event's seq
 * in the account's stream, the same number as on the WebSocket (absent from older servers).
 */
export function parseWebhookEvent(body: string | Uint8Array): TpxEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof body === 'string' ? body : decoder.decode(body));
  } catch {
    throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'webhook body is not JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'webhook body is not an object');
  const b = raw as Record<string, unknown>;
  if (!isEventType(b.msg_type)) throw new WebhookVerificationError('WEBHOOK_BAD_BODY', `unknown msg_type ${String(b.msg_type)}`);
  if (typeof b.msg_id !== 'string' || b.msg_id.length === 0) throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'msg_id missing');
  if (!b.payload || typeof b.payload !== 'object' || Array.isArray(b.payload)) throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'payload missing');
  if (b.seq !== undefined && !(Number.isSafeInteger(b.seq) && (b.seq as number) >= 1)) {
    throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'seq must be an integer ≥ 1');
  }
  const event = {
    msg_type: b.msg_type,
    msg_id: b.msg_id,
    sent_at: typeof b.sent_at === 'number' ? Math.round(b.sent_at * 1000) : Date.now(),
    payload: b.payload,
    via: 'webhook',
  } as TpxEvent;
  if (typeof b.source_id === 'string') event.source_id = b.source_id;
  if (typeof b.destination_id === 'string') event.destination_id = b.destination_id;
  if (b.seq !== undefined) event.seq = b.seq as number;
  return event;
}

/** Verify, then parse. The body's `msg_id` must equal the signed `webhook-id`. */
export async function verifyWebhook(req: WebhookRequest, options: VerifyWebhookOptions): Promise<TpxEvent> {
  const { id } = await verifyWebhookSignature(req, options);
  const event = parseWebhookEvent(req.body);
  if (event.msg_id !== id) throw new WebhookVerificationError('WEBHOOK_BAD_BODY', 'body msg_id differs from webhook-id');
  return event;
}

export interface WebhookHandlerOptions extends VerifyWebhookOptions {
  /** Called once per event (not for duplicates). Throw/reject to answer 500 so TPX retries. */
  onEvent: (event: TpxEvent) => Awaitable<void>;
  /** Share with the `TpxClient` to handle each event once across both paths. */
  dedup?: Deduplicator;
  /** Rejected requests and handler failures (for logging). */
  onError?: (error: unknown) => void;
  /** Largest body accepted by the Node/Express adapters. Default 1 MiB. */
  maxBodyBytes?: number;
}

export interface WebhookResponse {
  status: number;
  body: string;
  /** `handled`, `duplicate`, `rejected`, `failed`. */
  outcome: 'handled' | 'duplicate' | 'rejected' | 'failed';
  event?: TpxEvent;
}

/**
 * Framework-neutral core: verify, parse, de-duplicate, run `onEvent`. Answers 200 for a
 * handled or duplicate event (a duplicate must be acknowledged, or TPX would retry it),
 * 400/401 for a rejected request, 500 when `onEvent` failed.
 */
export async function handleWebhook(req: WebhookRequest, options: WebhookHandlerOptions): Promise<WebhookResponse> {
  let event: TpxEvent;
  try {
    event = await verifyWebhook(req, options);
  } catch (err) {
    options.onError?.(err);
    const code = err instanceof WebhookVerificationError ? err.code : 'WEBHOOK_BAD_BODY';
    const status = code === 'WEBHOOK_BAD_BODY' ? 400 : 401;
    return { status, outcome: 'rejected', body: JSON.stringify({ error: errorText(err), code }) };
  }
  try {
    const handled = options.dedup
      ? await options.dedup.run(event.msg_id, () => options.onEvent(event))
      : (await options.onEvent(event), true);
    return {
      status: 200,
      outcome: handled ? 'handled' : 'duplicate',
      event,
      body: JSON.stringify({ ok: true, msg_id: event.msg_id, duplicate: !handled }),
    };
  } catch (err) {
    options.onError?.(err);
    return { status: 500, outcome: 'failed', event, body: JSON.stringify({ error: 'handler failed', code: 'HANDLER_FAILED' }) };
  }
}

// ---------------------------------------------------------------------------------------------
// Node `http` and Express-style adapters (structural types: no dependency on @types/node or express)

export interface NodeRequestLike {
  headers: Record<string, string | string[] | undefined>;
  method?: string;
  on(event: 'data', cb: (chunk: Uint8Array | string) => void): unknown;
  on(event: 'end', cb: () => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
}
export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
  headersSent?: boolean;
}

function readBody(req: NodeRequestLike, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk) => {
      if (failed) return;
      const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
      size += bytes.length;
      if (size > limit) {
        failed = true;
        reject(new WebhookVerificationError('WEBHOOK_BAD_BODY', `body larger than ${limit} bytes`));
        return;
      }
      chunks.push(bytes);
    });
    req.on('end', () => {
      if (failed) return;
      const out = new Uint8Array(size);
      let off = 0;
      for (const c of chunks) {
        out.set(c, off);
        off += c.length;
      }
      resolve(out);
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

function reply(res: NodeResponseLike, status: number, body: string): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(body);
}

/**
 * `(req, res) => void` for `node:http` (`http.createServer(handler)` or inside your router).
 * Reads the raw body itself, so nothing may consume the stream before it.
 */
export function createNodeWebhookHandler(options: WebhookHandlerOptions): (req: NodeRequestLike, res: NodeResponseLike) => void {
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  return (req, res) => {
    if (req.method && req.method !== 'POST') {
      reply(res, 405, JSON.stringify({ error: 'method not allowed', code: 'METHOD_NOT_ALLOWED' }));
      return;
    }
    readBody(req, limit)
      .then((body) => handleWebhook({ headers: req.headers, body }, options))
      .then((r) => reply(res, r.status, r.body))
      .catch((err) => {
        options.onError?.(err);
        const status = err instanceof WebhookVerificationError ? 413 : 400;
        reply(res, status, JSON.stringify({ error: errorText(err), code: 'WEBHOOK_BAD_BODY' }));
      });
  };
}

export interface ExpressRequestLike extends NodeRequestLike {
  /** With `express.raw({ type: 'application/json' })`: a Buffer. A string is accepted too. */
  body?: unknown;
}

/**
 * Express/Connect-style middleware. Mount it with the raw body parser so the signature is
 * checked over the exact bytes received:
 *
 *   app.post('/tpx/webhooks', express.raw({ type: 'application/json' }), expressWebhookHandler({ secret, onEvent, dedup }));
 *
 * Without a body parser it reads the stream itself. A body already parsed into an object
 * (`express.json()`) cannot be verified and is answered 500 with an explanation.
 */
export function expressWebhookHandler(
  options: WebhookHandlerOptions,
): (req: ExpressRequestLike, res: NodeResponseLike & { status?: unknown }, next?: (err?: unknown) => void) => void {
  const node = createNodeWebhookHandler(options);
  return (req, res) => {
    const body = req.body;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      handleWebhook({ headers: req.headers, body }, options)
        .then((r) => reply(res, r.status, r.body))
        .catch((err) => {
          options.onError?.(err);
          reply(res, 500, JSON.stringify({ error: 'internal error', code: 'INTERNAL' }));
        });
      return;
    }
    // No body parser ran (or one skipped this content type, leaving `{}` and the stream unread).
    if (body === undefined || (isEmptyObject(body) && (req as { readableEnded?: boolean }).readableEnded !== true)) {
      node(req, res);
      return;
    }
    const err = new Error('tpx webhook: req.body was already parsed; mount express.raw({ type: "application/json" }) on this route');
    options.onError?.(err);
    reply(res, 500, JSON.stringify({ error: err.message, code: 'RAW_BODY_REQUIRED' }));
  };
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
