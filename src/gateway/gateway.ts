/**
 * The gateway: the `/ws` endpoint (the RFC 6455 handshake, then one WebSocketTransport +
 * WsInbound per socket; no `ws` server object: see ws-reader.ts), the
 * sweeper that enforces every connection's deadlines on one timer, control messages from the
 * bus, and revocation that holds on every node (revocation.ts). The protocol lives in
 * session.ts, resume in replay.ts, ordering in sequencer.ts, per-account lifecycle in
 * local-account.ts, the per-connection state machine in connection.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '@tpx-realtime/protocol';
import type { ControlMessage, KeyDisableReason } from '../bus/types.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AccountStore, EventLog } from '../store/types.js';
import { Connection, type ConnectionLimits } from './connection.js';
import type { Hub } from './hub.js';
import { Replayer } from './replay.js';
import { KeyStatusWatch, Revocations } from './revocation.js';
import { Session } from './session.js';
import type { Transport } from './transport.js';
import { answerUpgrade, refuseUpgrade } from './ws-handshake.js';
import { WsInbound } from './ws-inbound.js';
import { WebSocketTransport } from './ws-transport.js';

/** How long a revoking admin call waits for every node's acknowledgement. */
const REVOKE_ACK_TIMEOUT_MS = 2000;
/** While deaf to the bus, key status is re-read from the store this often (SPEC §7: within 2 s). */
const DEAF_RECHECK_MS = 500;

/** Longest time queued outbound bytes may make no progress at all (see Connection.tick). */
const STALL_TIMEOUT_MS = 10_000;

/** A refused upgrade's socket may still error (reset by the peer): nothing to do but close. */
function ignoreSocketError(): void {}

export class Gateway {
  readonly revocations: Revocations;
  private readonly sweeper: NodeJS.Timeout;
  private readonly watch: KeyStatusWatch;
  /** The session protocol (authenticate, subscribe, unsubscribe) for any transport. */
  readonly session: Session;
  private readonly limits: ConnectionLimits;
  private accepting = true;

