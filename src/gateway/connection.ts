/**
 * One WebSocket connection: its explicit state (awaiting-auth → authenticated → closing), its
 * subscriptions, and a bounded outbound path. Event frames arrive pre-framed and are written
 * straight to the TCP socket; frames due in the same tick are coalesced by corking the socket
 * until the hub's end-of-tick flush.
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { CloseCode, type Room } from '@tpx-realtime/protocol';
import type { Account } from '../store/types.js';
import { errorFrame, preframe } from './frames.js';

export type ConnectionState = 'awaiting_auth' | 'authenticated' | 'closing';

let nextId = 1;

/** Coalesce up to this many bytes per socket per loop turn before writing early. */
const EARLY_FLUSH_BYTES = 64 * 1024;

/**
 * A close frame queued behind more than this cannot reach a peer that stopped reading in any
 * useful time: such a connection is cut one second after the close frame is queued, instead
 * of waiting for ws's 30 s closing-handshake timeout with megabytes held.
 */
const CUT_BACKLOG_BYTES = 256 * 1024;

/**
 * Destroying a socket WITH an error hands that one error to every queued write's callback.
 * Destroyed without one, Node builds a new ERR_STREAM_DESTROYED (stack trace included) per
 * queued chunk: for 100 slow consumers holding ~2 MB each that was a ~1 s stall of the loop.
 */
const CUT = new Error('connection cut: the peer is not reading');

export class Connection {
  readonly id: string;
  readonly connectedAt = new Date();
  state: ConnectionState = 'awaiting_auth';
  accountId: string | null = null;
  keyId: string | null = null;
  keyExpiresAtMs: number | null = null;
  /** Rooms as the client named them (for /admin/connections and `unsubscribe`). */
  rooms = new Set<Room>();
  /** Bitmask of event types the connection is subscribed to (see rooms.ts). */
  subscribedMask = 0;
  /** Highest seq written to this connection: never send anything at or below it again. */
  lastSeq = 0;
  /** While replaying history, live events are buffered here (null when live). */
  replayBuffer: Array<{ seq: number; frame: Buffer; mask: number }> | null = null;
  replayOverflow = false;

  // keepalive / auth deadlines, checked by the sweeper (no per-connection timers)
  authDeadline: number;
  nextPingAt: number;
  /** Time the oldest unanswered ping was sent, 0 when none is outstanding. */
  pingOutstandingSince = 0;

  // inbound rate limiting (token bucket)
  tokens: number;
  tokensAt: number;
  /** Inbound messages are handled strictly in order, even across async auth lookups. */
  inbound: Promise<void> = Promise.resolve();

  /** Frames written this loop turn, handed to the socket as one write by flush(). */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  private readonly socket: Socket;

  constructor(
    readonly ws: WebSocket,
    now: number,
    authTimeoutMs: number,
    pingIntervalMs: number,
    burst: number,
    private readonly maxOutboundBytes: number,
  ) {
    this.id = `c${nextId++}`;
    this.authDeadline = now + authTimeoutMs;
    this.nextPingAt = now + pingIntervalMs;
    this.tokens = burst;
    this.tokensAt = now;
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  /** A getter, not a field compare, so TypeScript does not narrow it away across awaits. */
  get closing(): boolean {
    return this.state === 'closing';
  }

  get isOpen(): boolean {
    return this.state !== 'closing' && this.ws.readyState === 1;
  }

  /** Peer address, read on first use (a getpeername call nobody needs at connect time). */
  get remoteAddress(): string {
    return (this.peer ??= this.socket.remoteAddress ?? '');
  }
  private peer: string | undefined;

  /**
   * Send a control frame (JSON text) after any event frames queued before it. Framed here and
   * written as one buffer, like events: ws.send would cork, frame header and payload separately
   * and writev them (measured ≈ 15 % of server CPU in a connect storm, two frames per client).
   */
  sendText(text: string): void {
    if (this.ws.readyState !== 1 || this.socket.destroyed) return;
    this.flush();
    this.socket.write(preframe(text));
  }

  /** True while frames wait for the end-of-turn flush. */
  get hasPending(): boolean {
    return this.pending !== null;
  }

  /**
   * Queue a pre-framed event for this turn's flush. Returns false when the connection is (now)
   * closing. Past the outbound limit the slow-consumer policy applies: close 4009 so the client
   * resumes.
   */
  writeFrame(frame: Buffer): boolean {
    if (this.state === 'closing') return false;
    if (this.socket.writableLength + this.pendingBytes + frame.length > this.maxOutboundBytes) {
      this.slowConsumer();
      return false;
    }
    if (this.pending === null) this.pending = [frame];
    else this.pending.push(frame);
    this.pendingBytes += frame.length;
    // A large burst goes to the socket now: the kernel takes what the peer can absorb, so the
    // limit above measures what a reader leaves unread, not the size of one publish batch.
    if (this.pendingBytes >= EARLY_FLUSH_BYTES) this.flush();
    return true;
  }

  /**
   * Hand this turn's frames to the socket in one syscall. Several frames go out corked, which
   * becomes one writev of the SHARED frame buffers: no copy per socket (a Buffer.concat per
   * socket measured worse: it multiplies allocation and GC by the number of sockets).
   */
  flush(): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    this.pendingBytes = 0;
    if (this.state === 'closing' || this.socket.destroyed) return;
    const socket = this.socket;
    if (pending.length === 1) {
      socket.write(pending[0]);
      return;
    }
    socket.cork();
    for (const frame of pending) socket.write(frame);
    socket.uncork();
  }

  /** Bytes waiting to leave: this turn's queue plus what the socket has not written yet. */
  get queuedBytes(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  waitForDrain(): Promise<void> {
    // 'drain' only follows a write that crossed the high-water mark; otherwise nothing to wait for.
    if (!this.socket.writableNeedDrain || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Send an error frame then close with `closeCode` (auth failures, revocation, rate limit). */
  fail(code: string, message: string, closeCode: number): void {
    if (this.state === 'closing') return;
    this.flush();
    this.sendText(errorFrame(code, message));
    this.close(closeCode, message);
  }

  close(code: number, reason = ''): void {
    if (this.state === 'closing') return;
    this.flush();
    this.state = 'closing';
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.cut();
      return;
    }
    if (this.socket.writableLength > CUT_BACKLOG_BYTES) setTimeout(() => this.cut(), 1000).unref();
  }

  /** Drop the socket and everything queued on it (see CUT). */
  cut(): void {
    if (!this.socket.destroyed) this.socket.destroy(CUT);
  }

  private slowConsumer(): void {
    this.state = 'closing';
    this.pending = null;
    this.pendingBytes = 0;
    // The peer is not reading: a close frame queued behind megabytes would never be seen and the
    // buffer would stay allocated. Drop what is queued, send the close frame, and cut the socket
    // shortly after so memory is released; the client reconnects and resumes with after_seq.
    try {
      this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer: outbound buffer limit reached');
    } catch {
      /* already closing */
    }
    setTimeout(() => this.cut(), 1000).unref();
  }

  describe(account: Account | undefined, nodeId: string): Record<string, unknown> {
    return {
      connection_id: this.id,
      account_id: this.accountId,
      account_name: account?.name ?? null,
      key_id: this.keyId,
      rooms: [...this.rooms],
      state: this.state,
      connected_at: this.connectedAt.toISOString(),
      connected_since: this.connectedAt.toISOString(),
      last_seq: this.lastSeq,
      remote_address: this.remoteAddress,
      node: nodeId,
    };
  }
}
