/**
 * The SSE transport of the client (SPEC §2.10): `GET /v1/events/stream` read with `fetch`
 * streaming, in Node (≥ 18, global fetch) and browsers alike. Not `EventSource`: it cannot send
 * the `X-API-Key` header, and it reconnects on its own, where the client must decide (backoff,
 * resume from the last PROCESSED seq, fatal errors).
 *
 * `SseLink` looks like a WebSocket to the client's state machine (WebSocketLike): `onopen` when the
 * server answered 200, `onmessage` with each message's `data` (the WebSocket frame's JSON, byte
 * for byte), `onclose` with the close code of the server's final `: close <code> <reason>`
 * comment, or 1006 when the stream broke off without one. A refused stream (4xx/5xx) never opens:
 * `refusal` then holds the status and the `{ error, code }` body.
 */
import type { WebSocketLike } from './transport.js';

/** The part of `fetch` the link uses (the platform's, or one passed in options). */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal; cache?: 'no-store' },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<void> } } | null;
  text(): Promise<string>;
}>;

export interface SseOpenOptions {
  /** The stream URL (`…/v1/events/stream`), without query. */
  url: string;
  token: string;
  rooms: readonly string[];
  /** Resume after this seq (sent as `Last-Event-ID`). */
  afterSeq: number | undefined;
  fetch: FetchLike;
}

export interface SseRefusal {
  status: number;
  /** The answer's `Content-Type` (a 200 that is not `text/event-stream` is a page, not a stream). */
  contentType: string;
  /** The JSON error body (`{ error, code, … }`) when there was one. */
  body: Record<string, unknown> | undefined;
}

/** One complete message of an event stream. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/** Longest line accepted from a server: far above the largest event (256 KiB by default). */
const MAX_LINE_CHARS = 16 * 1024 * 1024;

/**
 * Incremental event-stream parser (WHATWG HTML, "Interpreting an event stream"): lines end with
 * CRLF, LF or CR (also split across chunks); `data` lines accumulate; a blank line dispatches;
 * lines starting with `:` are comments; one space after the colon is dropped.
 */
export class SseParser {
  private rest = '';
  /** The previous chunk ended with CR: a LF starting this one belongs to it. */
  private skipLF = false;
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  push(chunk: string): void {
    // An empty chunk (a network read holding only part of a multi-byte character decodes to '')
    // must not reset skipLF: the LF of a CRLF split across reads would then end an extra line.
    if (chunk.length === 0) return;
    let text = this.rest + chunk;
    let start = 0;
    if (this.skipLF && this.rest === '' && text.charCodeAt(0) === 10) start = 1;
    this.skipLF = false;
    const breaks = /\r\n|\r|\n/g;
    // What was left over holds no line break: search only the new text.
    breaks.lastIndex = Math.max(start, this.rest.length);
    for (let m = breaks.exec(text); m !== null; m = breaks.exec(text)) {
      this.line(text.slice(start, m.index));
      start = m.index + m[0].length;
      if (m[0] === '\r' && start === text.length) this.skipLF = true;
    }
    text = text.slice(start);
    if (text.length > MAX_LINE_CHARS) throw new Error(`event-stream line longer than ${MAX_LINE_CHARS} characters`);
    this.rest = text;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.onMessage({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.data = [];
      this.event = '';
      this.id = undefined;
      return;
    }
    const colon = line.indexOf(':');
    if (colon === 0) {
      this.onComment(line.slice(line.charCodeAt(1) === 32 ? 2 : 1));
      return;
    }
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields: the client schedules its own reconnects.
  }
}

/** `: close 4001 API key was deactivated` → { code, reason }. */
export function parseCloseComment(text: string): { code: number; reason: string } | undefined {
  const m = /^close (\d{4})(?: (.*))?$/.exec(text);
  return m ? { code: Number(m[1]), reason: m[2] ?? '' } : undefined;
}

export class SseLink implements WebSocketLike {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  /** Any sign of life (messages and `: ping` comments): the client's keepalive. */
  onactivity: (() => void) | null = null;
  /** A `: ping` comment: the server's keepalive, whose cadence the client learns. */
  onping: (() => void) | null = null;
  /** The account of the key (response header `X-Tpx-Account-Id`), once open. */
  accountId: string | undefined;
  /** Set when the server answered something other than a stream. */
  refusal: SseRefusal | undefined;
  private readonly controller = new AbortController();
  private closeInfo: { code: number; reason: string } | undefined;

  constructor(options: SseOpenOptions) {
    // Started on the next microtask, once the client attached its handlers.
    queueMicrotask(() => void this.run(options));
  }

  /** An SSE stream is one-way: what the client would send travels in the request. */
  send(): void {}

  close(code = 1000, reason = ''): void {
    this.finish(code, reason);
  }

  terminate(): void {
    this.finish(1006, 'terminated');
  }

  private async run(options: SseOpenOptions): Promise<void> {
    const query = new URLSearchParams({ rooms: options.rooms.join(',') });
    const headers: Record<string, string> = { accept: 'text/event-stream', 'x-api-key': options.token };
    if (options.afterSeq !== undefined) headers['last-event-id'] = String(options.afterSeq);
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await options.fetch(`${options.url}?${query}`, { headers, signal: this.controller.signal, cache: 'no-store' });
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.readyState === 3) return;
    const type = res.headers.get('content-type') ?? '';
    if (res.status !== 200 || !type.startsWith('text/event-stream') || !res.body) {
      let body: Record<string, unknown> | undefined;
      try {
        const parsed: unknown = JSON.parse(await res.text());
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
      } catch {
        /* not JSON: a proxy's page, another server */
      }
      this.refusal = { status: res.status, contentType: type, body };
      this.finish(1006, `HTTP ${res.status}`);
      return;
    }
    this.accountId = res.headers.get('x-tpx-account-id') ?? undefined;
    this.readyState = 1;
    this.onopen?.({});
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser(
      (message) => this.onmessage?.({ data: message.data }),
      (comment) => {
        const closing = parseCloseComment(comment);
        if (closing) this.closeInfo = closing;
        else if (comment === 'ping') this.onping?.();
        this.onactivity?.();
      },
    );
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.readyState === 3) break;
        this.onactivity?.();
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if (this.readyState === 3) return;
      this.fail(err);
      return;
    }
    const end = this.closeInfo ?? { code: 1006, reason: 'the event stream ended' };
    this.finish(end.code, end.reason);
  }

  private fail(err: unknown): void {
    if (this.readyState === 3) return;
    this.onerror?.({ error: err, message: err instanceof Error ? err.message : String(err) });
    this.finish(1006, 'network error');
  }

  private finish(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.controller.abort();
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}