  constructor(
    readonly hub: Hub,
    private readonly store: AccountStore & EventLog,
    private readonly config: Config,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.limits = {
      authTimeoutMs: config.authTimeoutMs,
      pingIntervalMs: config.pingIntervalMs,
      pongTimeoutMs: config.pongTimeoutMs,
      // A TCP peer that takes nothing at all for 10 s is not reading (ws servers commonly use a
      // write timeout of 1-10 s); the pong timeout is the cap when it is set lower.
      stallTimeoutMs: Math.min(config.pongTimeoutMs, STALL_TIMEOUT_MS),
      replayBufferBytes: config.maxOutboundBytes,
    };
    this.revocations = new Revocations(config.authTimeoutMs + 5000);
    this.watch = new KeyStatusWatch(store, hub, (keyId, reason) => this.keyDisabled(keyId, reason), DEAF_RECHECK_MS, logger);
    const replayer = new Replayer(store, hub, this.revocations, metrics, config.maxOutboundBytes);
    this.session = new Session(store, hub, this.revocations, replayer, metrics, logger);

    const bus = hub.bus;
    bus.onControl((msg) => this.onControl(msg));
    bus.onReconnect(() => void this.onBusReconnect());
    bus.onHearing((hearing) => this.watch.setDeaf(!hearing));
    if (!bus.hearing) this.watch.setDeaf(true);
    bus.setPresenceProvider(() => ({ node: hub.nodeId, connections: hub.list() }));
    const tick = Math.max(20, Math.min(1000, config.pingIntervalMs / 4, config.pongTimeoutMs / 4, config.authTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  /** Called by the HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws') {
      socket.on('error', ignoreSocketError);
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (!this.accepting) {
      socket.on('error', ignoreSocketError);
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const answer = answerUpgrade(req);
    if (!answer.ok) {
      socket.on('error', ignoreSocketError);
      refuseUpgrade(socket, answer.status, answer.message, answer.headers);
      return;
    }
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return;
    }
    this.onConnection(socket as Socket, answer.response, head);
  }

  /**
   * A new connection over any transport, registered with the hub and swept for its deadlines.
   * The transport's owner drives it through `session` (authenticate, subscribe, unsubscribe)
   * and calls `closed` when the transport is gone.
   */
  open(transport: Transport, now = Date.now()): Connection {
    const conn = new Connection(transport, now, this.limits, this.metrics);
    this.hub.add(conn);
    return conn;
  }

  closed(conn: Connection): void {
    conn.transportClosed();
    this.hub.remove(conn);
  }

  /** A WebSocket after its handshake: frames in (WsInbound, rate limited and queued), frames out. */
  private onConnection(socket: Socket, response: Buffer, head: Buffer): void {
    const now = Date.now();
    const transport = new WebSocketTransport(socket, this.config.maxOutboundBytes, this.config.maxMessageBytes);
    const conn = this.open(transport, now);
    transport.start(new WsInbound(conn, transport, this.session, this.config.rateLimitPerSec, this.logger, now, this.wsClosed), response, head);
  }

  /** Shared by every WebSocket connection (no closure per connection). */
  private readonly wsClosed = (conn: Connection): void => {
    this.closed(conn);
    if (this.logger.isLevelEnabled('debug')) this.logger.debug({ conn: conn.id, account_id: conn.accountId }, 'connection closed');
  };

  // ---------------------------------------------------------------- revocation

  /** Apply a key's disable on this node: remember it (tombstone), close its connections. */
  keyDisabled(keyId: string, reason: KeyDisableReason): number {
    this.revocations.keyDisabled(keyId, reason);
    return this.hub.disableKey(keyId, reason);
  }

  /**
   * Disable a key on every node (the admin API, after the store was updated). Returns once every
   * node that hears the bus has applied it (bounded wait), so nothing published after this
   * returns reaches the key anywhere; nodes that cannot hear re-check the store within a second.
   * Returns the number of connections closed across the nodes that answered.
   */
  async revokeKey(keyId: string, accountId: string, reason: KeyDisableReason): Promise<number> {
    const result = await this.hub.bus.broadcastControl({ kind: 'key_disabled', key_id: keyId, account_id: accountId, reason }, REVOKE_ACK_TIMEOUT_MS);
    if (!result.published || result.acknowledged < result.receivers) {
      this.logger.warn({ key_id: keyId, ...result }, 'key disable not acknowledged by every node; deaf nodes re-check the store');
    }
    return result.affected;
  }

  /** A key was re-activated: drop its tombstones everywhere. */
  async keyEnabled(keyId: string): Promise<void> {
    await this.hub.bus.broadcastControl({ kind: 'key_enabled', key_id: keyId }, REVOKE_ACK_TIMEOUT_MS);
  }

  /** Close one connection, on whichever node holds it (1000, "disconnected by operator"). */
  async disconnect(connectionId: string): Promise<boolean> {
    if (this.hub.disconnect(connectionId)) return true;
    const result = await this.hub.bus.broadcastControl({ kind: 'disconnect', connection_id: connectionId }, REVOKE_ACK_TIMEOUT_MS);
    return result.affected > 0;
  }

  /** Control messages from any node (this one included: both buses apply locally). */
  private onControl(msg: ControlMessage): number | Promise<number> {
    switch (msg.kind) {
      case 'key_disabled':
        return this.keyDisabled(msg.key_id, msg.reason);
      case 'key_enabled':
        this.revocations.keyEnabled(msg.key_id);
        return 0;
      case 'account_deleted':
        this.revocations.accountDeleted(msg.account_id);
        return this.hub.accountDeleted(msg.account_id);
      case 'account_changed':
        return this.refreshAccount(msg.account_id).then(() => 0);
      case 'disconnect':
        return this.hub.disconnect(msg.connection_id) ? 1 : 0;
    }
  }

  private async refreshAccount(accountId: string): Promise<void> {
    if (!this.hub.hasAccount(accountId)) return;
    try {
      const account = await this.store.getAccount(accountId);
      if (account) this.hub.accountChanged(account);
      else {
        this.revocations.accountDeleted(accountId);
        this.hub.accountDeleted(accountId);
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, account_id: accountId }, 'account refresh failed');
    }
  }

  /**
   * The bus was deaf: control messages may have been missed. Re-check every key and account with
   * connections here against the store BEFORE catching up on events, so a key disabled
   * meanwhile receives nothing more (SPEC §2.5, §7).
   */
  private async onBusReconnect(): Promise<void> {
    await this.watch.checkAll();
    for (const accountId of this.hub.accountIds()) await this.refreshAccount(accountId);
    await this.hub.catchUpAll();
  }

  /** Auth deadline, key expiry, keepalive and outbound stalls of every connection, on one timer. */
  sweep(now = Date.now()): void {
    for (const conn of this.hub.connections) conn.tick(now);
    this.revocations.prune(now);
  }

  /** Stop accepting; close every connection with 1001 and wait briefly for the close handshakes. */
  async shutdown(timeoutMs = 3000): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    this.watch.stop();
    this.hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down');
    const deadline = Date.now() + timeoutMs;
    while (this.hub.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const conn of this.hub.connections) conn.transport.cut();
  }
}
