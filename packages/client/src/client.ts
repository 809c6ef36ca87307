/**
 * `TpxClient`: the partner SDK's consumer of the event stream, over a WebSocket (SPEC §2, the
 * default) or Server-Sent Events (SPEC §2.10, `transport: 'sse'`): the same events, state machine,
 * resume, gaps and errors either way.
 *
 * A small explicit state machine:
 *
 *   idle ──connect()──▶ connecting ──authenticated + subscribed──▶ open
 *                          ▲   │ drop / timeout                       │ drop (1001, 1006, 4003, 4009, network, keepalive…)
 *                          │   ▼                                      ▼
 *                          └─ reconnecting (full-jitter backoff) ◀────┘
 *   any ──close() / 4001 / max attempts──▶ closed
 *
 * Events are processed strictly in order, one at a time: every handler of an event (typed
 * handlers, `event` handlers, async iterators) is awaited before the next event starts.
 * `lastSeq` advances only after the handlers of that event ran; each (re)subscribe sends
 * `after_seq: lastSeq`, so the server replays exactly what was not processed (SPEC §2.8).
 * Without a saved position, `lastSeq` starts at the `last_seq` of the first `subscribed`, so a
 * first connection that drops before any event arrived misses nothing either. Ranges the
 * server can no longer deliver (`subscribed.gap`, `gap` frames) are emitted as `gap` in stream
 * order. Events with `seq ≤ lastSeq` are skipped, and a shared `Deduplicator` keyed by
 * `msg_id` makes an event that also arrives by webhook run once.
 *
 * Failing loudly: a 4001 / `AUTH_…` error, an upgrade (or SSE request) answered 3xx/4xx (wrong
 * URL, bad rooms, proxy) and a runtime without WebSocket are fatal: `error`, then `closed`, and `connect()` rejects (that
 * promise is marked handled, so ignoring it never crashes the process with an unhandled
 * rejection; without any `error` listener the error is written to the console instead).
 */
import { ALL_ROOM, FATAL_CLOSE_CODES, isEventType, isRoom } from '@tpx-realtime/protocol/core';
import type { EventType, Room } from '@tpx-realtime/protocol/core';
import { Backoff, type BackoffOptions } from './backoff.js';
import { Deduplicator } from './dedup.js';
import {
  handshakeRejection,
  isFatalHandshakeStatus,
  normalizeEndpoint,
  normalizeStreamEndpoint,
  notAStream,
  probeUpgradeStatus,
  statusFromSocketError,
  streamRejection,
} from './endpoint.js';
import { describeCause, isHangUp, isRefused, isTlsUrl, isUnreachable, probeSpeaksTls, tlsMistake, tlsRequired } from './diagnose.js';
import { TpxAuthError, TpxConnectionError, TpxError, TpxHandlerError, TpxProtocolError, TpxServerError } from './errors.js';
import { SseLink, type FetchLike } from './sse.js';
import { defaultWebSocketFactory, frameText, WS_OPEN, type WebSocketFactory, type WebSocketLike } from './transport.js';
import type {
  Awaitable,
  ClientState,
  ClosedInfo,
  ConnectingInfo,
  GapInfo,
  OpenInfo,
  ReconnectingInfo,
  TpxEvent,
} from './types.js';

export interface ReconnectOptions extends BackoffOptions {
  /** A connection that stays open this long resets the backoff. Default 10 000 ms. */
  stableAfterMs?: number;
  /** Give up after this many consecutive failed attempts (→ `closed`, reason `max_attempts`). Default Infinity. */
  maxAttempts?: number;
}

export interface TpxClientOptions {
  /**
   * The server: its base URL (`https://host:port`, `wss://host:port`: `/ws` is appended) or the
   * WebSocket URL itself (`wss://host:port/ws`, or another path behind a proxy). With
   * `transport: 'sse'`, the base URL gets `/v1/events/stream`, and a `…/ws` URL is mapped to it.
   */
  url: string;
  /**
   * `'websocket'` (default) or `'sse'`: Server-Sent Events over `fetch` streaming (SPEC §2.10), for
   * networks that do not let WebSockets through. Same events and API; the rooms and the resume
   * point travel in the request, so each change of rooms would need a new request (rooms are
   * fixed for the client's life anyway).
   */
  transport?: 'websocket' | 'sse';
  /** SSE only: the `fetch` to use (default: the platform's). */
  fetch?: FetchLike;
  /** API key (`tp_live_…`). One key = one account stream. */
  token: string;
  /** Rooms to keep subscribed (desired state, re-established on every reconnect). Default `['ALL']`. */
  rooms?: Room[];
  /**
   * Resume point: the last `seq` this consumer processed in an earlier run (persist
   * `client.lastSeq`). `0` replays everything still retained. Unset: live events only,
   * until the first event is processed.
   */
  afterSeq?: number;
  /** Shared de-duplicator (pass the same one to the webhook handler). Default: a private one; `false` disables. */
  dedup?: Deduplicator | false;
  reconnect?: ReconnectOptions;
  /**
   * The shortest server ping interval to expect (SPEC §2.6). Default 30 000 ms. The client learns
   * the server's actual cadence from its pings and waits longer if the server pings less often
   * (`TPX_PING_INTERVAL_MS` above 30 s); over a WebSocket it also asks (`ping`) before it gives up.
   */
  pingIntervalMs?: number;
  /** Extra silence tolerated after a missed ping before the connection is declared dead. Default 10 000 ms. */
  keepaliveGraceMs?: number;
  /** Time allowed from opening the socket to `subscribed`. Default 15 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Bound on events received but not yet processed (slow handlers). Beyond it the client
   * drops the connection (keeping what it queued), waits until its handlers caught up, then
   * reconnects and resumes after the last event it queued: memory stays bounded, nothing is
   * lost, nothing is received twice. Default 10 000.
   */
  maxBufferedEvents?: number;
  /**
   * The same bound in bytes (the frames' JSON text; the parsed events take about as much again).
   * One event is always accepted, whatever its size. Default 16 MiB.
   */
  maxBufferedBytes?: number;
  /** Custom WebSocket construction (tests, proxies, custom TLS). Default: global WebSocket, else `ws`. */
  webSocketFactory?: WebSocketFactory;
  /**
   * When the WebSocket failed before opening without telling why (the WHATWG WebSocket of
   * Node ≥ 22 hides the HTTP status), ask the server with one plain upgrade request over
   * `node:http(s)` which status it answers, so a 404 or 403 becomes a fatal error instead of
   * endless retries. Node only. Default: true with the built-in transport, false with a
   * `webSocketFactory` (whose headers or TLS settings the probe would not have).
   */
  diagnoseHandshake?: boolean;
}

