/**
 * The client → server half of RFC 6455: frames parsed incrementally from the socket's chunks.
 *
 * Why not `ws`'s Receiver: it is a Writable stream (its own stream state, listeners and buffers)
 * per connection, and with its WebSocket and Sender it made ≈ 1.6 KB of heap and ≈ 25 µs of CPU
 * per connection that the gateway does not need: every server → client byte is already a
 * pre-built frame written to the socket (frames.ts), so only this parser, the handshake
 * (ws-handshake.ts) and the closing handshake (ws-transport.ts) remain (docs/performance.md,
 * round 3). The rules are RFC 6455's and the error codes the ones `ws` used:
 *
 * - every client frame is masked (§5.1), RSV bits are 0 (no extension is negotiated), opcodes
 *   are 0, 1, 2, 8, 9, 10; control frames are unfragmented and carry ≤ 125 bytes → else 1002;
 * - a continuation frame continues a fragmented message, a new message may not start inside
 *   one → else 1002;
 * - a message (all its fragments together) over `maxPayload` bytes → 1009, detected from the
 *   frame header, before its payload is buffered;
 * - a text message or a close reason that is not UTF-8 → 1007; a close frame with a 1-byte
 *   payload or an invalid status code → 1002.
 *
 * The common case, a small whole frame in one chunk, is parsed in place: the payload is unmasked
 * in the socket's own chunk (a fresh buffer per read) and decoded, with no copy. After a close
 * frame or an error the reader ignores everything that follows.
 */
import { isUtf8 } from 'node:buffer';

export interface FrameSink {
  /** A complete text message, UTF-8 checked. */
  text(text: string): void;
  /** A complete binary message (its content is of no use to this protocol). */
  binary(): void;
  ping(payload: Buffer): void;
  pong(): void;
  /** The peer's close frame: its status (1005 when it carried none) and reason. */
  closeFrame(code: number, reason: string): void;
  /** A protocol violation: close with `code` (1002, 1007, 1009). */
  violation(code: number, message: string): void;
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Close codes a peer may send (RFC 6455 §7.4; 1004-1006 are reserved, 1015 is never sent). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export class FrameReader {
  /** Bytes received and not yet parsed (null when none: the common case). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /**
   * The message in progress, fragments copied into one buffer of our own (its first
   * `fragmentBytes` bytes), and its opcode (0 when none). A copy, not views: a view keeps the
   * whole socket chunk it came in alive, so many tiny (or empty) fragments would hold memory far
   * beyond the message limit. The buffer grows by doubling, up to the limit.
   */
  private fragmentBuffer: Buffer | null = null;
  private fragmentBytes = 0;
  private fragmentOpcode = 0;
  private done = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxPayload: number,
  ) {}

  /** Stop parsing (the connection is going away); later chunks are ignored. */
  stop(): void {
    this.done = true;
    this.held = null;
    this.fragmentBuffer = null;
  }

