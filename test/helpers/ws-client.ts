/**
 * A queue-based WebSocket test client for the TPX protocol (SPEC §2).
 *
 *   const c = await WsTestClient.connect(server.wsUrl);
 *   await c.authenticate(token);             // resolves with the `authenticated` frame (throws on error frame)
 *   await c.subscribe(['BID_REQUEST']);      // resolves with `subscribed` (throws on error frame)
 *   const ev = await c.next((f) => f.msg_type === 'BID_REQUEST');
 *
 * Every parsed frame goes into a queue; `next(predicate)` removes and returns the first
 * matching frame (waiting for it if needed). Non-matching frames stay queued.
 * Server `ping` frames are answered with `pong` automatically unless `autoPong: false`
 * (they are still queued so tests can observe them).
 */
import WebSocket from 'ws';

export interface Frame {
  msg_type: string;
  sent_at?: number;
  msg_id?: string;
  seq?: number;
  payload?: any;
  [k: string]: unknown;
}

export type Predicate = (f: Frame) => boolean;

export interface ClientOptions {
  /** Answer server `ping` frames with `{"msg_type":"pong"}` (default true). */
  autoPong?: boolean;
  /** Connect timeout (default 5000 ms). */
  timeoutMs?: number;
  /** Extra ws client options (e.g. headers). */
  wsOptions?: WebSocket.ClientOptions;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

interface Waiter {
  predicate: Predicate;
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const openClients = new Set<WsTestClient>();

export const CONTROL_TYPES = new Set(['authenticated', 'subscribed', 'unsubscribed', 'ping', 'pong', 'error', 'gap']);

export function isEventFrame(f: Frame): boolean {
  return !CONTROL_TYPES.has(f.msg_type);
}

export class WsTestClient {
  readonly ws: WebSocket;
  readonly closed: Promise<CloseInfo>;
  /** Every frame ever received, in order (never consumed). */
  readonly history: Frame[] = [];
  /** Raw non-JSON text frames / binary frames received (should stay empty). */
  readonly unparsable: string[] = [];
  autoPong: boolean;
  closeInfo: CloseInfo | null = null;
  private queue: Frame[] = [];
  private waiters: Waiter[] = [];

