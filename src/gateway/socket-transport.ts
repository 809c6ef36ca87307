/**
 * What every transport that writes straight to a TCP (or TLS) socket shares: the outbound queue of
 * one burst handed to the socket in one corked write (flush.ts), the outbound limit counted over
 * everything queued, progress for the stall rule, drain waits for replay pacing, and cutting a
 * peer that does not read. Subclasses frame (ws-transport.ts: RFC 6455 frames; sse-transport.ts:
 * SSE messages in HTTP chunks) and decide how a stream ends.
 */
import type { Socket } from 'node:net';
import { scheduleFlush, type Flushable } from './flush.js';

/** Coalesce up to this many bytes per socket per burst before writing early. */
const EARLY_FLUSH_BYTES = 64 * 1024;

/**
 * A closing message queued behind more than this cannot reach a peer that stopped reading in any
 * useful time: such a connection is cut one second after it is queued, instead of waiting for a
 * closing handshake (ws: 30 s) with megabytes held.
 */
const CUT_BACKLOG_BYTES = 256 * 1024;

/** How long a stream that ends behind a backlog (or a slow consumer) may take before it is cut. */
const CUT_DELAY_MS = 1000;

/**
 * Destroying a socket WITH an error hands that one error to every queued write's callback.
 * Destroyed without one, Node builds a new ERR_STREAM_DESTROYED (stack trace included) per
 * queued chunk: for 100 slow consumers holding ~2 MB each that was a ~1 s stall of the loop.
 */
const CUT = new Error('connection cut: the peer is not reading');

export abstract class SocketTransport implements Flushable {
  /** Frames written this burst, handed to the socket as one write by flush(). */
  private burst: Buffer[] | null = null;
  private burstBytes = 0;
  /** Bytes handed to socket.write by this transport, ever (progress = this − writableLength). */
  private written = 0;
  /** Set once the stream is ending: later sends are dropped. */
  protected ended = false;
  private peer: string | undefined;

  constructor(
    protected readonly socket: Socket,
    private readonly maxOutboundBytes: number,
  ) {}

  /** True when the peer side can no longer take frames (e.g. a WebSocket past its closing handshake). */
  protected abstract get peerGone(): boolean;

  get queuedBytes(): number {
    return this.socket.writableLength + this.burstBytes;
  }

  get sentBytes(): number {
    return this.written - this.socket.writableLength;
  }

  /** Peer address, read on first use (a getpeername call nobody needs at connect time). */
  get remoteAddress(): string {
    return (this.peer ??= this.socket.remoteAddress ?? '');
  }

  /** Queue bytes for this burst; false (nothing queued) when they would pass the outbound limit. */
  protected queue(bytes: Buffer): boolean {
    if (this.ended || this.peerGone || this.socket.destroyed) return true; // dropped: closing
    if (this.socket.writableLength + this.burstBytes + bytes.length > this.maxOutboundBytes) return false;
    if (this.burst === null) {
      this.burst = [bytes];
      scheduleFlush(this);
    } else this.burst.push(bytes);
    this.burstBytes += bytes.length;
    // A large burst goes to the socket now: the kernel takes what the peer can absorb, so the
    // limit measures what a reader leaves unread, not the size of one publish batch.
    if (this.burstBytes >= EARLY_FLUSH_BYTES) this.flush();
    return true;
  }

  /**
   * Hand this burst's frames to the socket in one syscall. Several frames go out corked, which
   * becomes one writev of the SHARED frame buffers: no copy per socket (a Buffer.concat per
   * socket measured worse: it multiplies allocation and GC by the number of sockets).
   */
  flush(): void {
    const burst = this.burst;
    if (burst === null) return;
    this.burst = null;
    const bytes = this.burstBytes;
    this.burstBytes = 0;
    if (this.socket.destroyed) return;
    const socket = this.socket;
    this.written += bytes;
    if (burst.length === 1) {
      socket.write(burst[0]);
      return;
    }
    socket.cork();
    for (const frame of burst) socket.write(frame);
    socket.uncork();
  }

  /** Drop what this burst queued and has not handed to the socket (a slow consumer's backlog). */
  protected dropPending(): void {
    this.burst = null;
    this.burstBytes = 0;
  }

  /** Write bytes now, outside the outbound limit (the few bytes that end a stream). */
  protected writeNow(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.written += bytes.length;
    this.socket.write(bytes);
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

  /** The stream ended with a backlog a non-reader will never take: cut it shortly. */
  protected cutIfBacklogged(): void {
    if (this.socket.writableLength > CUT_BACKLOG_BYTES) this.cutSoon();
  }

  protected cutSoon(): void {
    setTimeout(() => this.cut(), CUT_DELAY_MS).unref();
  }

  cut(): void {
    if (!this.socket.destroyed) this.socket.destroy(CUT);
  }
}
