/**
 * A raw Server-Sent Events test client (SPEC §2.10) over node:http, with its own small parser
 * (independent of the SDK's), so tests see exactly what went over the wire.
 *
 *   const s = await SseTestClient.open(server, { token, rooms: ['ALL'] });
 *   expect(s.status).toBe(200);
 *   const sub = await s.next((m) => m.event === 'subscribed');
 *   const ev = await s.next((m) => m.event === 'BID_REQUEST');   // ev.id, ev.data (raw JSON text), ev.json
 *   s.pause();                                                      // stop reading (TCP pushes back)
 *   await s.ended(2000);                                            // the response ended (or the socket closed)
 *
 * A refused stream resolves too: `status` is then 4xx/5xx and `body` the JSON error body.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface SseMessage {
  id: string | undefined;
  event: string;
  /** The data lines joined (the frame JSON, as sent). */
  data: string;
  json: any;
  at: number;
}

export interface OpenOptions {
  /** Sent as X-API-Key unless `keyInQuery`. Omit to send no key. */
  token?: string;
  keyInQuery?: boolean;
  /** Joined as `rooms=A,B`; omitted when undefined. */
  rooms?: string[];
  afterSeq?: number | string;
  lastEventId?: number | string;
  headers?: Record<string, string>;
  /** Raw query string to append (after the generated one). */
  query?: string;
  timeoutMs?: number;
}

const open = new Set<SseTestClient>();

export class SseTestClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Every byte of the body as decoded text. */
  raw = '';
  body: any;
  private queue: SseMessage[] = [];
  private waiters: Array<{ p: (m: SseMessage) => boolean; resolve: (m: SseMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private lineBuf = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;
  private endedAt: number | null = null;
  private readonly endWaiters: Array<() => void> = [];

  private constructor(
    readonly req: http.ClientRequest,
    readonly res: IncomingMessage,
    private readonly agent: http.Agent,
  ) {}

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  get headers(): IncomingHttpHeaders {
    return this.res.headers;
  }

  get socket(): Socket {
    return this.res.socket as Socket;
  }

  get isEnded(): boolean {
    return this.endedAt !== null;
  }

  static open(server: { url: string }, opts: OpenOptions = {}): Promise<SseTestClient> {
    const params = new URLSearchParams();
    if (opts.rooms) params.set('rooms', opts.rooms.join(','));
    if (opts.afterSeq !== undefined) params.set('after_seq', String(opts.afterSeq));
    if (opts.token !== undefined && opts.keyInQuery) params.set('api_key', opts.token);
    let q = params.toString();
    if (opts.query) q = q ? `${q}&${opts.query}` : opts.query;
    const headers: Record<string, string> = { accept: 'text/event-stream', ...(opts.headers ?? {}) };
    if (opts.token !== undefined && !opts.keyInQuery) headers['x-api-key'] = opts.token;
    if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
    const url = `${server.url}/v1/events/stream${q ? `?${q}` : ''}`;
    return new Promise((resolve, reject) => {
      // A keep-alive connection of its own, as browsers and curl use (`agent: false` would ask to close).
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const req = http.get(url, { headers, agent }, (res) => {
        clearTimeout(timer);
        const client = new SseTestClient(req, res, agent);
        open.add(client);
        res.setEncoding('utf8');
        const isStream = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
        if (!isStream) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            client.raw = text;
            try {
              client.body = JSON.parse(text);
            } catch {
              client.body = text;
            }
            client.markEnded();
            resolve(client);
          });
          return;
        }
        res.on('data', (c: string) => client.onData(c));
        res.on('end', () => client.markEnded());
        res.on('close', () => client.markEnded());
        res.on('error', () => client.markEnded());
        resolve(client);
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`no response from ${url} within ${opts.timeoutMs ?? 5000} ms`));
      }, opts.timeoutMs ?? 5000);
    });
  }

  private onData(chunk: string): void {
    this.raw += chunk;
    this.lineBuf += chunk;
    let nl: number;
    while ((nl = this.lineBuf.indexOf('\n')) >= 0) {
      const line = this.lineBuf.slice(0, nl).replace(/\r$/, '');
      this.lineBuf = this.lineBuf.slice(nl + 1);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length === 0) return;
      const data = this.data.join('\n');
      let json: unknown;
      try {
        json = JSON.parse(data);
      } catch {
        json = undefined;
      }
      const msg: SseMessage = { id: this.id, event: this.event || 'message', data, json, at: Date.now() };
      this.data = [];
      this.event = '';
      this.id = undefined;
      this.messages.push(msg);
      const i = this.waiters.findIndex((w) => w.p(msg));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w!.timer);
        w!.resolve(msg);
      } else this.queue.push(msg);
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
  }

  private markEnded(): void {
    if (this.endedAt !== null) return;
    this.endedAt = Date.now();
    open.delete(this);
    this.agent.destroy();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`stream ended while waiting; queued: ${this.describe()}`));
    }
    for (const w of this.endWaiters.splice(0)) w();
  }

  /** Remove and return the first queued message matching `p`, waiting for it if needed. */
  next(p: (m: SseMessage) => boolean = () => true, timeoutMs = 5000): Promise<SseMessage> {
    const i = this.queue.findIndex(p);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]!);
    if (this.endedAt !== null) return Promise.reject(new Error(`stream already ended; queued: ${this.describe()}`));
    return new Promise((resolve, reject) => {
      const w = {
        p,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`no matching SSE message within ${timeoutMs} ms; queued: ${this.describe()}`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Remove and return every queued message matching `p`. */
  drain(p: (m: SseMessage) => boolean = () => true): SseMessage[] {
    const taken = this.queue.filter(p);
    this.queue = this.queue.filter((m) => !p(m));
    return taken;
  }

  /** Resolves with the time the response ended; rejects after `timeoutMs`. */
  ended(timeoutMs = 5000): Promise<number> {
    if (this.endedAt !== null) return Promise.resolve(this.endedAt);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stream still open after ${timeoutMs} ms; queued: ${this.describe()}`)), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.endedAt!);
      });
    });
  }

  /** Stop reading: the kernel buffers fill and the server's queue grows. */
  pause(): void {
    this.res.pause();
    this.socket.pause();
  }

  /** Read again. */
  resume(): void {
    this.socket.resume();
    this.res.resume();
  }

  /** Drop the connection (a network cut, from the client's side). */
  cut(): void {
    this.req.destroy();
    this.markEnded();
  }

  describe(): string {
    const s = JSON.stringify(this.queue.map((m) => ({ event: m.event, id: m.id })));
    return s.length > 1500 ? s.slice(0, 1500) + '…' : s;
  }
}

export const isEventMessage = (m: SseMessage) => !['subscribed', 'error', 'gap'].includes(m.event);

export function closeAllSse(): void {
  for (const c of [...open]) c.cut();
}