type TypedEventHandlers = { [K in EventType]: (event: TpxEvent<K>) => Awaitable<void> };

/** Everything `on()` accepts, with the handler type of each. */
export interface TpxClientEvents extends TypedEventHandlers {
  /** Every event, after the type-specific handlers. */
  event: (event: TpxEvent) => Awaitable<void>;
  /** Retained events were pruned before they could be replayed: reconcile (e.g. over HTTP). Delivered in stream order. */
  gap: (gap: GapInfo) => Awaitable<void>;
  state: (state: ClientState, previous: ClientState) => void;
  connecting: (info: ConnectingInfo) => void;
  open: (info: OpenInfo) => void;
  reconnecting: (info: ReconnectingInfo) => void;
  closed: (info: ClosedInfo) => void;
  error: (error: TpxError) => void;
}
export type TpxClientEventName = keyof TpxClientEvents;

export interface TpxClientStats {
  /** Event frames received from the server (duplicates included). */
  received: number;
  /** Events whose handlers ran (successfully or not). */
  processed: number;
  /** Events skipped: `seq ≤ lastSeq` or `msg_id` already handled (possibly by webhook). */
  duplicates: number;
  /** Events whose handlers threw. */
  handlerErrors: number;
  /** Connections that reached `open`. */
  connections: number;
  /** Connections attempted after the first. */
  reconnects: number;
}

type QueueItem = { kind: 'event'; event: TpxEvent; bytes: number } | { kind: 'gap'; gap: GapInfo };

interface IteratorControl {
  finish(error?: Error): void;
}

const DEFAULT_ROOMS: Room[] = [ALL_ROOM];
/** Upper bound of the server ping interval the client learns or assumes. */
const MAX_ASSUMED_PING_MS = 10 * 60_000;

export class TpxClient {
  readonly url: string;
  readonly transport: 'websocket' | 'sse';
  private readonly token: string;
  private readonly dedup: Deduplicator | undefined;
  private readonly backoff: Backoff;
  private readonly stableAfterMs: number;
  private readonly maxAttempts: number;
  private readonly pingIntervalMs: number;
  private readonly keepaliveGraceMs: number;
  private readonly connectTimeoutMs: number;
  private readonly factory: WebSocketFactory;
  private readonly fetchImpl: FetchLike | undefined;
  private readonly diagnoseHandshake: boolean;
  private readonly maxBufferedEvents: number;
  private readonly maxBufferedBytes: number;

  private _state: ClientState = 'idle';
  private readonly desired: Set<Room>;
  private readonly granted = new Set<Room>();
  private _accountId: string | undefined;
  private _lastSeq: number | undefined;
  private readonly handlers = new Map<string, Set<(...args: any[]) => unknown>>();
  readonly stats: TpxClientStats = { received: 0, processed: 0, duplicates: 0, handlerErrors: 0, connections: 0, reconnects: 0 };

