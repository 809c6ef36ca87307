/**
 * The `/ws` endpoint: upgrades, the per-connection protocol state machine (SPEC §2), resume
 * (§2.8), keepalive and auth deadlines (one sweeper for all connections: no timer per socket),
 * and inbound rate limiting.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { parseClientMessage, type SubscribeMessage, type UnsubscribeMessage } from '@tpx-realtime/protocol';
import { AUTH_METHOD_API_KEY, CloseCode, ErrorCode, isRoom, type Room } from '@tpx-realtime/protocol';
import type { Store } from '../store/types.js';
import type { ControlMessage } from '../bus/types.js';
import { authFailure } from './auth-errors.js';
import { Connection } from './connection.js';
import { controlFrame, errorFrame, eventFrameJson, preframe } from './frames.js';
import { Hub } from './hub.js';
import { roomMask, typesOfMask } from './rooms.js';

const REPLAY_PAGE = 500;

export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;
  /** Keys disabled recently, so an authentication racing the disable cannot slip through. */
  private readonly recentlyDisabled = new Map<string, { reason: 'inactive' | 'revoked' | 'expired'; at: number }>();

  constructor(
    readonly hub: Hub,
    private readonly store: Store,
    private readonly config: Config,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.maxMessageBytes,
      perMessageDeflate: false, // frames are pre-built once and shared by every socket
      clientTracking: false,
    });
    const bus = hub.bus;
    bus.onControl((msg) => void this.onControl(msg));
    bus.onReconnect(() => void this.onBusReconnect());
    bus.setPresenceProvider(() => ({ node: hub.nodeId, connections: hub.list() }));
    const tick = Math.max(20, Math.min(1000, config.pingIntervalMs / 4, config.pongTimeoutMs / 4, config.authTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  /** Called by the HTTP server's `upgrade` event. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (!this.accepting) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  /** Remember a disabled key for a few seconds (see recentlyDisabled). */
  keyDisabled(keyId: string, reason: 'inactive' | 'revoked' | 'expired'): number {
    this.recentlyDisabled.set(keyId, { reason, at: Date.now() });
    return this.hub.disableKey(keyId, reason);
  }

  keyEnabled(keyId: string): void {
    this.recentlyDisabled.delete(keyId);
  }

  private onConnection(ws: WebSocket): void {
    const now = Date.now();
    const conn = new Connection(
      ws,
      now,
      this.config.authTimeoutMs,
      this.config.pingIntervalMs,
      this.config.rateLimitPerSec * 2,
      this.config.maxOutboundBytes,
    );
    this.hub.add(conn);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('pong', () => {
      conn.pingOutstandingSince = 0;
    });
    ws.on('error', (err) => {
      // ws closes with 1009 on oversized frames and reports it here; nothing else to do.
      this.logger.debug({ conn: conn.id, err: err.message }, 'websocket error');
    });
    ws.on('close', (code) => {
      this.hub.remove(conn);
      conn.state = 'closing';
      this.logger.debug({ conn: conn.id, account_id: conn.accountId, code }, 'connection closed');
    });
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.closing) return;
    if (!this.takeToken(conn)) {
      this.metrics.errors.inc({ code: ErrorCode.RATE_LIMITED });
      this.metrics.closes.inc({ code: String(CloseCode.POLICY) });
      conn.fail(ErrorCode.RATE_LIMITED, 'Too many messages: slow down', CloseCode.POLICY);
      return;
    }
    if (isBinary) {
      this.sendError(conn, ErrorCode.INVALID_MESSAGE, 'Binary frames are not supported; send UTF-8 JSON text frames');
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString('utf8');
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      this.sendError(conn, parsed.code, parsed.error);
      return;
    }
    const msg = parsed.message;
    // Liveness messages bypass the ordered queue so a long replay never causes a false 4003.
    if (msg.msg_type === 'pong') {
      conn.pingOutstandingSince = 0;
      return;
    }
    if (msg.msg_type === 'ping') {
      conn.sendText(controlFrame('pong', {}));
      return;
    }
    conn.inbound = conn.inbound
      .then(async () => {
        if (conn.closing) return;
        if (msg.msg_type === 'authenticate') return this.authenticate(conn, msg.payload.token);
        if (conn.state !== 'authenticated') {
          this.sendError(conn, ErrorCode.AUTH_REQUIRED, 'Authenticate first: send {"msg_type":"authenticate","payload":{"token":"tp_live_…"}}');
          return;
        }
        if (msg.msg_type === 'subscribe') return this.subscribe(conn, msg);
        if (msg.msg_type === 'unsubscribe') return this.unsubscribe(conn, msg);
      })
      .catch((err) => {
        this.logger.error({ err, conn: conn.id }, 'error handling message');
        if (conn.isOpen) conn.close(1011, 'internal error');
      });
  }

  private takeToken(conn: Connection): boolean {
    const now = Date.now();
    const rate = this.config.rateLimitPerSec;
    conn.tokens = Math.min(rate * 2, conn.tokens + ((now - conn.tokensAt) * rate) / 1000);
    conn.tokensAt = now;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  private sendError(conn: Connection, code: string, message: string, extra?: Record<string, unknown>): void {
    this.metrics.errors.inc({ code });
    conn.sendText(errorFrame(code, message, extra));
  }

  private async authenticate(conn: Connection, token: string): Promise<void> {
    if (conn.state === 'authenticated') {
      this.sendError(conn, ErrorCode.INVALID_MESSAGE, 'Connection is already authenticated');
      return;
    }
    const startedAt = Date.now();
    const result = await this.store.lookupToken(token);
    if (conn.closing) return;
    if (!result.ok) {
      const { code, message: text } = authFailure(result.reason);
      this.metrics.errors.inc({ code });
      this.metrics.closes.inc({ code: String(CloseCode.AUTH_FAILED) });
      conn.fail(code, text, CloseCode.AUTH_FAILED);
      return;
    }
    const disabled = this.recentlyDisabled.get(result.key.key_id);
    if (disabled && disabled.at >= startedAt - 50) {
      const code = disabled.reason === 'inactive' ? ErrorCode.AUTH_API_KEY_INACTIVE : disabled.reason === 'expired' ? ErrorCode.AUTH_API_KEY_EXPIRED : ErrorCode.AUTH_INVALID_API_KEY;
      conn.fail(code, 'API key is no longer valid', CloseCode.AUTH_FAILED);
      return;
    }
    conn.keyExpiresAtMs = result.key.expires_at ? Date.parse(result.key.expires_at) : null;
    const accountId = result.account.account_id;
    const preparing = this.hub.prepareAccount(accountId);
    const baseline = preparing ? await preparing : undefined;
    if (conn.closing) {
      if (preparing) this.hub.abandonPreparation(accountId);
      return;
    }
    this.hub.attach(conn, result.account, result.key.key_id, baseline);
    conn.sendText(controlFrame('authenticated', { account_id: result.account.account_id, auth_method: AUTH_METHOD_API_KEY }));
    // debug, not info: at thousands of connects per second a line each is noise; metrics count them.
    this.logger.debug({ conn: conn.id, account_id: result.account.account_id, key_id: result.key.key_id }, 'connection authenticated');
  }

  private async subscribe(conn: Connection, msg: SubscribeMessage): Promise<void> {
    const requested = msg.payload.rooms;
    const invalid = [...new Set(requested.filter((r) => !isRoom(r)))];
    if (invalid.length > 0) {
      this.sendError(conn, ErrorCode.INVALID_ROOM, `Unknown room(s): ${invalid.join(', ')}`, { rooms: invalid });
      return;
    }
    const accessMask = this.hub.accessMaskOf(conn.accountId!);
    const granted: Room[] = [];
    for (const room of new Set(requested as Room[])) {
      if ((roomMask(room) & accessMask) !== 0) granted.push(room);
    }
    if (granted.length === 0) {
      this.sendError(conn, ErrorCode.NO_VALID_ROOMS, 'None of the requested rooms is accessible to this account', {
        rooms: [...new Set(requested)],
      });
      return;
    }
    let added = 0;
    for (const room of granted) {
      if (!conn.rooms.has(room)) {
        conn.rooms.add(room);
        added++;
      }
      conn.subscribedMask |= roomMask(room);
    }
    this.metrics.subscriptions.inc(added);
    const afterSeq = msg.payload.after_seq;
    if (afterSeq === undefined) {
      conn.sendText(controlFrame('subscribed', { rooms: granted }));
      return;
    }
    await this.replay(conn, granted, afterSeq);
  }

  /**
   * Resume (SPEC §2.8): live events are buffered from before the first store read, history is
   * sent in seq order, then the buffer is drained skipping what was already sent: no gap, no
   * duplicate across the switch. A buffer overflow simply means "read the store again".
   */
  private async replay(conn: Connection, granted: Room[], afterSeq: number): Promise<void> {
    const accountId = conn.accountId!;
    conn.replayBuffer = [];
    conn.replayOverflow = false;
    if (conn.lastSeq < afterSeq) conn.lastSeq = afterSeq;
    let first = true;
    try {
      for (;;) {
        const types = new Set(typesOfMask(conn.subscribedMask & this.hub.accessMaskOf(accountId)));
        const page = await this.store.readEvents({ account_id: accountId, after_seq: conn.lastSeq, types, limit: REPLAY_PAGE });
        if (conn.closing) return;
        if (first) {
          first = false;
          const payload: Record<string, unknown> = { rooms: granted, resumed_from: afterSeq };
          if (afterSeq < page.pruned_through) payload.gap = { from_seq: afterSeq + 1, to_seq: page.pruned_through };
          conn.sendText(controlFrame('subscribed', payload));
        }
        const sentAt = Date.now();
        let written = 0;
        for (const event of page.events) {
          if (event.seq <= conn.lastSeq) continue;
          // Pace the replay by the socket instead of tripping the slow-consumer limit.
          if (conn.queuedBytes > this.config.maxOutboundBytes / 4) {
            conn.flush();
            await conn.waitForDrain();
            if (conn.closing) return;
          }
          if (!this.hub.write(conn, preframe(eventFrameJson(event, sentAt)))) return;
          conn.lastSeq = event.seq;
          written++;
        }
        this.metrics.eventsOut.inc(written);
        if (page.events.length === REPLAY_PAGE) continue;
        if (conn.replayOverflow) {
          conn.replayOverflow = false;
          conn.replayBuffer = [];
          continue;
        }
        // Drain what arrived live meanwhile, synchronously, then go live.
        const buffered = conn.replayBuffer ?? [];
        for (const item of buffered) {
          if (item.seq <= conn.lastSeq || (conn.subscribedMask & item.mask) === 0) continue;
          if (!this.hub.write(conn, item.frame)) return;
          conn.lastSeq = item.seq;
        }
        return;
      }
    } finally {
      conn.replayBuffer = null;
    }
  }

  private unsubscribe(conn: Connection, msg: UnsubscribeMessage): void {
    const requested = msg.payload.rooms;
    const invalid = [...new Set(requested.filter((r) => !isRoom(r)))];
    if (invalid.length > 0) {
      this.sendError(conn, ErrorCode.INVALID_ROOM, `Unknown room(s): ${invalid.join(', ')}`, { rooms: invalid });
      return;
    }
    const removed: Room[] = [];
    for (const room of new Set(requested as Room[])) {
      if (conn.rooms.delete(room)) removed.push(room);
      else if (!removed.includes(room)) removed.push(room);
    }
    const before = conn.rooms.size;
    let mask = 0;
    for (const room of conn.rooms) mask |= roomMask(room);
    conn.subscribedMask = mask;
    this.metrics.subscriptions.dec(Math.max(0, removed.length - (conn.rooms.size - before)));
    conn.sendText(controlFrame('unsubscribed', { rooms: removed }));
  }

  /** Control messages from any node (this one included: both buses loop back). */
  private async onControl(msg: ControlMessage): Promise<void> {
    try {
      if (msg.kind === 'key_disabled') this.keyDisabled(msg.key_id, msg.reason);
      else if (msg.kind === 'account_deleted') this.hub.accountDeleted(msg.account_id);
      else if (msg.kind === 'account_changed' && this.hub.hasAccount(msg.account_id)) {
        const account = await this.store.getAccount(msg.account_id);
        if (account) this.hub.accountChanged(account);
        else this.hub.accountDeleted(msg.account_id);
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, kind: msg.kind }, 'control message failed');
    }
  }

  /**
   * The bus was down: control messages may have been missed. Re-check every key and account with
   * live connections here against the store BEFORE catching up on events, so a key disabled
   * meanwhile receives nothing more (SPEC §2.5, §7).
   */
  private async onBusReconnect(): Promise<void> {
    const now = Date.now();
    try {
      for (const keyId of this.hub.keyIds()) {
        const key = await this.store.getApiKey(keyId);
        if (!key) this.keyDisabled(keyId, 'revoked');
        else if (key.status !== 'active') this.keyDisabled(keyId, 'inactive');
        else if (key.expires_at && Date.parse(key.expires_at) <= now) this.keyDisabled(keyId, 'expired');
      }
      for (const accountId of this.hub.accountIds()) {
        const account = await this.store.getAccount(accountId);
        if (account) this.hub.accountChanged(account);
        else this.hub.accountDeleted(accountId);
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 're-checking keys after bus reconnect failed');
    }
    await this.hub.catchUpAll();
  }

  /** Auth deadline, keepalive and key expiry for every connection, on one timer. */
  private sweep(): void {
    const now = Date.now();
    const { pingIntervalMs, pongTimeoutMs } = this.config;
    for (const conn of this.hub.connections) {
      if (conn.state === 'closing') continue;
      if (conn.state === 'awaiting_auth' && now >= conn.authDeadline) {
        this.metrics.closes.inc({ code: String(CloseCode.AUTH_TIMEOUT) });
        conn.close(CloseCode.AUTH_TIMEOUT, 'authentication timeout');
        continue;
      }
      if (conn.keyExpiresAtMs !== null && now >= conn.keyExpiresAtMs) {
        this.metrics.closes.inc({ code: String(CloseCode.AUTH_FAILED) });
        conn.fail(ErrorCode.AUTH_API_KEY_EXPIRED, 'API key expired', CloseCode.AUTH_FAILED);
        continue;
      }
      if (conn.pingOutstandingSince !== 0 && now - conn.pingOutstandingSince >= pongTimeoutMs) {
        this.metrics.closes.inc({ code: String(CloseCode.KEEPALIVE_TIMEOUT) });
        conn.close(CloseCode.KEEPALIVE_TIMEOUT, 'keepalive timeout: no pong');
        continue;
      }
      if (now >= conn.nextPingAt) {
        conn.nextPingAt = now + pingIntervalMs;
        if (conn.pingOutstandingSince === 0) conn.pingOutstandingSince = now;
        conn.sendText(controlFrame('ping', {}));
      }
    }
    for (const [keyId, entry] of this.recentlyDisabled) {
      if (now - entry.at > 10_000) this.recentlyDisabled.delete(keyId);
    }
  }

  /** Stop accepting; close every connection with 1001 and wait briefly for the close handshakes. */
  async shutdown(timeoutMs = 3000): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    this.hub.closeAll(CloseCode.GOING_AWAY, 'server shutting down');
    const deadline = Date.now() + timeoutMs;
    while (this.hub.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const conn of this.hub.connections) conn.cut();
    this.wss.close();
  }
}

