/**
 * The Server-Sent Events transport (SPEC §2.10): the stream of one `GET /v1/events/stream`
 * response. Each message carries the WebSocket frame's JSON, byte for byte, as its `data`:
 *
 *   id: 42                      ← the event's seq (subscribed: the position it starts after; gap: to_seq)
 *   event: BID_REQUEST          ← msg_type
 *   data: {"msg_type":"BID_REQUEST","msg_id":"…","seq":42,"sent_at":…,"payload":{…}}
 *
 * Event messages are encoded once per (event, account) and framing, as complete HTTP/1.1 chunks,
 * and shared by every SSE connection of the account (EventFrame.bytesFor), like WebSocket
 * frames; they leave in one corked socket write per burst (socket-transport.ts).
 *
 * Until the first `subscribed` the response has not started: errors (a refused key, invalid
 * rooms) are held, and a close then answers an HTTP error with the usual `{ error, code }` body
 * (401/403/400/503) instead of a stream. Once streaming, ends are mapped like this:
 * - close(code): a final comment `: close <code> <reason>` (read by the SDK; EventSource ignores
 *   it and reconnects with Last-Event-ID, as after any end), then the end of the response;
 * - abort (slow consumer, 4009): what this burst queued is dropped, an `error` event with code
 *   SLOW_CONSUMER and the close comment are written if the socket still takes them, and the
 *   connection is cut a second later;
 * - `ping` is a comment line (`: ping`): an SSE client cannot answer, so no 4003 applies; a reader
 *   that stops reading is caught by the outbound limit and the stall rule (Connection.tick).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode, ErrorCode } from '@tpx-realtime/protocol';
import { authStatus } from './auth-errors.js';
import { controlFrame, errorFrame } from './frames.js';
import { SocketTransport } from './socket-transport.js';
import type { ControlType, EventFrame, FrameCodec, Transport } from './transport.js';

/** One SSE message. Frames are compact JSON (no line breaks); any would become extra data lines. */
export function sseMessage(event: string, data: string, id?: number): string {
  const head = id === undefined ? `event: ${event}\n` : `id: ${id}\nevent: ${event}\n`;
  const body = data.includes('\n') || data.includes('\r') ? data.split(/\r\n|\r|\n/).join('\ndata: ') : data;
  return `${head}data: ${body}\n\n`;
}

/** `text` as one HTTP/1.1 chunk (RFC 9112 §7.1): hex size, CRLF, data, CRLF. One allocation. */
function chunk(text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  const head = length.toString(16) + '\r\n';
  const bytes = Buffer.allocUnsafe(head.length + length + 2);
  bytes.write(head, 0, 'latin1');
  bytes.write(text, head.length, length, 'utf8');
  bytes[bytes.length - 2] = 13;
  bytes[bytes.length - 1] = 10;
  return bytes;
}

/**
 * How the body is framed on this response: chunks for HTTP/1.1, bare bytes up to the close of the
 * connection for an HTTP/1.0 request (e.g. nginx's default proxy_http_version).
 */
interface SseFraming {
  codec: FrameCodec;
  encode(text: string): Buffer;
  ping: Buffer;
}

const eventText = (json: string, frame: EventFrame) => sseMessage(frame.event.msg_type, json, frame.seq);

const CHUNKED: SseFraming = {
  codec: { encode: (json, frame) => chunk(eventText(json, frame)) },
  encode: chunk,
  ping: chunk(': ping\n\n'),
};

const RAW: SseFraming = {
  codec: { encode: (json, frame) => Buffer.from(eventText(json, frame), 'utf8') },
  encode: (text) => Buffer.from(text, 'utf8'),
  ping: Buffer.from(': ping\n\n', 'utf8'),
};

/**
 * Response headers of a stream, suited for proxies (no caching, no buffering). `Connection:
 * keep-alive` unless the client asked to close (or speaks HTTP/1.0, whose body ends with the
 * connection): Node follows an explicit header, so it must not contradict the request.
 */
export function streamHeaders(req: IncomingMessage, extra: Record<string, string>): Record<string, string> {
  const closing = req.httpVersion === '1.0' || /(?:^|,)\s*close\s*(?:,|$)/i.test(String(req.headers.connection ?? ''));
  return {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    connection: closing ? 'close' : 'keep-alive',
    ...extra,
  };
}

