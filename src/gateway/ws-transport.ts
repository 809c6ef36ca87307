/**
 * The WebSocket transport: frames are complete, unmasked RFC 6455 frames written straight to the
 * TCP socket under ws. Event frames are encoded once per (event, account) and shared by every
 * socket (EventFrame.bytesFor); frames due in one burst leave in one corked write (flush.ts).
 * Every byte queued here, events, replies, errors, pings and pongs alike, counts toward the
 * outbound limit (SPEC §2.7).
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { preframe } from './frames.js';
import { scheduleFlush, type Flushable } from './flush.js';
import type { ControlType, EventFrame, FrameCodec, Transport } from './transport.js';

/** One WebSocket text frame per event frame, shared by every WebSocket connection. */
export const WEBSOCKET_CODEC: FrameCodec = { encode: (json) => preframe(json) };

/** Coalesce up to this many bytes per socket per burst before writing early. */
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

export class WebSocketTransport implements Transport, Flushable {
  readonly answersPings = true;
  /** Frames written this burst, handed to the socket as one write by flush(). */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  /** Bytes handed to socket.write by this transport, ever (progress = this − writableLength). */
  private written = 0;
  private ended = false;
  private paused = false;
  private readonly socket: Socket;
  private peer: string | undefined;

  constructor(
    readonly ws: WebSocket,
    private readonly maxOutboundBytes: number,
  ) {
    this.socket = (ws as unknown as { _socket: Socket })._socket;
  }

  get queuedBytes(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  get sentBytes(): number {
    return this.written - this.socket.writableLength;
  }

  get readingPaused(): boolean {
    return this.paused;
  }

  /** Peer address, read on first use (a getpeername call nobody needs at connect time). */
  get remoteAddress(): string {
    return (this.peer ??= this.socket.remoteAddress ?? '');
  }

  sendEvent(frame: EventFrame): boolean {
    return this.queue(frame.bytesFor(WEBSOCKET_CODEC));
  }

  sendControl(_type: ControlType, json: string): boolean {
    return this.queue(preframe(json));
  }

  /** Answer a protocol-level ping (ws's automatic answer would bypass the outbound limit). */
  sendPong(data: Buffer): boolean {
    const length = Math.min(data.length, 125);
    const frame = Buffer.allocUnsafe(2 + length);
    frame[0] = 0x8a; // FIN | pong
    frame[1] = length;
    data.copy(frame, 2, 0, length);
    return this.queue(frame);
  }

  private queue(bytes: Buffer): boolean {
    if (this.ended || this.ws.readyState !== 1 || this.socket.destroyed) return true; // dropped: closing
    if (this.socket.writableLength + this.pendingBytes + bytes.length > this.maxOutboundBytes) return false;
    if (this.pending === null) {
      this.pending = [bytes];
      scheduleFlush(this);
    } else this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    // A large burst goes to the socket now: the kernel takes what the peer can absorb, so the
    // limit measures what a reader leaves unread, not the size of one publish batch.
    if (this.pendingBytes >= EARLY_FLUSH_BYTES) this.flush();
    return true;
  }

  /**
   * Hand this burst's frames to the socket in one syscall. Several frames go out corked, which
   * becomes one writev of the SHARED frame buffers: no copy per socket (a Buffer.concat per
   * socket measured worse: it multiplies allocation and GC by the number of sockets).
   */
  flush(): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    const bytes = this.pendingBytes;
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    const socket = this.socket;
    this.written += bytes;
    if (pending.length === 1) {
      socket.write(pending[0]);
      return;
    }
    socket.cork();
    for (const frame of pending) socket.write(frame);
    socket.uncork();
  }

  waitForDrain(): Promise<void> {
    this.flush();
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

  /** Stop reading the peer's frames (TCP pushes back on it) while inbound work is queued. */
  pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.ws.pause();
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.ws.resume();
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.flush();
    this.ended = true;
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.cut();
      return;
    }
    if (this.socket.writableLength > CUT_BACKLOG_BYTES) setTimeout(() => this.cut(), 1000).unref();
  }

  abort(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.pending = null;
    this.pendingBytes = 0;
    // The peer is not reading: a close frame queued behind megabytes would never be seen and the
    // buffer would stay allocated. Send the close frame, and cut the socket shortly after so
    // memory is released; the client reconnects and resumes with after_seq.
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      /* already closing */
    }
    setTimeout(() => this.cut(), 1000).unref();
  }

  cut(): void {
    if (!this.socket.destroyed) this.socket.destroy(CUT);
  }
}