  /** Generation of the current connection: callbacks of older sockets are ignored. */
  private gen = 0;
  private socket: WebSocketLike | undefined;
  private ready = false;
  private authError: TpxAuthError | undefined;
  private socketError: unknown;
  /** A retried TLS problem (expired certificate) was reported on `error` since the last open. */
  private tlsReported = false;
  private resumedFrom: number | undefined;
  /** End of the last gap this connection announced (SSE repeats `subscribed.gap` as a gap message). */
  private gapThrough: number | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private keepaliveTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * The server's ping interval as far as we know: learnt from the gap between its pings (never
   * below `pingIntervalMs`); kept across connections, as it is the server's setting.
   */
  private serverPingMs: number;
  /** When this connection opened or last got a server ping (undefined before open). */
  private lastPingAt: number | undefined;
  /** Server pings this connection got. */
  private pingsSeen = 0;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  private readonly queue: QueueItem[] = [];
  /** Frame bytes of the events in `queue`. */
  private queuedBytes = 0;
  /**
   * Highest seq put in the queue (event or gap end) since the queue was last discarded. The queue
   * survives a reconnect, so the next subscribe resumes after it: nothing queued is sent again.
   */
  private receivedThrough: number | undefined;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  private connectWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private readonly iterators = new Set<IteratorControl>();

  constructor(options: TpxClientOptions) {
    if (!options || typeof options.url !== 'string' || options.url.length === 0) throw new TypeError('TpxClient: options.url is required');
    if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('TpxClient: options.token is required');
    if (options.transport !== undefined && options.transport !== 'websocket' && options.transport !== 'sse') {
      throw new TypeError(`TpxClient: transport must be 'websocket' or 'sse' (got ${JSON.stringify(options.transport)})`);
    }
    this.transport = options.transport ?? 'websocket';
    this.url = this.transport === 'sse' ? normalizeStreamEndpoint(options.url) : normalizeEndpoint(options.url);
    this.token = options.token;
    const rooms = options.rooms ?? DEFAULT_ROOMS;
    this.desired = new Set(validateRooms(rooms));
    if (this.transport === 'sse' && this.desired.size === 0) throw new TypeError("TpxClient: transport 'sse' needs at least one room");
    if (options.afterSeq !== undefined) {
      if (!Number.isSafeInteger(options.afterSeq) || options.afterSeq < 0) throw new TypeError('TpxClient: afterSeq must be an integer ≥ 0');
      this._lastSeq = options.afterSeq;
    }
    this.dedup = options.dedup === false ? undefined : (options.dedup ?? new Deduplicator());
    const rc = options.reconnect ?? {};
    this.backoff = new Backoff(rc);
    this.stableAfterMs = rc.stableAfterMs ?? 10_000;
    this.maxAttempts = rc.maxAttempts ?? Number.POSITIVE_INFINITY;
    this.pingIntervalMs = options.pingIntervalMs ?? 30_000;
    this.keepaliveGraceMs = options.keepaliveGraceMs ?? 10_000;
    this.serverPingMs = this.pingIntervalMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.factory = options.webSocketFactory ?? defaultWebSocketFactory;
    this.fetchImpl = options.fetch ?? (typeof globalThis.fetch === 'function' ? (globalThis.fetch.bind(globalThis) as FetchLike) : undefined);
    this.diagnoseHandshake = options.diagnoseHandshake ?? options.webSocketFactory === undefined;
    this.maxBufferedEvents = options.maxBufferedEvents ?? 10_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 16 * 1024 * 1024;
    for (const [name, v] of [['maxBufferedEvents', this.maxBufferedEvents], ['maxBufferedBytes', this.maxBufferedBytes]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`TpxClient: ${name} must be an integer ≥ 1`);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Public API

  get state(): ClientState {
    return this._state;
  }
  /**
   * The resume position: the last `seq` whose handlers have run, or the end of a gap that was
   * reported, or (before any event) the `last_seq` of the first `subscribed`. Persist it and
   * pass it back as `afterSeq`.
   */
  get lastSeq(): number | undefined {
    return this._lastSeq;
  }
  /** Events received and waiting for handlers (the one being handled not counted), and their frame bytes. */
  get buffered(): { events: number; bytes: number } {
    let events = 0;
    for (const item of this.queue) if (item.kind === 'event') events++;
    return { events, bytes: this.queuedBytes };
  }
  /** Account of the token, known once authenticated. */
  get accountId(): string | undefined {
    return this._accountId;
  }
  /** Rooms the client keeps subscribed. */
  get rooms(): Room[] {
    return [...this.desired];
  }
  /** The de-duplicator in use (share it with the webhook handler). */
  get deduplicator(): Deduplicator | undefined {
    return this.dedup;
  }

  /**
   * Register a handler; returns a function that removes it. Event handlers may be async:
   * the next event waits for them.
   */
  on<K extends TpxClientEventName>(name: K, handler: TpxClientEvents[K]): () => void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(handler as (...args: any[]) => unknown);
    return () => this.off(name, handler);
  }

  off<K extends TpxClientEventName>(name: K, handler: TpxClientEvents[K]): void {
    this.handlers.get(name)?.delete(handler as (...args: any[]) => unknown);
  }

  /**
   * Start connecting. Resolves once the first connection is open (authenticated and
   * subscribed), or when `close()` is called first; rejects with the fatal error if the
   * client stops because of one (4001 auth failure, upgrade refused with a 3xx/4xx, no
   * WebSocket implementation, reconnect attempts exhausted). Transient failures are retried
   * meanwhile. The same error is emitted on `error` and `closed`; the returned promise is
   * marked handled, so `void client.connect()` never causes an unhandled rejection.
   */
  connect(): Promise<void> {
    if (this._state === 'open') return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    promise.catch(() => undefined);
    if (this._state === 'idle' || this._state === 'closed') {
      this.backoff.reset();
      this.gen++;
      void this.openSocket(false);
    }
    return promise;
  }

  /** Stop: close the socket, cancel reconnects, end iterators. Handlers already running finish on their own. */
  close(): Promise<void> {
    if (this._state === 'closed' || this._state === 'idle') {
      this.setState('closed');
      return Promise.resolve();
    }
    const socket = this.socket;
    this.shutdown({ reason: 'client' });
    if (!socket || socket.readyState >= 2) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const fallback = setTimeout(() => {
        socket.terminate?.();
        resolve();
      }, 2_000);
      socket.onclose = () => {
        clearTimeout(fallback);
        resolve();
      };
    });
  }

  /** Add rooms to the desired subscriptions (sent now if connected, and after every reconnect). */
  subscribe(rooms: Room[]): void {
    const added = validateRooms(rooms).filter((r) => !this.desired.has(r));
    for (const r of added) this.desired.add(r);
    if (added.length > 0 && this.ready) this.sendSubscribe(added);
  }

  /** Remove rooms from the desired subscriptions. */
  unsubscribe(rooms: Room[]): void {
    const removed = validateRooms(rooms).filter((r) => this.desired.delete(r));
    if (removed.length > 0 && this.ready) this.send({ msg_type: 'unsubscribe', payload: { rooms: removed } });
  }

  /** Resolves when every event received so far has been processed. */
  drain(): Promise<void> {
    if (!this.pumping && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Async iterator of events (optionally of some types). Back-pressure: the next event is
   * processed (and `lastSeq` advances past the current one) only when the loop asks for it,
   * so `for await (const e of client.events()) await handle(e)` is exactly-once too.
   * Ends when the client closes; throws the fatal error if it closed because of one.
   */
  events<K extends EventType = EventType>(types?: K[]): AsyncIterableIterator<TpxEvent<K>> {
    const filter = types && types.length > 0 ? new Set<string>(types) : undefined;
    let waiting: { resolve: (r: IteratorResult<TpxEvent<K>>) => void; reject: (e: Error) => void } | undefined;
    let pending: { event: TpxEvent<K>; ack: () => void } | undefined;
    let inHand: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    const handler = (event: TpxEvent): Promise<void> | void => {
      if (finished || (filter && !filter.has(event.msg_type))) return;
      return new Promise<void>((ack) => {
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          inHand = ack;
          w.resolve({ value: event as TpxEvent<K>, done: false });
        } else pending = { event: event as TpxEvent<K>, ack };
      });
    };
    const off = this.on('event', handler);
    const control: IteratorControl = {
      finish: (error?: Error) => {
        if (finished) return;
        finished = true;
        failure = error;
        off();
        this.iterators.delete(control);
        inHand?.();
        inHand = undefined;
        pending?.ack();
        pending = undefined;
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          if (error) w.reject(error);
          else w.resolve({ value: undefined, done: true });
        }
      },
    };
    this.iterators.add(control);
    const iterator: AsyncIterableIterator<TpxEvent<K>> = {
      next: () => {
        // Asking for the next event means the previous one is processed.
        inHand?.();
        inHand = undefined;
        if (finished) {
          if (failure) {
            const err = failure;
            failure = undefined;
            return Promise.reject(err);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        if (pending) {
          const p = pending;
          pending = undefined;
          inHand = p.ack;
          return Promise.resolve({ value: p.event, done: false });
        }
        return new Promise((resolve, reject) => (waiting = { resolve, reject }));
      },
      return: () => {
        control.finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TpxEvent> {
    return this.events();
  }

  // ------------------------------------------------------------------------------------------
  // Connection state machine

  private async openSocket(isReconnect: boolean): Promise<void> {
    const gen = this.gen;
    this.ready = false;
    this.authError = undefined;
    this.socketError = undefined;
    this.resumedFrom = undefined;
    this.gapThrough = undefined;
    this.granted.clear();
    if (isReconnect) this.stats.reconnects++;
    this.setState('connecting');
    this.emit('connecting', { attempt: this.backoff.attempts, url: this.url });
    if (gen !== this.gen) return;
    this.connectTimer = setTimeout(
      () => this.abandon(gen, new TpxConnectionError('CONNECT_TIMEOUT', `not subscribed within ${this.connectTimeoutMs} ms`)),
      this.connectTimeoutMs,
    );
    let ws: WebSocketLike;
    try {
      ws = this.transport === 'sse' ? this.openStream(gen) : await this.factory(this.url);
    } catch (err) {
      if (gen !== this.gen) return;
      if (err instanceof TpxError && err.fatal) this.shutdown({ reason: 'fatal', error: err });
      else this.onDrop(gen, { error: new TpxConnectionError('CONNECT_FAILED', errorMessage(err), { cause: err }) });
      return;
    }
    if (gen !== this.gen) {
      // close() ran while the factory worked: `ws` emits 'error' when a CONNECTING socket is
      // terminated, and throws it without a listener (a crash of the whole process).
      detach(ws);
      safeClose(ws, 1000, 'client closed');
      return;
    }
    this.socket = ws;
    let opened = false;
    ws.onopen = () => {
      if (gen !== this.gen) return;
      opened = true;
      this.lastPingAt = Date.now(); // the server's first ping comes one interval after this
      this.pingsSeen = 0;
      this.armKeepalive(gen);
      // An SSE request already carried the key, the rooms and the resume point: `subscribed` is next.
      if (ws instanceof SseLink) this._accountId = ws.accountId ?? this._accountId;
      else this.send({ msg_type: 'authenticate', payload: { token: this.token } });
    };
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      this.handleFrame(ev.data);
      // After the frame: a ping may have taught a new interval; a frame may have ended this connection.
      if (gen === this.gen) this.armKeepalive(gen);
    };
    ws.onerror = (ev) => {
      if (gen !== this.gen) return;
      this.socketError = (ev && (ev.error ?? ev.message)) || 'WebSocket error';
    };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.socket = undefined;
      if (opened) this.onDrop(gen, { closeCode: ev.code, closeReason: ev.reason });
      else if (ws instanceof SseLink) void this.onStreamRefused(gen, ws);
      else void this.onHandshakeFailed(gen, ev.code, ev.reason);
    };
  }

  /** An SSE request for the desired rooms, resuming where a WebSocket would send `after_seq`. */
  private openStream(gen: number): SseLink {
    if (!this.fetchImpl) {
      throw new TpxConnectionError('NO_FETCH', "transport 'sse' needs fetch (Node ≥ 18, browsers) or options.fetch", { fatal: true });
    }
    const link = new SseLink({ url: this.url, token: this.token, rooms: [...this.desired], afterSeq: this.resumePoint(), fetch: this.fetchImpl });
    link.onactivity = () => {
      if (gen === this.gen) this.armKeepalive(gen);
    };
    link.onping = () => {
      if (gen !== this.gen) return;
      this.pingReceived();
      this.armKeepalive(gen);
    };
    return link;
  }

  /**
   * The SSE request failed before the stream started. A network failure or 5xx/408/429 is
   * retried; an `AUTH_…` answer (401/403), invalid rooms (400) or another 3xx/4xx is fatal.
   */
  private async onStreamRefused(gen: number, link: SseLink): Promise<void> {
    const refusal = link.refusal;
    if (!refusal) {
      // No HTTP answer: a TLS mistake (fatal, with a hint) or the network (retried, reason kept).
      const cause = this.socketError;
      let mistake = tlsMistake(this.url, cause);
      if (!mistake && this.plainUrlHungUp(cause) && (await probeSpeaksTls(this.url))) mistake = tlsRequired(this.url);
      if (gen !== this.gen || this._state === 'closed') return;
      if (mistake?.fatal) this.shutdown({ reason: 'fatal', error: mistake });
      else this.onDrop(gen, { closeCode: 1006, error: mistake ?? this.unreachable(cause) });
      return;
    }
    const { status, body } = refusal;
    if (status >= 200 && status < 300) {
      // A page (a console, a proxy's login form, another server): the next answer will be the same.
      this.shutdown({ reason: 'fatal', error: notAStream(this.url, status, refusal.contentType) });
      return;
    }
    const code = typeof body?.code === 'string' ? body.code : undefined;
    const message = typeof body?.error === 'string' ? body.error : `HTTP ${status}`;
    if (code?.startsWith('AUTH_')) {
      this.shutdown({ reason: 'fatal', error: new TpxAuthError(code, message, body) });
      return;
    }
    if (isFatalHandshakeStatus(status)) {
      const error = code && status === 400 ? new TpxServerError(code, message, body, true) : streamRejection(this.url, status);
      this.shutdown({ reason: 'fatal', error });
      return;
    }
    const error = new TpxConnectionError(`HTTP_${status}`, `the event stream at ${this.url} was answered HTTP ${status}${code ? ` (${code})` : ''}`, { httpStatus: status });
    this.onDrop(gen, { error });
  }

  /**
   * The socket closed before it opened: a network failure (retry) or an HTTP answer to the
   * upgrade. A 3xx/4xx answer will not change by itself: fatal, with a hint (see endpoint.ts).
   */
  private async onHandshakeFailed(gen: number, closeCode: number, closeReason: string): Promise<void> {
    const cause = this.socketError;
    let status = statusFromSocketError(cause);
    let mistake = status === undefined ? tlsMistake(this.url, cause) : undefined;
    let why = cause;
    if (status === undefined && mistake === undefined && this.diagnoseHandshake && cause !== undefined && !isUnreachable(cause)) {
      if (this.plainUrlHungUp(cause)) {
        if (await probeSpeaksTls(this.url)) mistake = tlsRequired(this.url);
      } else if (!isHangUp(cause)) {
        // The WHATWG WebSocket says nothing: ask the server with a plain upgrade request.
        const probe = await probeUpgradeStatus(this.url);
        status = probe.status;
        if (status === undefined && probe.error !== undefined) {
          why = probe.error;
          mistake = tlsMistake(this.url, probe.error);
          if (!mistake && this.plainUrlHungUp(probe.error) && (await probeSpeaksTls(this.url))) mistake = tlsRequired(this.url);
        }
      }
    }
    if (gen !== this.gen || this._state === 'closed') return; // closed or timed out meanwhile
    if (status !== undefined && isFatalHandshakeStatus(status)) {
      this.shutdown({ reason: 'fatal', error: handshakeRejection(this.url, status) });
      return;
    }
    if (mistake?.fatal) {
      this.shutdown({ reason: 'fatal', error: mistake });
      return;
    }
    const error =
      status === undefined
        ? (mistake ?? this.unreachable(why))
        : new TpxConnectionError(`HTTP_${status}`, `the WebSocket upgrade at ${this.url} was answered HTTP ${status}`, { httpStatus: status, cause });
    this.onDrop(gen, { closeCode, closeReason, error });
  }

  /** A connection attempt that got no answer: retried, with the reason in `reconnecting`. */
  private unreachable(cause: unknown): TpxConnectionError | undefined {
    const why = describeCause(cause);
    if (why === undefined) return undefined;
    const hint = isRefused(cause) ? ' (is the server running, and is this its port?)' : '';
    return new TpxConnectionError('NETWORK_ERROR', `cannot connect to ${this.url}: ${why}${hint}`, { cause });
  }

  /** A plain (ws:, http:) URL whose server closed without an answer: maybe a TLS port (probed). */
  private plainUrlHungUp(cause: unknown): boolean {
    return cause !== undefined && !isTlsUrl(this.url) && isHangUp(cause);
  }

  /** Give up on the current socket without waiting for a closing handshake (dead peer, timeout). */
  private abandon(gen: number, error: TpxConnectionError): void {
    if (gen !== this.gen) return;
    const ws = this.socket;
    this.socket = undefined;
    if (ws) {
      detach(ws);
      if (ws.terminate) ws.terminate();
      else safeClose(ws, 4000, error.code);
    }
    this.onDrop(gen, { error });
  }

  private onDrop(gen: number, info: { closeCode?: number; closeReason?: string; error?: TpxConnectionError }): void {
    if (gen !== this.gen || this._state === 'closed') return;
    this.gen++;
    this.clearConnectionTimers();
    if (this.socket) {
      detach(this.socket);
      safeClose(this.socket, 1000, '');
      this.socket = undefined;
    }
    const { closeCode, closeReason } = info;
    if (this.authError || (closeCode !== undefined && FATAL_CLOSE_CODES.has(closeCode))) {
      const err =
        this.authError ??
        new TpxAuthError('AUTH_FAILED', `authentication failed (close ${closeCode}${closeReason ? `: ${closeReason}` : ''})`, {}, closeCode);
      this.shutdown({ reason: 'fatal', closeCode, error: err });
      return;
    }
    if (this.backoff.attempts >= this.maxAttempts) {
      const err = new TpxConnectionError('MAX_ATTEMPTS', `gave up after ${this.maxAttempts} reconnect attempts`, {
        closeCode,
        closeReason,
        fatal: true,
      });
      this.shutdown({ reason: 'max_attempts', closeCode, error: err });
      return;
    }
    const error =
      info.error ??
      new TpxConnectionError(
        closeCode === undefined ? 'NETWORK_ERROR' : `CLOSED_${closeCode}`,
        closeCode === undefined
          ? (describeCause(this.socketError) ?? 'connection error')
          : `connection closed (${closeCode}${closeReason ? `: ${closeReason}` : ''})${closeCode === 1006 && this.socketError !== undefined ? `: ${describeCause(this.socketError)}` : ''}`,
        { closeCode, closeReason, cause: this.socketError },
      );
    if (error.code.startsWith('TLS_') && !this.tlsReported) {
      // Retried (an expired certificate gets renewed) but never silent: once per failing streak.
      this.tlsReported = true;
      this.emit('error', error);
    }
    const attempt = this.backoff.attempts + 1;
    const delayMs = this.backoff.next();
    this.setState('reconnecting');
    this.emit('reconnecting', { attempt, delayMs, closeCode, closeReason, error });
    const nextGen = this.gen;
    const overflowed = error.code === 'BUFFER_OVERFLOW';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (nextGen !== this.gen || this._state !== 'reconnecting') return;
      // After an overflow, let the handlers catch up before asking for the replay.
      const ready = overflowed ? this.drain() : Promise.resolve();
      void ready.then(() => {
        if (nextGen !== this.gen || this._state !== 'reconnecting') return;
        void this.openSocket(true);
      });
    }, delayMs);
  }

  private shutdown(info: ClosedInfo): void {
    this.gen++;
    this.clearConnectionTimers();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.socket;
    this.socket = undefined;
    if (ws) {
      detach(ws);
      safeClose(ws, 1000, 'client closed');
    }
    this.ready = false;
    this.discardQueue(); // not processed → replayed on the next start from lastSeq
    // Settled with THIS ending only: a listener below may call connect() again, whose promise
    // must wait for the new attempt.
    const waiters = this.connectWaiters.splice(0);
    this.setState('closed');
    if (info.error) {
      // Never silent: with nobody listening, say why the client stopped.
      if (!this.handlers.get('error')?.size) console.error(`[tpx-client] stopped: ${info.error.code}: ${info.error.message}`);
      this.emit('error', info.error);
    }
    this.emit('closed', info);
    // close() before the first open settles connect() quietly; fatal endings reject it.
    for (const w of waiters) {
      if (info.error) w.reject(info.error);
      else w.resolve();
    }
    for (const it of [...this.iterators]) it.finish(info.reason === 'client' ? undefined : info.error);
  }

  private markOpen(): void {
    if (this.ready) return;
    this.ready = true;
    this.tlsReported = false;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.stats.connections++;
    const gen = this.gen;
    this.stableTimer = setTimeout(() => {
      if (gen === this.gen) this.backoff.reset();
    }, this.stableAfterMs);
    this.setState('open');
    const info: OpenInfo = { accountId: this._accountId ?? '', rooms: [...this.granted] };
    if (this.resumedFrom !== undefined) info.resumedFrom = this.resumedFrom;
    this.emit('open', info);
    for (const w of this.connectWaiters.splice(0)) w.resolve();
  }

  /**
   * Any message resets the liveness deadline: the server's ping interval as learnt, plus the grace.
   * At the deadline a WebSocket asks the server (`ping`, answered with `pong`, SPEC §2.1) and gives
   * up only if nothing comes within the grace: a server that pings less often than we assumed is
   * not mistaken for a dead one. SSE cannot ask: a stream that timed out before its first ping
   * doubles the interval assumed for the next connection (at most 10 minutes).
   */
  private armKeepalive(gen: number): void {
    if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
    const silence = this.serverPingMs + this.keepaliveGraceMs;
    this.keepaliveTimer = setTimeout(() => {
      if (gen !== this.gen) return;
      if (this.transport === 'websocket') {
        this.send({ msg_type: 'ping', payload: {} });
        this.keepaliveTimer = setTimeout(
          () => this.abandon(gen, new TpxConnectionError('KEEPALIVE_TIMEOUT', `no message from the server for ${silence} ms, nor an answer to a ping within ${this.keepaliveGraceMs} ms`)),
          this.keepaliveGraceMs,
        );
        return;
      }
      if (this.pingsSeen === 0) this.serverPingMs = Math.min(this.serverPingMs * 2, MAX_ASSUMED_PING_MS);
      this.abandon(gen, new TpxConnectionError('KEEPALIVE_TIMEOUT', `no message from the server for ${silence} ms`));
    }, silence);
  }

  /** A server ping: learn its cadence from the gap since the previous one (or since open). */
  private pingReceived(): void {
    const now = Date.now();
    if (this.lastPingAt !== undefined) this.serverPingMs = Math.min(Math.max(this.pingIntervalMs, now - this.lastPingAt), MAX_ASSUMED_PING_MS);
    this.lastPingAt = now;
    this.pingsSeen++;
  }

  private clearConnectionTimers(): void {
    for (const t of [this.connectTimer, this.keepaliveTimer, this.stableTimer]) if (t) clearTimeout(t);
    this.connectTimer = this.keepaliveTimer = this.stableTimer = undefined;
  }

  private setState(next: ClientState): void {
    const prev = this._state;
    if (prev === next) return;
    this._state = next;
    this.emit('state', next, prev);
  }

  // ------------------------------------------------------------------------------------------
  // Frames

  private send(message: { msg_type: string; payload?: unknown }): void {
    const ws = this.socket;
    if (!ws || ws.readyState !== WS_OPEN) return;
    try {
      ws.send(JSON.stringify(message));
    } catch (err) {
      this.socketError = err;
    }
  }

  /**
   * `after_seq` for a (re)subscribe: past everything received (processed, or queued: the queue is
   * kept across reconnects), else the last processed seq.
   */
  private resumePoint(): number | undefined {
    if (this.receivedThrough === undefined) return this._lastSeq;
    return Math.max(this.receivedThrough, this._lastSeq ?? 0);
  }

  private sendSubscribe(rooms: Room[]): void {
    const payload: { rooms: Room[]; after_seq?: number } = { rooms };
    const after = this.resumePoint();
    if (after !== undefined) payload.after_seq = after;
    this.send({ msg_type: 'subscribe', payload });
  }

  private handleFrame(data: unknown): void {
    const text = frameText(data);
    let frame: unknown;
    try {
      if (text === undefined) throw new Error('binary frame');
      frame = JSON.parse(text);
    } catch (err) {
      this.emit('error', new TpxProtocolError(`unreadable frame from server: ${errorMessage(err)}`, err));
      return;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame)) {
      this.emit('error', new TpxProtocolError('frame is not a JSON object'));
      return;
    }
    const f = frame as { msg_type?: unknown; msg_id?: unknown; seq?: unknown; sent_at?: unknown; payload?: unknown };
    const payload = (f.payload && typeof f.payload === 'object' ? f.payload : {}) as Record<string, unknown>;
    switch (f.msg_type) {
      case 'ping':
        this.pingReceived();
        this.send({ msg_type: 'pong', payload: {} });
        return;
      case 'pong':
        return;
      case 'authenticated':
        this._accountId = typeof payload.account_id === 'string' ? payload.account_id : undefined;
        if (this.desired.size > 0) this.sendSubscribe([...this.desired]);
        else this.markOpen();
        return;
      case 'subscribed': {
        if (Array.isArray(payload.rooms)) for (const r of payload.rooms) if (isRoom(r)) this.granted.add(r);
        if (typeof payload.resumed_from === 'number') this.resumedFrom = payload.resumed_from;
        this.adoptLastSeq(payload.last_seq, payload.resumed_from);
        const gap = gapOf(payload.gap);
        if (gap) this.enqueueGap(gap);
        this.markOpen();
        return;
      }
      case 'gap': {
        // Seqs the server skips at this point of the stream (pruned while replaying): never silent.
        const gap = gapOf(payload);
        if (gap) this.enqueueGap(gap);
        else this.emit('error', new TpxProtocolError('gap frame without from_seq/to_seq'));
        return;
      }
      case 'unsubscribed':
        if (Array.isArray(payload.rooms)) for (const r of payload.rooms) this.granted.delete(r as Room);
        return;
      case 'error': {
        const code = typeof payload.code === 'string' ? payload.code : 'UNKNOWN';
        const message = typeof payload.error === 'string' ? payload.error : code;
        // SSE: the stream ends next with `: close 4009`, reported like the WebSocket's close.
        if (code === 'SLOW_CONSUMER') return;
        if (code.startsWith('AUTH_') && code !== 'AUTH_REQUIRED') {
          // The server closes with 4001 next; reported once, as the fatal error.
          this.authError = new TpxAuthError(code, message, payload);
          return;
        }
        this.emit('error', new TpxServerError(code, message, payload));
        // A refused subscribe still leaves a usable, authenticated connection.
        if (!this.ready && this._accountId !== undefined && (code === 'INVALID_ROOM' || code === 'NO_VALID_ROOMS')) this.markOpen();
        return;
      }
      default:
        break;
    }
    if (!isEventType(f.msg_type)) return; // unknown control message: forward compatible
    if (typeof f.msg_id !== 'string' || (f.seq !== undefined && typeof f.seq !== 'number')) {
      this.emit('error', new TpxProtocolError(`event frame without a valid msg_id/seq (${f.msg_type})`));
      return;
    }
    this.stats.received++;
    const bytes = text!.length;
    if (this.queue.length >= this.maxBufferedEvents || (this.queuedBytes > 0 && this.queuedBytes + bytes > this.maxBufferedBytes)) {
      // This event and what follows it on this connection are not kept: the connection is
      // dropped, the queue is processed, and the resume point (after the queue) brings them back.
      const limit = this.queue.length >= this.maxBufferedEvents ? `${this.maxBufferedEvents} events` : `${this.maxBufferedBytes} bytes`;
      this.abandon(this.gen, new TpxConnectionError('BUFFER_OVERFLOW', `more than ${limit} waiting for handlers`));
      return;
    }
    const event = {
      msg_type: f.msg_type,
      msg_id: f.msg_id,
      sent_at: typeof f.sent_at === 'number' ? f.sent_at : Date.now(),
      payload,
      via: this.transport === 'sse' ? 'sse' : 'websocket',
    } as TpxEvent;
    if (typeof f.seq === 'number') event.seq = f.seq;
    this.enqueue({ kind: 'event', event, bytes });
  }

  /**
   * `last_seq` of a `subscribed` (SPEC §2.8): the account's newest seq when the subscription took
   * effect. With no position yet (no `afterSeq`, nothing received), it becomes the resume
   * position: everything after it reaches this connection, and a reconnect asks for exactly
   * that. If it is below the position we resumed from, the server's stream is behind our
   * checkpoint (its store was reset, or this is another environment): say so, and follow the
   * server, or every new event up to our old checkpoint would be skipped as a duplicate.
   */
  private adoptLastSeq(lastSeq: unknown, resumedFrom: unknown): void {
    if (typeof lastSeq !== 'number' || !Number.isSafeInteger(lastSeq) || lastSeq < 0) return; // server without last_seq
    if (this.resumePoint() === undefined) {
      this._lastSeq = lastSeq;
      return;
    }
    if (typeof resumedFrom === 'number' && lastSeq < resumedFrom && this.resumePoint()! > lastSeq) {
      this.emit(
        'error',
        new TpxError(
          'protocol',
          'RESUME_BEYOND_STREAM',
          `resumed after seq ${resumedFrom} but the server's stream ends at ${lastSeq} (store reset or another environment?): continuing from ${lastSeq}`,
        ),
      );
      this._lastSeq = lastSeq;
      if (this.receivedThrough !== undefined && this.receivedThrough > lastSeq) this.receivedThrough = lastSeq;
    }
  }

  // ------------------------------------------------------------------------------------------
  // In-order processing

  /** A gap, once per connection: over SSE the range of `subscribed.gap` also comes as a gap message. */
  private enqueueGap(gap: GapInfo): void {
    if (this.gapThrough !== undefined && gap.to_seq <= this.gapThrough) return;
    this.gapThrough = gap.to_seq;
    this.enqueue({ kind: 'gap', gap });
  }

  private enqueue(item: QueueItem): void {
    this.queue.push(item);
    const through = item.kind === 'gap' ? item.gap.to_seq : item.event.seq;
    if (item.kind === 'event') this.queuedBytes += item.bytes;
    if (through !== undefined && (this.receivedThrough === undefined || through > this.receivedThrough)) this.receivedThrough = through;
    if (!this.pumping) void this.pump();
  }

  /** Drop what waits for handlers (the client stops): a later start resumes from `lastSeq`. */
  private discardQueue(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.receivedThrough = undefined;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const item = this.queue.shift()!;
        if (item.kind === 'event') this.queuedBytes -= item.bytes;
        if (item.kind === 'gap') await this.dispatchGap(item.gap);
        else await this.process(item.event);
      }
    } finally {
      this.pumping = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Run the `gap` handlers; then the range counts as dealt with, so a reconnect resumes after it. */
  private async dispatchGap(gap: GapInfo): Promise<void> {
    for (const h of [...(this.handlers.get('gap') ?? [])]) {
      try {
        await h(gap);
      } catch (err) {
        this.emit('error', new TpxError('handler', 'HANDLER_FAILED', `gap handler failed: ${errorMessage(err)}`, { cause: err }));
      }
    }
    if (this._lastSeq === undefined || gap.to_seq > this._lastSeq) this._lastSeq = gap.to_seq;
  }

  private async process(event: TpxEvent): Promise<void> {
    const seq = event.seq;
    if (seq !== undefined && this._lastSeq !== undefined && seq <= this._lastSeq) {
      this.stats.duplicates++;
      return;
    }
    const run = async () => {
      for (const h of [...(this.handlers.get(event.msg_type) ?? [])]) await h(event);
      for (const h of [...(this.handlers.get('event') ?? [])]) await h(event);
    };
    try {
      const handled = this.dedup ? await this.dedup.run(event.msg_id, run) : (await run(), true);
      if (handled) this.stats.processed++;
      else this.stats.duplicates++;
    } catch (err) {
      // Policy: report and move on. The msg_id is not remembered, so a webhook copy can still be handled.
      this.stats.processed++;
      this.stats.handlerErrors++;
      this.emit('error', new TpxHandlerError(event, err));
    }
    if (seq !== undefined && (this._lastSeq === undefined || seq > this._lastSeq)) this._lastSeq = seq;
  }

  private emit<K extends TpxClientEventName>(name: K, ...args: Parameters<TpxClientEvents[K]>): void {
    const set = this.handlers.get(name);
    if (!set) return;
    for (const h of [...set]) {
      try {
        const r = h(...args);
        if (r && typeof (r as Promise<unknown>).catch === 'function') (r as Promise<unknown>).catch(() => undefined);
      } catch (err) {
        if (name !== 'error') this.emit('error', new TpxError('handler', 'HANDLER_FAILED', `${name} listener failed: ${errorMessage(err)}`, { cause: err }));
      }
    }
  }
}

function gapOf(value: unknown): GapInfo | undefined {
  const g = value as Partial<GapInfo> | undefined;
  if (!g || typeof g !== 'object') return undefined;
  if (!Number.isSafeInteger(g.from_seq) || !Number.isSafeInteger(g.to_seq)) return undefined;
  return { from_seq: g.from_seq!, to_seq: g.to_seq! };
}

function validateRooms(rooms: readonly string[]): Room[] {
  if (!Array.isArray(rooms)) throw new TypeError('rooms must be an array');
  const bad = rooms.filter((r) => !isRoom(r));
  if (bad.length > 0) throw new TypeError(`unknown room(s): ${bad.join(', ')}`);
  return [...new Set(rooms as Room[])];
}

function detach(ws: WebSocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onerror = () => undefined; // keep an error listener: `ws` throws on unhandled 'error'
  ws.onclose = null;
}

function safeClose(ws: WebSocketLike, code: number, reason: string): void {
  try {
    if (ws.readyState === 0 && ws.terminate) ws.terminate();
    else ws.close(code, reason);
  } catch {
    /* already closed */
  }
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  return 'connection error';
}