/** The HTTP answer of a stream refused before it started. */
interface Refusal {
  status: number;
  body: Record<string, unknown>;
}

/** Status of a refusal: the error frame's code decides, else the close code (1011: 500, else 503). */
function refusalOf(errorJson: string | null, closeCode: number, reason: string): Refusal {
  if (errorJson !== null) {
    const body = (JSON.parse(errorJson) as { payload: Record<string, unknown> }).payload;
    return { status: statusOfCode(String(body.code)), body };
  }
  if (closeCode === 1011) return { status: 500, body: { error: 'Internal server error', code: ErrorCode.INTERNAL } };
  return { status: 503, body: { error: reason || 'Stream unavailable', code: ErrorCode.UNAVAILABLE } };
}

/** The `code` of a held `error` frame (JSON text). */
function errorCodeOf(errorJson: string): string {
  return String((JSON.parse(errorJson) as { payload?: { code?: unknown } }).payload?.code);
}

function statusOfCode(code: string): number {
  const auth = authStatus(code);
  if (auth !== undefined) return auth;
  if (code === ErrorCode.RATE_LIMITED) return 429;
  return 400; // INVALID_ROOM, NO_VALID_ROOMS (UNAVAILABLE never gets here: refuse() answers it with drainBounce)
}

export class SseTransport extends SocketTransport implements Transport {
  readonly kind = 'sse';
  readonly answersPings = false;
  readonly readingPaused = false;
  private phase: 'pending' | 'streaming' | 'ended' = 'pending';
  private framing: SseFraming = CHUNKED;
  /** The last error before the stream started: what a refusal answers. */
  private heldError: string | null = null;
  private accountId: string | null = null;

  /**
   * `res.socket` must be this response's own (not a pipelined request's predecessor): the route
   * waits for it. `headers` are added to every answer (CORS).
   */
  constructor(
    private readonly res: ServerResponse,
    maxOutboundBytes: number,
    private readonly headers: Record<string, string>,
  ) {
    super(res.socket as Socket, maxOutboundBytes);
  }

  protected get peerGone(): boolean {
    return this.phase !== 'streaming';
  }

  /** True until the first `subscribed` started the response. */
  get pending(): boolean {
    return this.phase === 'pending';
  }

  sendEvent(frame: EventFrame): boolean {
    return this.queue(frame.bytesFor(this.framing.codec));
  }

  sendControl(type: ControlType, json: string, position?: number): boolean {
    if (this.phase === 'pending') return this.hold(type, json, position);
    if (type === 'ping') return this.queue(this.framing.ping);
    return this.queue(this.framing.encode(sseMessage(type, json, position)));
  }

  /**
   * The first message. A resume into a pruned range carries `gap` in its payload (§2.8); on SSE
   * that range is also sent as its own `event: gap` right after it (§2.10 "a pruned range is sent
   * as event: gap"), so `subscribed` gets the resume point as id and the gap message its end:
   * a reconnect between the two announces the range again rather than never.
   */
  private sendSubscribed(json: string, position: number | undefined): boolean {
    const gap = (JSON.parse(json) as { payload?: { gap?: { from_seq: number; to_seq: number } } }).payload?.gap;
    if (!gap) return this.queue(this.framing.encode(sseMessage('subscribed', json, position)));
    return (
      this.queue(this.framing.encode(sseMessage('subscribed', json, gap.from_seq - 1))) &&
      this.queue(this.framing.encode(sseMessage('gap', controlFrame('gap', { from_seq: gap.from_seq, to_seq: gap.to_seq }), gap.to_seq)))
    );
  }

  /** Before the stream starts: keep what a refusal needs; `subscribed` starts the stream. */
  private hold(type: ControlType, json: string, position: number | undefined): boolean {
    switch (type) {
      case 'authenticated':
        this.accountId = (JSON.parse(json) as { payload: { account_id: string } }).payload.account_id;
        return true;
      case 'error':
        this.heldError = json;
        return true;
      case 'subscribed':
        this.start();
        return this.sendSubscribed(json, position);
      default:
        return true; // pings before the stream started: nothing to keep alive yet
    }
  }

