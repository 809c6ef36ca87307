/**
 * The gateway: the `/ws` endpoint (the RFC 6455 handshake, then one WebSocketTransport +
 * WsInbound per socket; no `ws` server object: see ws-reader.ts), SSE streams (sse-stream.ts,
 * served by the HTTP route), the sweeper that enforces every connection's deadlines on one timer,
 * control messages from the bus and the store's access-change log (access-feed.ts), revocation
 * that holds on every node (revocation.ts), and the drain at shutdown. The protocol lives in
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
import type { AccessChange, AccessChangeLog, AccountStore, EventLog } from '../store/types.js';
import { AccessFeed } from './access-feed.js';
import { Connection, type ConnectionLimits } from './connection.js';
import type { Hub } from './hub.js';
import { Replayer } from './replay.js';
import { recheckKeys, Revocations } from './revocation.js';
import { Session } from './session.js';
import type { Transport } from './transport.js';
import { answerUpgrade, refuseUpgrade } from './ws-handshake.js';
import { WsInbound } from './ws-inbound.js';
import { WebSocketTransport } from './ws-transport.js';

/** How long an announcing admin call (revocation, account change) waits for every node's acknowledgement. */
const ANNOUNCE_TIMEOUT_MS = 2000;

/** Longest time queued outbound bytes may make no progress at all (see Connection.tick). */
const STALL_TIMEOUT_MS = 10_000;

/** A refused upgrade's socket may still error (reset by the peer): nothing to do but close. */
function ignoreSocketError(): void {}

export class Gateway {
  readonly revocations: Revocations;
  private readonly sweeper: NodeJS.Timeout;
  /** The store's access-change log, read by this node whatever the bus does. */
  private readonly feed: AccessFeed;
  /** Resolves once the node knows where the access-change log stands (before it serves anyone). */
  readonly started: Promise<void>;
  /** The session protocol (authenticate, subscribe, unsubscribe) for any transport. */
  readonly session: Session;
  private readonly limits: ConnectionLimits;
  private accepting = true;

