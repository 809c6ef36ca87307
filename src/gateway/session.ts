/**
 * The session protocol of a connection, whatever its transport (SPEC §2.3-§2.5, §2.8):
 * authenticate, subscribe (with or without resume), unsubscribe. Each step drives the
 * Connection's transitions; every transition after an await re-validates.
 */
import { AUTH_METHOD_API_KEY, CloseCode, ErrorCode, isRoom, type Room } from '@tpx-realtime/protocol';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AccountStore } from '../store/types.js';
import { authFailure } from './auth-errors.js';
import type { Connection, KeyGuard } from './connection.js';
import { controlFrame } from './frames.js';
import type { Hub } from './hub.js';
import type { Replayer } from './replay.js';
import { roomMask } from './rooms.js';

/** RFC 6455 "Try Again Later": a retryable close (the SDK reconnects with backoff). */
const TRY_AGAIN_LATER = 1013;

/** The store could not serve the step (database unreachable or not answering in time). */
const isStoreUnavailable = (err: unknown): boolean => (err as Error | null)?.name === 'StoreUnavailableError';

export class Session {
  constructor(
    private readonly store: AccountStore,
    private readonly hub: Hub,
    private readonly guard: KeyGuard,
    private readonly replayer: Replayer,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /**
   * awaiting_auth → authenticating → (key lookup) → authorized and reachable by revocation →
   * (the account's preparation on this node) → live.
   */
  async authenticate(conn: Connection, token: string): Promise<void> {
    if (!conn.beginAuthentication()) {
      if (conn.isLive) conn.sendError(ErrorCode.INVALID_MESSAGE, 'Connection is already authenticated');
      return;
    }
    let result: Awaited<ReturnType<AccountStore['lookupToken']>>;
    try {
      result = await this.store.lookupToken(token);
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      this.tryAgainLater(conn, err);
      return;
    }
    if (conn.isClosing) return;
    if (!result.ok) {
      const { code, message } = authFailure(result.reason);
      conn.fail(code, message, CloseCode.AUTH_FAILED);
      return;
    }
    const { key, account } = result;
    const expiresAtMs = key.expires_at ? Date.parse(key.expires_at) : Infinity;
    if (!conn.authorize({ accountId: account.account_id, keyId: key.key_id, expiresAtMs }, this.guard)) return;
    // From here a revocation finds this connection by key, even while it still waits below.
    this.hub.trackKey(conn);
    const { local, ready } = this.hub.join(conn, account);
    if (ready) {
      try {
        await ready;
      } catch (err) {
        // The account could not be prepared here (its baseline could not be read): the client
        // comes back later, as after any outage, rather than hearing "internal error".
        this.tryAgainLater(conn, err);
        return;
      }
    }
    if (!conn.goLive(this.guard) || !local.attach(conn)) {
      local.leave(conn);
      if (!conn.isClosing) conn.close(1011, 'internal error');
      return;
    }
    conn.send('authenticated', controlFrame('authenticated', { account_id: account.account_id, auth_method: AUTH_METHOD_API_KEY }));
    // debug, not info: at thousands of connects per second a line each is noise; metrics count them.
    // (Checked first: the record object and the id string are not built for nothing.)
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ conn: conn.id, account_id: account.account_id, key_id: key.key_id }, 'connection authenticated');
  }

  async subscribe(conn: Connection, requested: readonly string[], afterSeq: number | undefined): Promise<void> {
    if (!this.requireLive(conn)) return;
    const rooms = this.validRooms(conn, requested);
    if (!rooms) return;
    const accountId = conn.accountId!;
    const accessMask = this.hub.accessMaskOf(accountId);
    const granted = rooms.filter((room) => (roomMask(room) & accessMask) !== 0);
    if (granted.length === 0) {
      conn.sendError(ErrorCode.NO_VALID_ROOMS, 'None of the requested rooms is accessible to this account', { rooms });
      return;
    }
    this.metrics.subscriptions.inc(conn.subscribe(granted));
    if (afterSeq === undefined) {
      // Every event after this position reaches the connection (SPEC §2.8 `last_seq`).
      const lastSeq = Math.max(this.hub.positionOf(accountId), conn.lastSeq);
      conn.send('subscribed', controlFrame('subscribed', { rooms: granted, last_seq: lastSeq }), lastSeq);
      return;
    }
    try {
      await this.replayer.run(conn, { granted, afterSeq });
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      this.tryAgainLater(conn, err);
    }
  }

  /**
   * The store cannot serve this step now: an `error` frame (UNAVAILABLE) and close 1013 "try again
   * later", which the SDK retries with backoff; SSE answers a stream that ends at once with the
   * same error, `retry:` and `: close 1013` (docs/decisions.md).
   */
  private tryAgainLater(conn: Connection, err: unknown): void {
    this.logger.debug({ conn: conn.id, err: (err as Error)?.message }, 'connection refused for now: store unavailable');
    if (!conn.isClosing) conn.fail(ErrorCode.UNAVAILABLE, 'Service temporarily unavailable: reconnect later', TRY_AGAIN_LATER);
  }

  unsubscribe(conn: Connection, requested: readonly string[]): void {
    if (!this.requireLive(conn)) return;
    const rooms = this.validRooms(conn, requested);
    if (!rooms) return;
    this.metrics.subscriptions.dec(conn.unsubscribe(rooms));
    conn.send('unsubscribed', controlFrame('unsubscribed', { rooms }));
  }

  /** True when the connection is live; otherwise AUTH_REQUIRED (unless it is closing) and false. */
  requireLive(conn: Connection): boolean {
    if (conn.isLive) return true;
    if (!conn.isClosing) {
      conn.sendError(ErrorCode.AUTH_REQUIRED, 'Authenticate first: send {"msg_type":"authenticate","payload":{"token":"tp_live_…"}}');
    }
    return false;
  }

  /** The requested names, de-duplicated in request order; null (and INVALID_ROOM) if any is not a room. */
  private validRooms(conn: Connection, requested: readonly string[]): Room[] | null {
    const unique = [...new Set(requested)];
    const invalid = unique.filter((r) => !isRoom(r));
    if (invalid.length > 0) {
      conn.sendError(ErrorCode.INVALID_ROOM, `Unknown room(s): ${invalid.join(', ')}`, { rooms: invalid });
      return null;
    }
    return unique as Room[];
  }
}