  private start(): void {
    const res = this.res;
    const extra: Record<string, string> = { ...this.headers };
    if (this.accountId) extra['x-tpx-account-id'] = this.accountId;
    res.writeHead(200, streamHeaders(res.req, extra));
    res.flushHeaders();
    // Node frames a body in chunks for HTTP/1.1 and not for HTTP/1.0: ours must match.
    this.framing = (res as unknown as { chunkedEncoding?: boolean }).chunkedEncoding === false ? RAW : CHUNKED;
    this.phase = 'streaming';
  }

  close(code: number, reason: string): void {
    if (this.phase === 'pending') {
      this.refuse(code, reason);
      return;
    }
    if (this.phase === 'ended') return;
    this.flush();
    this.phase = 'ended';
    this.ended = true;
    this.writeNow(this.framing.encode(closeComment(code, reason)));
    this.res.end();
    this.cutIfBacklogged();
  }

  abort(code: number, reason: string): void {
    if (this.phase === 'pending') {
      this.refuse(code, reason);
      return;
    }
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.ended = true;
    this.dropPending();
    // Like a WebSocket close frame behind a backlog: written if the socket takes it, and the
    // connection cut a second later either way so its memory is released.
    if (code === CloseCode.SLOW_CONSUMER) {
      this.writeNow(this.framing.encode(sseMessage('error', errorFrame(ErrorCode.SLOW_CONSUMER, reason))));
    }
    this.writeNow(this.framing.encode(closeComment(code, reason)));
    this.res.end();
    this.cutSoon();
  }

  /** Answer an HTTP error instead of a stream (nothing was sent yet). */
  private refuse(code: number, reason: string): void {
    this.phase = 'ended';
    this.ended = true;
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    if (code === CloseCode.GOING_AWAY && this.heldError === null) {
      drainBounce(res, this.headers, reason);
      return;
    }
    // The store could not serve the authentication (or the resume's read) just now: a passing
    // condition, so not a 503 that would stop a browser's EventSource for good (drainBounce).
    if (this.heldError !== null && errorCodeOf(this.heldError) === ErrorCode.UNAVAILABLE) {
      drainBounce(res, this.headers, reason, { closeCode: code, errorJson: this.heldError });
      return;
    }
    const { status, body } = refusalOf(this.heldError, code, reason);
    writeJson(res, status, body, this.headers);
  }
}

/** EventSource's reconnection time after a draining node's answer: 1–3 s, jittered (see below). */
export const DRAIN_RETRY_MIN_MS = 1_000;
export const DRAIN_RETRY_SPREAD_MS = 2_000;

/**
 * A stream request that reaches a draining node. A browser's EventSource treats every non-200
 * answer (a 503 too) as final and never reconnects again, so a draining node answers with an
 * event stream that ends at once: a `retry:` field (EventSource's reconnection time, jittered so
 * that bounced clients do not come back together) and the `: close 1001` comment the SDK reads
 * as on any drain. EventSource then tries again, reaching another node or this one restarted;
 * the SDK and curl see the 1001 as at the end of any drained stream.
 */
export function drainBounce(
  res: ServerResponse,
  headers: Record<string, string>,
  reason = 'server shutting down',
  /** Another passing condition than a drain (store unavailable): its close code and the `error` frame to send first. */
  other?: { closeCode: number; errorJson: string },
): void {
  const retryMs = DRAIN_RETRY_MIN_MS + Math.floor(Math.random() * DRAIN_RETRY_SPREAD_MS);
  const error = other ? sseMessage('error', other.errorJson) : '';
  const text = `retry: ${retryMs}\n\n${error}${closeComment(other?.closeCode ?? CloseCode.GOING_AWAY, reason)}`;
  res.writeHead(200, { ...streamHeaders(res.req, headers), connection: 'close', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function closeComment(code: number, reason: string): string {
  return `: close ${code}${reason ? ` ${reason.replace(/[\r\n]+/g, ' ').slice(0, 120)}` : ''}\n\n`;
}

/** A JSON error answer on a raw response (the stream route answers outside Fastify's reply). */
export function writeJson(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}