  push(chunk: Buffer): void {
    if (this.done || chunk.length === 0) return;
    let data = chunk;
    if (this.held !== null) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (!this.wholeFrameHeld()) return;
      data = Buffer.concat(this.held, this.heldBytes);
      this.held = null;
      this.heldBytes = 0;
    }
    let offset = 0;
    while (!this.done && offset < data.length) {
      const used = this.frame(data, offset);
      if (used === 0) {
        // An incomplete frame: keep its bytes until the rest arrives.
        this.held = [offset === 0 ? data : data.subarray(offset)];
        this.heldBytes = data.length - offset;
        return;
      }
      offset += used;
    }
  }

  /**
   * Whether the held bytes can be parsed now: a whole frame, or a header that already decides an
   * error (a payload over the limit is refused before it is buffered). Concatenating only then
   * keeps a large frame arriving in many chunks at one copy.
   */
  private wholeFrameHeld(): boolean {
    const held = this.held!;
    const head = held[0].length >= 14 || held.length === 1 ? held[0] : Buffer.concat(held, Math.min(this.heldBytes, 14));
    if (head.length >= 2 && this.headerError(head[0], head[1]) !== null) return true;
    const need = frameLength(head, 0, head.length);
    if (need === 0) return false;
    return need <= this.heldBytes || need - 14 + this.fragmentBytes > this.maxPayload;
  }

  /** Parse one frame at `offset`; returns the bytes it used, 0 when it is not complete yet. */
  private frame(data: Buffer, offset: number): number {
    const available = data.length - offset;
    if (available < 2) return 0;
    const b0 = data[offset];
    const b1 = data[offset + 1];
    const refused = this.headerError(b0, b1);
    if (refused !== null) return this.fail(1002, refused);
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const control = (opcode & 0x08) !== 0;
    let length = b1 & 0x7f;
    let header = 2;
    if (length === 126) {
      if (available < 4) return 0;
      length = data.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (available < 10) return 0;
      const high = data.readUInt32BE(offset + 2);
      if (high > 0x1fffff) return this.fail(1009, 'payload length over 2^53 - 1');
      length = high * 2 ** 32 + data.readUInt32BE(offset + 6);
      header = 10;
    }
    if (!control && this.fragmentBytes + length > this.maxPayload) return this.fail(1009, 'message too large');
    const total = header + 4 + length;
    if (available < total) return 0;
    const maskAt = offset + header;
    const payload = data.subarray(maskAt + 4, offset + total);
    unmask(payload, data, maskAt);
    if (control) this.control(opcode, payload);
    else this.dataFrame(opcode, fin, payload);
    return total;
  }

  /** What is wrong with a frame's first two bytes (always a 1002), or null. */
  private headerError(b0: number, b1: number): string | null {
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return 'RSV bits must be clear';
    if ((b1 & 0x80) === 0) return 'client frames must be masked';
    if ((opcode & 0x08) !== 0) {
      if (opcode !== OP_CLOSE && opcode !== OP_PING && opcode !== OP_PONG) return `invalid opcode ${opcode}`;
      if ((b0 & 0x80) === 0) return 'control frames must not be fragmented';
      if ((b1 & 0x7f) > 125) return 'control frame payload over 125 bytes';
      return null;
    }
    if (opcode === OP_CONTINUATION) return this.fragmentOpcode === 0 ? 'continuation frame without a message to continue' : null;
    if (opcode === OP_TEXT || opcode === OP_BINARY) return this.fragmentOpcode !== 0 ? 'new message inside a fragmented one' : null;
    return `invalid opcode ${opcode}`;
  }

  private dataFrame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode !== OP_CONTINUATION && fin) {
      this.message(opcode, payload);
      return;
    }
    if (opcode !== OP_CONTINUATION) {
      this.fragmentOpcode = opcode;
      this.fragmentBuffer = null;
      this.fragmentBytes = 0;
    }
    this.appendFragment(payload);
    if (!fin) return;
    const whole = this.fragmentBuffer === null ? Buffer.alloc(0) : this.fragmentBuffer.subarray(0, this.fragmentBytes);
    const messageOpcode = this.fragmentOpcode;
    this.fragmentBuffer = null;
    this.fragmentBytes = 0;
    this.fragmentOpcode = 0;
    this.message(messageOpcode, whole);
  }

  /** Copy a fragment's payload into the message buffer (empty fragments cost nothing, as in ws). */
  private appendFragment(payload: Buffer): void {
    if (payload.length === 0) return;
    const need = this.fragmentBytes + payload.length; // ≤ maxPayload: checked from the frame header
    let buffer = this.fragmentBuffer;
    if (buffer === null || buffer.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(this.maxPayload, Math.max(1024, (buffer?.length ?? 0) * 2))));
      if (buffer !== null) buffer.copy(grown, 0, 0, this.fragmentBytes);
      this.fragmentBuffer = buffer = grown;
    }
    payload.copy(buffer, this.fragmentBytes);
    this.fragmentBytes = need;
  }

  private message(opcode: number, payload: Buffer): void {
    if (opcode === OP_BINARY) {
      this.sink.binary();
      return;
    }
    if (!isUtf8(payload)) {
      this.fail(1007, 'invalid UTF-8 in a text message');
      return;
    }
    this.sink.text(payload.toString('utf8'));
  }

  private control(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      this.sink.ping(payload);
      return;
    }
    if (opcode === OP_PONG) {
      this.sink.pong();
      return;
    }
    // Close: nothing after it is read (RFC 6455 §5.5.1).
    if (payload.length === 0) {
      this.stop();
      this.sink.closeFrame(1005, '');
      return;
    }
    if (payload.length === 1) {
      this.fail(1002, 'close frame with a 1-byte payload');
      return;
    }
    const code = payload.readUInt16BE(0);
    if (!isValidCloseCode(code)) {
      this.fail(1002, `invalid close code ${code}`);
      return;
    }
    const reason = payload.subarray(2);
    if (!isUtf8(reason)) {
      this.fail(1007, 'invalid UTF-8 in the close reason');
      return;
    }
    this.stop();
    this.sink.closeFrame(code, reason.toString('utf8'));
  }

  private fail(code: number, message: string): number {
    this.stop();
    this.sink.violation(code, message);
    return 1; // anything non-zero: parsing has stopped
  }
}

/**
 * The length of the frame starting at `offset` (header + mask + payload) once its header is
 * readable in `data[offset, end)`, else 0. A length past what any frame may have is returned
 * as 1 so that parsing resumes and reports the error.
 */
function frameLength(data: Buffer, offset: number, end: number): number {
  const available = end - offset;
  if (available < 2) return 0;
  const len7 = data[offset + 1] & 0x7f;
  if (len7 < 126) return 6 + len7;
  if (len7 === 126) return available < 4 ? 0 : 8 + data.readUInt16BE(offset + 2);
  if (available < 10) return 0;
  const high = data.readUInt32BE(offset + 2);
  if (high > 0x1fffff) return 1;
  return 14 + high * 2 ** 32 + data.readUInt32BE(offset + 6);
}

/** XOR the payload in place with the 4-byte mask at `data[maskAt]`. */
function unmask(payload: Buffer, data: Buffer, maskAt: number): void {
  const m0 = data[maskAt];
  const m1 = data[maskAt + 1];
  const m2 = data[maskAt + 2];
  const m3 = data[maskAt + 3];
  const n = payload.length;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    payload[i] ^= m0;
    payload[i + 1] ^= m1;
    payload[i + 2] ^= m2;
    payload[i + 3] ^= m3;
  }
  if (i < n) payload[i] ^= m0;
  if (i + 1 < n) payload[i + 1] ^= m1;
  if (i + 2 < n) payload[i + 2] ^= m2;
}
