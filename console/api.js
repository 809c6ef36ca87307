// @ts-check
/**
 * The admin API client of the console (SPEC §3.2). The admin token lives in sessionStorage only
 * (gone when the tab closes, never in a URL) and is sent as `Authorization: Bearer <token>`.
 */

/** Event types = rooms an account may access (mirror of packages/protocol/src/constants.ts EVENT_TYPES). */
export const EVENT_TYPES = /** @type {const} */ ([
  'BID_REQUEST',
  'BID_OUTBID',
  'AUCTION_RESULT',
  'CONDITIONAL_BID_APPLIED',
  'CONDITIONAL_BID_STATUS_CHANGE',
  'CONDITIONAL_BID_EXPIRING_SOON',
  'INSTANT_CASH_OFFER_STATUS_CHANGE',
  'TRANSFER_CONFIRMATION_RECEIVED',
  'PAYMENT_CHARGED',
  'PAYMENT_FAILED',
  'PAYMENT_SETTLED',
]);

const TOKEN_KEY = 'tpx.adminToken';

/**
 * @typedef {{ account_id: string, name: string | null, partner_id: string | null, rooms: string[], created_at: string }} Account
 * @typedef {{ key_id: string, account_id: string, name: string | null, token_prefix: string, status: 'active' | 'inactive',
 *             expires_at: string | null, created_at: string, last_used_at: string | null }} ApiKey
 * @typedef {{ webhook_id: string, account_id: string, url: string, secret: string, enabled: boolean, disabled_reason: string | null,
 *             description: string | null, failing_since: string | null, previous_secret_expires_at: string | null, created_at: string }} Webhook
 * @typedef {{ delivery_id: string, webhook_id: string, account_id: string, msg_id: string, msg_type: string, seq: number,
 *             status: 'pending' | 'succeeded' | 'failed', attempt_count: number, next_attempt_at: string | null,
 *             last_status_code: number | null, last_error: string | null, created_at: string, completed_at: string | null,
 *             webhook_url?: string }} Delivery
 * @typedef {{ connection_id: string, account_id: string | null, account_name: string | null, key_id: string | null, rooms: string[],
 *             state: string, connected_since: string, last_seq: number, remote_address: string | null, node: string }} Connection
 */

/** An HTTP error answer `{ error, code }` (or a network failure, code NETWORK_ERROR). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the request did not complete)
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export const session = {
  /** @returns {string | null} */
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  /** @param {string} token */
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/**
 * Call the admin API with the session token (or `token` when given, used to verify it at sign-in).
 * @param {string} method
 * @param {string} path e.g. '/admin/accounts'
 * @param {unknown} [body]
 * @param {string} [token]
 * @param {AbortSignal} [signal] cancels the call (a long poll when its view closes)
 * @returns {Promise<any>} the parsed JSON answer (undefined for 204)
 */
export async function request(method, path, body, token = session.token ?? '', signal) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', signal });
  } catch (err) {
    throw new ApiError(0, 'NETWORK_ERROR', `The server could not be reached (${/** @type {Error} */ (err).message})`);
  }
  const text = await res.text();
  /** @type {any} */
  let data;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const message = typeof data?.error === 'string' ? data.error : `HTTP ${res.status} ${res.statusText}`.trim();
    const code = typeof data?.code === 'string' ? data.code : `HTTP_${res.status}`;
    throw new ApiError(res.status, code, describeFields(message, data?.fields));
  }
  return data;
}

/**
 * Append validation details (`fields: [{ field, message }]`) to the message when present.
 * @param {string} message
 * @param {unknown} fields
 */
function describeFields(message, fields) {
  if (!Array.isArray(fields) || fields.length === 0) return message;
  const parts = fields.map((f) => `${f?.field ?? '?'}: ${f?.message ?? 'invalid'}`);
  return message.includes(parts[0]) ? message : `${message} (${parts.join('; ')})`;
}

/** Path segment for an id (ids are URL-safe already; encode anyway). */
export const seg = encodeURIComponent;
