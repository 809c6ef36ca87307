/**
 * The WebSocket transport: one TCP socket speaking RFC 6455 after the handshake
 * (ws-handshake.ts). Outbound, frames are complete, unmasked frames written straight to the
 * socket: event frames are encoded once per (event, account) and shared by every socket
 * (EventFrame.bytesFor), and frames due in one burst leave in one corked write
 * (socket-transport.ts, flush.ts). Every byte queued here, events, replies, errors, pings and
 * pongs alike, counts toward the outbound limit (SPEC §2.7). Inbound, the client's frames are
 * parsed by ws-reader.ts and handed to the connection's WebSocketEvents (ws-inbound.ts).
 *
 * The closing handshake (RFC 6455 §7, as `ws` did it): the side that closes sends a close frame
 * and waits for the peer's; when both were exchanged (or after a protocol violation, once our
 * close frame is written) the server ends the TCP connection; a peer that never answers is cut
 * after 30 s. Socket listeners are shared functions (the transport hangs off the socket), so a
 * connection costs no closures.
 */
import type { Socket } from 'node:net';
import { preframe } from './frames.js';
import { SocketTransport } from './socket-transport.js';
import type { ControlType, EventFrame, FrameCodec, Transport } from './transport.js';
import { FrameReader, type FrameSink } from './ws-reader.js';

/** What the transport reports to the connection's inbound side. */
export interface WebSocketEvents {
  onText(text: string): void;
  onBinary(): void;
  onPing(payload: Buffer): void;
  onPong(): void;
  /** The socket is gone, whoever closed it. */
  onClosed(): void;
}

/** One WebSocket text frame per event frame, shared by every WebSocket connection. */
export const WEBSOCKET_CODEC: FrameCodec = { encode: (json) => preframe(json) };

/** How long a peer may take to answer our close frame before the socket is cut (as `ws`). */
const CLOSE_TIMEOUT_MS = 30_000;

export class WebSocketTransport extends SocketTransport implements Transport, FrameSink {
  readonly kind = 'websocket';
  readonly answersPings = true;
  /** The peer's close frame arrived, or it broke the protocol: end TCP once ours is written. */
  private peerDone = false;
  private paused = false;
  private closeTimer: NodeJS.Timeout | null = null;
  private events: WebSocketEvents | null = null;
  /** Parses what the socket delivers (fed by the shared 'data' listener below). */
  readonly reader: FrameReader;

  constructor(socket: Socket, maxOutboundBytes: number, maxMessageBytes: number) {
    super(socket, maxOutboundBytes);
    this.reader = new FrameReader(this, maxMessageBytes);
  }

  /**
   * After a successful handshake: write the 101 response, then read the client's frames
   * (`head`: bytes that arrived with the upgrade request).
   */
  start(events: WebSocketEvents, response: Buffer, head: Buffer): void {
    this.events = events;
    const socket = this.socket as OwnedSocket;
    socket[kTransport] = this;
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('end', onSocketEnd);
    socket.setTimeout(0);
    socket.setNoDelay(true);
    this.writeNow(response);
    socket.on('data', onSocketData);
    if (head.length > 0) this.reader.push(head);
  }

  /** Our close frame is queued (`ended`) and that is all that stops sending: no separate peer state. */
  protected get peerGone(): boolean {
    return false;
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

  /** Answer a protocol-level ping (counted toward the outbound limit like everything else). */
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
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.flush();
    this.sendClose(code, reason);
    this.cutIfBacklogged();
  }

  abort(code: number, reason: string): void {
    if (this.ended) {
      // Already closing (our close frame, or the peer's FIN) behind bytes the peer does not take.
      if (this.socket.writableLength > 0) this.cutSoon();
      return;
    }
    this.dropPending();
    // The peer is not reading: a close frame queued behind megabytes would never be seen and the
    // buffer would stay allocated. Send the close frame, and cut the socket shortly after so
    // memory is released; the client reconnects and resumes with after_seq.
    this.sendClose(code, reason);
    this.cutSoon();
  }

