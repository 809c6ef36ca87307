/**
 * The transport seam (DESIGN "A stream is a transport-free thing"). A Connection (session,
 * replay, the per-account sequencer's fan-out) decides WHAT to send; a Transport only frames it
 * for its wire (a WebSocket text frame, an SSE message) and writes it, counting every byte it
 * queues toward the outbound limit. Implementations: ws-transport.ts (WebSocket) and
 * sse-transport.ts (Server-Sent Events), both writing to a socket through socket-transport.ts.
 */
import type { EventType } from '@tpx-realtime/protocol';
import type { AccountEvent } from '../store/types.js';
import { eventFrameJson } from './frames.js';
import { TYPE_BIT } from './rooms.js';

/** Encodes an event frame for one kind of transport (e.g. a complete WebSocket frame). */
export interface FrameCodec {
  encode(json: string, frame: EventFrame): Buffer;
}

/**
 * One event as it goes to the connections of one account: built once per (event, account) by
 * the hub, its JSON spliced once, and its bytes encoded once per codec and shared by every
 * connection using that codec. The first codec used gets a field of its own (the common case:
 * every connection is a WebSocket), others a small map.
 */
export class EventFrame {
  readonly seq: number;
  /** The event type's bit (rooms.ts): "is this connection subscribed" is one AND. */
  readonly bit: number;
  /** Acceptance time of the event: decides key expiry on delivery (SPEC §2.5). */
  readonly createdAtMs: number;
  private jsonText: string | undefined;
  private firstCodec: FrameCodec | undefined;
  private firstBytes: Buffer | undefined;
  private otherBytes: Map<FrameCodec, Buffer> | undefined;

  constructor(
    readonly event: AccountEvent,
    readonly sentAt: number,
  ) {
    this.seq = event.seq;
    this.bit = TYPE_BIT[event.msg_type as EventType];
    this.createdAtMs = event.created_at_ms;
  }

  /** The event frame's JSON text (SPEC §2.2), the payload spliced in as stored. */
  get json(): string {
    return (this.jsonText ??= eventFrameJson(this.event, this.sentAt));
  }

  /** True once any transport encoded it (someone received it). */
  get used(): boolean {
    return this.firstCodec !== undefined;
  }

  bytesFor(codec: FrameCodec): Buffer {
    if (this.firstCodec === codec) return this.firstBytes!;
    if (this.firstCodec === undefined) {
      this.firstCodec = codec;
      return (this.firstBytes = codec.encode(this.json, this));
    }
    this.otherBytes ??= new Map();
    let bytes = this.otherBytes.get(codec);
    if (!bytes) this.otherBytes.set(codec, (bytes = codec.encode(this.json, this)));
    return bytes;
  }
}

/** Control messages a connection sends (SPEC §2.2), by msg_type. */
export type ControlType = 'authenticated' | 'subscribed' | 'unsubscribed' | 'ping' | 'pong' | 'error' | 'gap';

/** Which wire a connection uses (shown in /admin/connections). */
export type TransportKind = 'websocket' | 'sse';

/**
 * Where a connection's bytes go. Implementations frame and write; they never decide what to
 * send. `send*` return false when accepting the bytes would pass the outbound limit (nothing is
 * queued then): the Connection applies the slow-consumer policy (4009). After close() or abort()
 * sends are silently dropped.
 */
export interface Transport {
  readonly kind: TransportKind;
  /** Queue an event: `frame.bytesFor(<this transport's codec>)`, shared by every connection. */
  sendEvent(frame: EventFrame): boolean;
  /**
   * Queue a control message; `json` is the complete frame JSON (frames.ts controlFrame/errorFrame).
   * `position` comes with `subscribed` and `gap`: the seq through which the account's stream is
   * accounted for once this message is read (everything after it will follow). A transport whose
   * messages carry resume ids (SSE `id:`, sent back as `Last-Event-ID`) tags the message with it.
   */
  sendControl(type: ControlType, json: string, position?: number): boolean;
  /** Bytes queued and not yet handed to the operating system. */
  readonly queuedBytes: number;
  /** Monotonic count of bytes handed to the operating system: the reader's progress. */
  readonly sentBytes: number;
  /** Resolves once the queue drained below the transport's high-water mark, or it closed. */
  waitForDrain(): Promise<void>;
  /** True while the transport has stopped reading from its peer (inbound backpressure). */
  readonly readingPaused: boolean;
  /**
   * Whether the peer is expected to answer `ping` (keepalive 4003 applies). An SSE response has
   * no way back: it gets comment pings and relies on the outbound stall rule alone.
   */
  readonly answersPings: boolean;
  /**
   * End the stream after what is queued (close code as in SPEC §2.9; non-WebSocket transports map
   * it: an SSE response that has not started yet answers an HTTP error instead).
   */
  close(code: number, reason: string): void;
  /** The peer is not reading: drop what is queued, send the close if possible, cut shortly after. */
  abort(code: number, reason: string): void;
  /** Drop the connection and everything queued, now. */
  cut(): void;
  readonly remoteAddress: string;
}
