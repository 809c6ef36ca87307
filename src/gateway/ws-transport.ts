/**
 * The WebSocket transport: frames are complete, unmasked RFC 6455 frames written straight to the
 * TCP socket under ws. Event frames are encoded once per (event, account) and shared by every
 * socket (EventFrame.bytesFor); frames due in one burst leave in one corked write
 * (socket-transport.ts, flush.ts). Every byte queued here, events, replies, errors, pings and
 * pongs alike, counts toward the outbound limit (SPEC §2.7).
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { preframe } from './frames.js';
import { SocketTransport } from './socket-transport.js';
import type { ControlType, EventFrame, FrameCodec, Transport } from './transport.js';

/** One WebSocket text frame per event frame, shared by every WebSocket connection. */
export const WEBSOCKET_CODEC: FrameCodec = { encode: (json) => preframe(json) };

export class WebSocketTransport extends SocketTransport implements Transport {
  readonly kind = 'websocket';
  readonly answersPings = true;
  private paused = false;

  constructor(
    readonly ws: WebSocket,
    maxOutboundBytes: number,
  ) {
    super((ws as unknown as { _socket: Socket })._socket, maxOutboundBytes);
  }

  protected get peerGone(): boolean {
    return this.ws.readyState !== 1;
  }

  get readingPaused(): boolean {
    return this.paused;
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
    this.cutIfBacklogged();
  }

  abort(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    // The peer is not reading: a close frame queued behind megabytes would never be seen and the
    // buffer would stay allocated. Send the close frame, and cut the socket shortly after so
    // memory is released; the client reconnects and resumes with after_seq.
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      /* already closing */
    }
    this.cutSoon();
  }
}