  /** Queue our close frame (code null: an empty one); end TCP now if the peer is done, else wait for its answer. */
  private sendClose(code: number | null, reason: string): void {
    this.ended = true;
    const socket = this.socket;
    if (socket.destroyed) return;
    this.writeNow(closeFrame(code, reason));
    if (this.peerDone) socket.end();
    // Whichever way it ends, a peer that never completes the close (no close frame, or no FIN
    // after ours: the HTTP server's sockets allow half-open) is cut after 30 s, as `ws` did.
    (this.closeTimer = setTimeout(() => this.cut(), CLOSE_TIMEOUT_MS)).unref();
  }

  // ---------------------------------------------------------------- FrameSink (ws-reader.ts)

  text(text: string): void {
    this.events!.onText(text);
  }

  binary(): void {
    this.events!.onBinary();
  }

  ping(payload: Buffer): void {
    this.events!.onPing(payload);
  }

  pong(): void {
    this.events!.onPong();
  }

  /** The peer closes: answer with the same code (RFC 6455 §5.5.1), or end TCP if we closed first. */
  closeFrame(code: number, reason: string): void {
    this.peerFinished(code === 1005 ? null : code, reason);
  }

  /** The peer broke the protocol (1002, 1007, 1009): close with that code, then end TCP. */
  violation(code: number): void {
    this.peerFinished(code, '');
  }

  /** The peer will send nothing more: send our close frame if not yet sent (then TCP ends), else end TCP now. */
  private peerFinished(code: number | null, reason: string): void {
    this.peerDone = true;
    if (!this.ended) {
      // Replies to the messages before the peer's last frame go first (as ws wrote them at once).
      this.flush();
      this.sendClose(code, reason);
    } else if (!this.socket.destroyed) this.socket.end();
  }

  // ---------------------------------------------------------------- socket events (shared listeners below)

  /** The peer half-closed without a closing handshake: close our side too. */
  peerEnded(): void {
    this.reader.stop();
    if (!this.ended) this.flush();
    this.ended = true;
    if (this.socket.destroyed) return;
    this.socket.end();
    // end() waits for the backlog to drain: a peer that stopped reading before its FIN would
    // hold it forever, and close()/abort() (keepalive, operator, slow consumer) now find the
    // transport ended. A backlog is cut within a second; whatever remains, within 30 s.
    this.cutIfBacklogged();
    if (this.closeTimer === null) (this.closeTimer = setTimeout(() => this.cut(), CLOSE_TIMEOUT_MS)).unref();
  }

  socketClosed(): void {
    this.reader.stop();
    this.ended = true;
    this.dropPending();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    this.events?.onClosed();
  }
}

/** RFC 6455 §7.1.6: a close frame's payload (code + reason) fits in 125 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;

/** An unmasked close frame: the code and a reason cut to 123 bytes on a character boundary. */
export function closeFrame(code: number | null, reason: string): Buffer {
  if (code === null) return Buffer.from([0x88, 0x00]);
  let text = reason;
  while (Buffer.byteLength(text) > MAX_CLOSE_REASON_BYTES) text = text.slice(0, -1);
  const reasonBytes = Buffer.byteLength(text);
  const frame = Buffer.allocUnsafe(4 + reasonBytes);
  frame[0] = 0x88; // FIN | close
  frame[1] = 2 + reasonBytes;
  frame.writeUInt16BE(code, 2);
  frame.write(text, 4, reasonBytes, 'utf8');
  return frame;
}

// Shared socket listeners: `this` is the socket, its transport hangs off it.
const kTransport = Symbol('tpx.ws-transport');
type OwnedSocket = Socket & { [kTransport]?: WebSocketTransport };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[kTransport]!.reader.push(chunk);
}

function onSocketEnd(this: OwnedSocket): void {
  this[kTransport]!.peerEnded();
}

function onSocketClose(this: OwnedSocket): void {
  this[kTransport]!.socketClosed();
}

function onSocketError(): void {
  // ECONNRESET and the like: 'close' follows, which is all the connection needs to know.
}
