/**
 * What a WebSocket client sends (SPEC §2.1, §2.7): rate limiting, parsing, and a bounded queue
 * that hands messages to the session strictly in order, even across asynchronous lookups.
 *
 * Inbound backpressure: when INBOUND_HIGH_WATER messages wait (e.g. behind a replay paced by a
 * slow reader), the transport stops reading the socket, so TCP pushes back on the client
 * instead of the server queueing without bound; it reads again once the queue is down to
 * INBOUND_LOW_WATER. Frames already read when reading stops are still queued; a queue past
 * INBOUND_HARD_LIMIT (only reachable with a very high TPX_RATE_LIMIT_PER_SEC) closes with 1008.
 * `ping`/`pong` bypass the queue so a long replay never causes a false keepalive timeout.
 */
import { CloseCode, ErrorCode, parseClientMessage, type ClientMessage } from '@tpx-realtime/protocol';
import type { Logger } from '../observability/logger.js';
import type { Connection } from './connection.js';
import { controlFrame } from './frames.js';
import type { Session } from './session.js';
import type { WebSocketEvents, WebSocketTransport } from './ws-transport.js';

const INBOUND_HIGH_WATER = 32;
const INBOUND_LOW_WATER = 8;
const INBOUND_HARD_LIMIT = 1024;

/**
 * A subscribe or unsubscribe of the wrong shape that arrived before the connection was live: its
 * answer depends on whether the messages queued before it authenticate the connection
 * (INVALID_MESSAGE) or not (AUTH_REQUIRED, SPEC §2.5), so it waits in order with them.
 */
interface MisshapenBeforeAuth {
  msg_type: 'misshapen';
  error: string;
}

type QueuedMessage = Exclude<ClientMessage, { msg_type: 'ping' | 'pong' }> | MisshapenBeforeAuth;

export class WsInbound implements WebSocketEvents {
  private tokens: number;
  private tokensAt: number;
  /** Messages waiting for the session, in order; null when none (most of a connection's life). */
  private queue: QueuedMessage[] | null = null;
  private running = false;

  constructor(
    private readonly conn: Connection,
    private readonly transport: WebSocketTransport,
    private readonly session: Session,
    private readonly rateLimitPerSec: number,
    private readonly logger: Logger,
    now: number,
    /** The gateway's hook for a connection whose socket is gone (shared by every connection). */
    private readonly closed: (conn: Connection) => void,
  ) {
    this.tokens = rateLimitPerSec;
    this.tokensAt = now;
  }

  onBinary(): void {
    const conn = this.conn;
    if (conn.isClosing || !this.takeToken()) return;
    conn.sendError(ErrorCode.INVALID_MESSAGE, 'Binary frames are not supported; send UTF-8 JSON text frames');
  }

  onText(text: string): void {
    const conn = this.conn;
    if (conn.isClosing || !this.takeToken()) return;
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      // Before authentication only authenticate, ping and pong are accepted (SPEC §2.5): a
      // subscribe or unsubscribe is answered AUTH_REQUIRED whatever its payload, once the
      // messages before it were handled (an authenticate among them makes it INVALID_MESSAGE).
      if ((parsed.msgType === 'subscribe' || parsed.msgType === 'unsubscribe') && !conn.isLive) {
        this.enqueue({ msg_type: 'misshapen', error: parsed.error });
        return;
      }
      conn.sendError(parsed.code, parsed.error);
      return;
    }
    const msg = parsed.message;
    if (msg.msg_type === 'pong') {
      conn.pongReceived(Date.now());
      return;
    }
    if (msg.msg_type === 'ping') {
      conn.send('pong', controlFrame('pong', {}));
      return;
    }
    this.enqueue(msg);
  }

  /** A protocol-level ping: answered by us so the pong counts toward the outbound limit. */
  onPing(data: Buffer): void {
    if (this.conn.isClosing || !this.takeToken()) return;
    if (!this.transport.sendPong(data)) this.conn.slowConsumer();
  }

  /** A protocol-level pong (an answer to nothing we sent, or a keepalive of the client): alive. */
  onPong(): void {
    this.conn.pongReceived(Date.now());
  }

  onClosed(): void {
    this.closed(this.conn);
  }

  /**
   * Token bucket of TPX_RATE_LIMIT_PER_SEC tokens, refilled at that rate: a burst of more than the
   * limit is refused at once (SPEC §2.7: more than N messages per second), beyond it RATE_LIMITED
   * and 1008.
   */
  private takeToken(): boolean {
    const now = Date.now();
    const rate = this.rateLimitPerSec;
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.conn.fail(ErrorCode.RATE_LIMITED, 'Too many messages: slow down', CloseCode.POLICY);
    return false;
  }

  private enqueue(msg: QueuedMessage): void {
    const queue = (this.queue ??= []);
    queue.push(msg);
    if (queue.length >= INBOUND_HIGH_WATER) {
      if (queue.length > INBOUND_HARD_LIMIT) {
        this.queue = null;
        this.conn.fail(ErrorCode.RATE_LIMITED, 'Too many messages queued: slow down', CloseCode.POLICY);
        return;
      }
      this.transport.pauseReading();
    }
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    const conn = this.conn;
    try {
      for (let msg = this.queue?.shift(); msg; msg = this.queue?.shift()) {
        if (conn.isClosing) break;
        try {
          await this.dispatch(msg);
        } catch (err) {
          this.logger.error({ err, conn: conn.id }, 'error handling message');
          if (!conn.isClosing) conn.close(1011, 'internal error');
        }
        if (this.transport.readingPaused && (this.queue?.length ?? 0) <= INBOUND_LOW_WATER) this.transport.resumeReading();
      }
    } finally {
      this.running = false;
      // Drained (or closing): drop the array, an empty one keeps its backing store.
      if (conn.isClosing || this.queue?.length === 0) this.queue = null;
    }
  }

  private dispatch(msg: QueuedMessage): Promise<void> | void {
    switch (msg.msg_type) {
      case 'authenticate':
        return this.session.authenticate(this.conn, msg.payload.token);
      case 'subscribe':
        return this.session.subscribe(this.conn, msg.payload.rooms, msg.payload.after_seq);
      case 'unsubscribe':
        return this.session.unsubscribe(this.conn, msg.payload.rooms);
      case 'misshapen':
        if (this.conn.isLive) this.conn.sendError(ErrorCode.INVALID_MESSAGE, msg.error);
        else this.session.requireLive(this.conn);
        return;
    }
  }
}