  private constructor(ws: WebSocket, opts: ClientOptions) {
    this.ws = ws;
    openClients.add(this);
    this.autoPong = opts.autoPong ?? true;
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        openClients.delete(this);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`connection closed (code ${code}, reason "${this.closeInfo.reason}") while waiting for a frame; queued: ${this.describeQueue()}`));
        }
        resolve(this.closeInfo);
      });
    });
    // Avoid unhandled 'error' events crashing the worker; close will follow.
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
      if (isBinary) {
        this.unparsable.push(`<binary>${text}`);
        return;
      }
      let frame: Frame;
      try {
        frame = JSON.parse(text) as Frame;
      } catch {
        this.unparsable.push(text);
        return;
      }
      this.history.push(frame);
      if (frame.msg_type === 'ping' && this.autoPong && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ msg_type: 'pong', payload: {} }));
      }
      const idx = this.waiters.findIndex((w) => safe(w.predicate, frame));
      if (idx >= 0) {
        const [w] = this.waiters.splice(idx, 1);
        clearTimeout(w!.timer);
        w!.resolve(frame);
      } else {
        this.queue.push(frame);
      }
    });
  }

  static connect(url: string, opts: ClientOptions = {}): Promise<WsTestClient> {
    const ws = new WebSocket(url, opts.wsOptions);
    const client = new WsTestClient(ws, opts);
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise<WsTestClient>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`WebSocket connect to ${url} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`WebSocket connect to ${url} failed: ${err.message}`));
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`WebSocket connect to ${url}: unexpected HTTP ${res.statusCode}`));
      });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(obj: unknown): void {
    this.ws.send(JSON.stringify(obj));
  }

  sendRaw(data: string | Buffer, opts: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: opts.binary ?? typeof data !== 'string' });
  }

  /** Remove and return the next frame matching `predicate` (default: any frame). */
  next(predicate: Predicate = () => true, timeoutMs = 5000): Promise<Frame> {
    const idx = this.queue.findIndex((f) => safe(predicate, f));
    if (idx >= 0) {
      const [f] = this.queue.splice(idx, 1);
      return Promise.resolve(f!);
    }
    if (this.closeInfo) {
      return Promise.reject(
        new Error(`connection already closed (code ${this.closeInfo.code}, reason "${this.closeInfo.reason}"); queued: ${this.describeQueue()}`),
      );
    }
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new Error(`no matching frame within ${timeoutMs} ms; queued: ${this.describeQueue()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Next frame with this msg_type. */
  nextOfType(msgType: string, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.msg_type === msgType, timeoutMs);
  }

  /** Next frame that is an `error` frame or of type `msgType` (to assert on an expected answer). */
  nextAnswer(msgType: string, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.msg_type === msgType || f.msg_type === 'error', timeoutMs);
  }

  /** Wait `ms`, then remove and return all queued frames matching `predicate` (default: all). */
  async collect(ms: number, predicate: Predicate = () => true): Promise<Frame[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.drain(predicate);
  }

  /** Remove and return all currently queued frames matching `predicate` (no waiting). */
  drain(predicate: Predicate = () => true): Frame[] {
    const taken: Frame[] = [];
    const kept: Frame[] = [];
    for (const f of this.queue) (safe(predicate, f) ? taken : kept).push(f);
    this.queue = kept;
    return taken;
  }

  /** Currently queued frames (not removed). */
  peek(): readonly Frame[] {
    return this.queue;
  }

  /** Queued event frames (the 11 types), removed from the queue. */
  drainEvents(): Frame[] {
    return this.drain(isEventFrame);
  }

  /** Send authenticate; resolve with the `authenticated` frame or reject with the error frame's code. */
  async authenticate(token: string, timeoutMs = 5000): Promise<Frame> {
    const f = await this.authenticateRaw(token, timeoutMs);
    if (f.msg_type !== 'authenticated') throw new Error(`authenticate failed: ${JSON.stringify(f)}`);
    return f;
  }

  /** Send authenticate; resolve with whichever of `authenticated` / `error` arrives. */
  authenticateRaw(token: string, timeoutMs = 5000): Promise<Frame> {
    this.send({ msg_type: 'authenticate', payload: { token } });
    return this.nextAnswer('authenticated', timeoutMs);
  }

  /** Send subscribe; resolve with `subscribed` (throws if an error frame answers). */
  async subscribe(rooms: string[], afterSeq?: number, timeoutMs = 5000): Promise<Frame> {
    const f = await this.subscribeRaw(rooms, afterSeq, timeoutMs);
    if (f.msg_type !== 'subscribed') throw new Error(`subscribe ${JSON.stringify(rooms)} failed: ${JSON.stringify(f)}`);
    return f;
  }

  /** Send subscribe; resolve with whichever of `subscribed` / `error` arrives. */
  subscribeRaw(rooms: string[], afterSeq?: number, timeoutMs = 5000): Promise<Frame> {
    const payload: Record<string, unknown> = { rooms };
    if (afterSeq !== undefined) payload.after_seq = afterSeq;
    this.send({ msg_type: 'subscribe', payload });
    return this.nextAnswer('subscribed', timeoutMs);
  }

  async unsubscribe(rooms: string[], timeoutMs = 5000): Promise<Frame> {
    this.send({ msg_type: 'unsubscribe', payload: { rooms } });
    const f = await this.nextAnswer('unsubscribed', timeoutMs);
    if (f.msg_type !== 'unsubscribed') throw new Error(`unsubscribe ${JSON.stringify(rooms)} failed: ${JSON.stringify(f)}`);
    return f;
  }

  /** Client-initiated ping; resolves with the server's `pong`. */
  async ping(timeoutMs = 5000): Promise<Frame> {
    this.send({ msg_type: 'ping', payload: {} });
    return this.nextOfType('pong', timeoutMs);
  }

  /** Wait for the close, with a timeout. */
  waitClosed(timeoutMs = 5000): Promise<CloseInfo> {
    return new Promise<CloseInfo>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`connection not closed within ${timeoutMs} ms; queued: ${this.describeQueue()}`)),
        timeoutMs,
      );
      void this.closed.then((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  /** Close gracefully (1000) and wait; terminates if the close handshake stalls. */
  async close(): Promise<void> {
    if (this.closeInfo) return;
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(timer);
  }

  terminate(): void {
    this.ws.terminate();
  }

  describeQueue(): string {
    const s = JSON.stringify(this.queue.map((f) => ({ msg_type: f.msg_type, code: f.payload?.code, seq: f.seq })));
    return s.length > 1500 ? s.slice(0, 1500) + '…' : s;
  }
}

function safe(p: Predicate, f: Frame): boolean {
  try {
    return p(f);
  } catch {
    return false;
  }
}

/** Connect, authenticate and optionally subscribe in one call. */
export async function connectAuthed(wsUrl: string, token: string, rooms?: string[], opts: ClientOptions = {}): Promise<WsTestClient> {
  const c = await WsTestClient.connect(wsUrl, opts);
  await c.authenticate(token);
  if (rooms) await c.subscribe(rooms);
  return c;
}

/** Close every client created in this worker (use in afterEach/afterAll). */
export async function closeAllClients(): Promise<void> {
  const cs = [...openClients];
  openClients.clear();
  await Promise.all(cs.map((c) => c.close().catch(() => undefined)));
}