  constructor(
    readonly hub: Hub,
    private readonly store: AccountStore & EventLog & AccessChangeLog,
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
    // Several nodes (a Redis bus): report how far this node applied the log, so that a node
    // announcing a change can wait for this one even when it cannot reach it over the bus.
    const reader = hub.bus.kind === 'redis' ? hub.bus.instance : null;
    this.feed = new AccessFeed(store, reader, { apply: (changes) => this.applyAccessChanges(changes), resync: () => this.resync() }, logger);
    this.started = this.feed.start();
    const replayer = new Replayer(store, this.revocations, metrics, config.maxOutboundBytes);
    this.session = new Session(store, hub, this.revocations, replayer, metrics, logger);

    const bus = hub.bus;
    bus.onControl((msg) => this.onControl(msg));
    bus.onReconnect(() => void this.onBusReconnect());
    bus.onHearing((hearing) => logger.warn({ hearing }, hearing ? 'bus heard again' : 'bus deaf: access changes keep coming from the store'));
    bus.setPresenceProvider(() => ({ node: hub.nodeId, connections: hub.list() }));
    const tick = Math.max(20, Math.min(1000, config.pingIntervalMs / 4, config.pongTimeoutMs / 4, config.authTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  /**
   * False once the drain began: new WebSocket upgrades are answered 503, new SSE streams a
   * `retry:` stream that ends at once (EventSource never retries after a 503: drainBounce).
   */
  get acceptingConnections(): boolean {
    return this.accepting;
  }

  /** Called by the HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    // Refusals end the socket AND destroy it once the answer is written (refuseUpgrade): the HTTP
    // server allows half-open sockets and times out none handed over for an upgrade, so a peer
    // that never closes would otherwise hold it, and keep a draining process from exiting.
    if (path !== '/ws') {
      socket.on('error', ignoreSocketError);
      refuseUpgrade(socket, 404, 'No WebSocket endpoint at this path: connect to /ws');
      return;
    }
    if (!this.accepting) {
      socket.on('error', ignoreSocketError);
      refuseUpgrade(socket, 503, 'Server shutting down: reconnect (another node will answer)', { 'Retry-After': '1' });
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
    // An upgrade accepted just before the drain began ends like the others.
    if (!this.accepting) conn.close(CloseCode.GOING_AWAY, 'server shutting down');
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
   * node has applied it (bounded wait), so nothing published after this returns reaches the key
   * anywhere. Returns the number of connections closed across the nodes that answered.
   */
  revokeKey(keyId: string, accountId: string, reason: KeyDisableReason): Promise<number> {
    return this.announce({ kind: 'key_disabled', key_id: keyId, account_id: accountId, reason });
  }

  /** A key was re-activated: drop its tombstones everywhere. */
  async keyEnabled(keyId: string): Promise<void> {
    await this.announce({ kind: 'key_enabled', key_id: keyId });
  }

  /** The account's rooms changed (the store was updated): every node refreshes its view of it. */
  async accountChanged(accountId: string): Promise<void> {
    await this.announce({ kind: 'account_changed', account_id: accountId });
  }

  /** The account was deleted (from the store): every node closes its connections. */
  async accountDeleted(accountId: string): Promise<void> {
    await this.announce({ kind: 'account_deleted', account_id: accountId });
  }

  /**
   * Apply a change of access on this node and every other, after the store was updated (which
   * logged it). Returns once every node has applied it, at most ANNOUNCE_TIMEOUT_MS: each node
   * that received it over the bus acknowledges there, and each node reading the store's
   * access-change log reports its position; a node counts once it did either. So the call
   * answers "done" also when this node, or another, could not use the bus (SPEC §2.5, §7). A node
   * that did neither in time (stopped, cut off from both) is logged; it applies the change when
   * it reads the bus or the log again, and bus order puts the change before any later event.
   */
  private async announce(message: ControlMessage): Promise<number> {
    const deadline = Date.now() + ANNOUNCE_TIMEOUT_MS;
    const result = await this.hub.bus.broadcastControl(message, ANNOUNCE_TIMEOUT_MS);
    const readersApplied = this.feed.reader === null || (await this.feed.waitForReaders(new Set(result.ackedBy), deadline));
    if (!readersApplied || (result.published && result.acknowledged < result.receivers)) {
      const { ackedBy: _ackedBy, ...counts } = result;
      this.logger.warn({ kind: message.kind, ...counts, readers_applied: readersApplied }, 'access change not acknowledged by every node in time');
    }
    return result.affected;
  }

  /**
   * Changes read from the store's access-change log, in id order. Only the latest of each key (and
   * of each account) in the page is applied: changes of one key commit in id order, so it is the
   * key's state as of this read, and an older one applied again (it usually arrived over the bus
   * already) must not close a connection made after a later reactivation.
   */
  private applyAccessChanges(changes: AccessChange[]): Promise<void> | void {
    this.store.forgetCachedAuth();
    const latest = new Map<string, AccessChange>();
    for (const change of changes) latest.set(change.key_id !== null ? `k ${change.key_id}` : `a ${change.account_id}`, change);
    const pending: Promise<unknown>[] = [];
    for (const change of latest.values()) {
      const applied = this.onControl(controlOf(change));
      if (applied instanceof Promise) pending.push(applied);
    }
    if (pending.length > 0) return Promise.all(pending).then(() => undefined);
  }

  /** The log was pruned past this node's cursor: re-check every key and account held here. */
  private async resync(): Promise<void> {
    await recheckKeys(this.store, this.hub, (keyId, reason) => this.keyDisabled(keyId, reason), this.logger);
    for (const accountId of this.hub.accountIds()) await this.refreshAccount(accountId);
  }

  /** Close one connection, on whichever node holds it (1000, "disconnected by operator"). */
  async disconnect(connectionId: string): Promise<boolean> {
    if (this.hub.disconnect(connectionId)) return true;
    const result = await this.hub.bus.broadcastControl({ kind: 'disconnect', connection_id: connectionId }, ANNOUNCE_TIMEOUT_MS);
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
   * The bus was deaf: control messages may have been missed. Read the access-change log (every
   * key and account change since the last read) BEFORE catching up on events, so a key disabled
   * meanwhile receives nothing more (SPEC §2.5, §7).
   */
  private async onBusReconnect(): Promise<void> {
    await this.feed.readNow();
    await this.hub.catchUpAll();
  }

  /** Auth deadline, key expiry, keepalive and outbound stalls of every connection, on one timer. */
  sweep(now = Date.now()): void {
    for (const conn of this.hub.connections) conn.tick(now);
    this.revocations.prune(now);
  }

  /** The drain began: refuse new connections (see acceptingConnections) from now on; the listener stays open meanwhile. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Graceful shutdown (SPEC §5): refuse new connections, then close every connection with 1001,
   * spread evenly over `drainMs` so that their clients do not all reconnect (elsewhere) in the
   * same instant. Connections keep receiving events and being swept (revocation, expiry, slow
   * consumers) until their turn. Then wait up to `graceMs` for the closing handshakes and cut
   * whatever is left.
   */
  async shutdown(drainMs = 0, graceMs = 3000): Promise<void> {
    this.accepting = false;
    await this.closeSpread(drainMs);
    clearInterval(this.sweeper);
    this.feed.stop();
    const deadline = Date.now() + graceMs;
    while (this.hub.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const conn of this.hub.connections) conn.transport.cut();
  }

  /** Close connection i of n at i·drainMs/n (one timer per batch due, never one per connection). */
  private async closeSpread(drainMs: number): Promise<void> {
    const order = [...this.hub.connections];
    const start = Date.now();
    let next = 0;
    while (next < order.length) {
      const elapsed = Date.now() - start;
      const due = drainMs <= 0 ? order.length : Math.min(order.length, Math.floor((elapsed / drainMs) * order.length) + 1);
      for (; next < due; next++) order[next].close(CloseCode.GOING_AWAY, 'server shutting down');
      // Sleep until the next one is due (at least 10 ms: thousands of connections close in batches).
      if (next < order.length) await new Promise((r) => setTimeout(r, Math.max(10, start + (next / order.length) * drainMs - Date.now())));
    }
    // Connections that arrived meanwhile (an upgrade accepted just before the drain began).
    this.hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down');
  }
}

/** A change read from the log, as the control message the bus carries for it. */
function controlOf(change: AccessChange): ControlMessage {
  switch (change.kind) {
    case 'key_disabled':
      return { kind: 'key_disabled', key_id: change.key_id!, account_id: change.account_id, reason: change.reason ?? 'inactive' };
    case 'key_enabled':
      return { kind: 'key_enabled', key_id: change.key_id! };
    case 'account_changed':
      return { kind: 'account_changed', account_id: change.account_id };
    case 'account_deleted':
      return { kind: 'account_deleted', account_id: change.account_id };
  }
}
