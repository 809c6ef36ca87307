/**
 * One client connection as an explicit state machine (docs/architecture.md):
 *
 *   awaiting_auth ──beginAuthentication──▶ authenticating ──goLive──▶ live ──▶ closing
 *                                                                    (streaming ⇄ replaying)
 *
 * The state is private; sessions, replay, the hub and the keepalive sweeper change it only
 * through the transition methods below. Every transition that follows an `await` re-validates:
 * was the connection closed, its key disabled or revoked (KeyGuard), or did the key expire
 * meanwhile? The connection is transport-free: it decides what to send and hands bytes to a
 * Transport (WebSocket or SSE), which frames, writes and enforces the outbound limit.
 */
import { randomBytes } from 'node:crypto';
import { CloseCode, ErrorCode, type Room } from '@tpx-realtime/protocol';
import type { KeyDisableReason } from '../bus/types.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Account, AccountEvent } from '../store/types.js';
import { controlFrame, errorFrame } from './frames.js';
import { countBits, ROOM_BIT, roomMask, roomsOfBits } from './rooms.js';
import { Gap, ReplayHold } from './replay-hold.js';
import { EventFrame, type ControlType, type Transport } from './transport.js';

export type ConnectionState = 'awaiting_auth' | 'authenticating' | 'replaying' | 'streaming' | 'closing';

/** Who a connection is, once its key was looked up. */
export interface Credentials {
  accountId: string;
  keyId: string;
  /** Key expiry (epoch ms); Infinity when the key never expires. */
  expiresAtMs: number;
}

/** Answers "was this key (or its account) disabled since `sinceMs`?" (revocation.ts). */
export interface KeyGuard {
  refusal(keyId: string, accountId: string, sinceMs: number): KeyDisableReason | null;
}

export interface ConnectionLimits {
  authTimeoutMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /**
   * How long queued bytes may sit without any progress before the peer counts as a slow consumer
   * (4009), when it still answers pings or we stopped reading it (see tick()).
   */
  stallTimeoutMs: number;
  /** Bytes of live events held while a replay runs; past it the replay reads the store again. */
  replayBufferBytes: number;
}

const REVOKED: Record<KeyDisableReason, { code: ErrorCode; text: string }> = {
  inactive: { code: ErrorCode.AUTH_API_KEY_INACTIVE, text: 'API key was deactivated' },
  revoked: { code: ErrorCode.AUTH_INVALID_API_KEY, text: 'API key was revoked' },
  expired: { code: ErrorCode.AUTH_API_KEY_EXPIRED, text: 'API key expired' },
};

/** Ids unique across nodes: a per-process random prefix and a serial. */
const ID_PREFIX = `c${randomBytes(4).toString('hex')}-`;
let nextId = 1;

export class Connection {
  // Per-connection state is kept flat and small (idle memory per connection is an issue-13
  // target): a serial instead of an id string, epoch ms instead of a Date, the credentials as
  // two fields, the rooms as bits instead of a Set (docs/performance.md, round 3).
  private readonly serial = nextId++;
  /** Epoch ms of the connection. */
  readonly connectedAtMs: number;
  private state: ConnectionState = 'awaiting_auth';
  private account: string | null = null;
  private key: string | null = null;
  private authStartedAt = 0;
  /** From the credentials: the per-event expiry check is one compare. */
  private expiresAtMs = Infinity;
  /** Rooms subscribed to, as ROOM_BIT bits (names, ALL included). */
  private roomBits = 0;
  /** Bitmask of event types subscribed to (rooms.ts). */
  private mask = 0;
  /** Highest seq sent (or announced as a gap): nothing at or below it is ever sent again. */
  private position = 0;
  private replay: ReplayHold | null = null;

  // Deadlines, checked by one sweeper for all connections (tick): no timer per connection.
  private readonly authDeadline: number;
  private nextPingAt: number;
  /** Time the oldest unanswered ping was sent, 0 when none is outstanding. */
  private pingOutstandingSince = 0;
  private lastPongAt = 0;
  /** Outbound stall: since when queued bytes have not moved, and the progress mark then. */
  private stalledSince = 0;
  private stallMark = 0;

  constructor(
    readonly transport: Transport,
    now: number,
    private readonly limits: ConnectionLimits,
    private readonly metrics: GatewayMetrics,
  ) {
    this.connectedAtMs = now;
    this.authDeadline = now + limits.authTimeoutMs;
    this.nextPingAt = now + limits.pingIntervalMs;
  }

  /** Unique across nodes (a disconnect request is routed to whichever node holds it). */
  get id(): string {
    return ID_PREFIX + this.serial;
  }

  // ------------------------------------------------------------------ read-only views

  get currentState(): ConnectionState {
    return this.state;
  }
  get isLive(): boolean {
    return this.state === 'streaming' || this.state === 'replaying';
  }
  get isClosing(): boolean {
    return this.state === 'closing';
  }
  get accountId(): string | null {
    return this.account;
  }
  get keyId(): string | null {
    return this.key;
  }
  /** Highest seq this connection has been given (or told it will never get). */
  get lastSeq(): number {
    return this.position;
  }
  get subscribedMask(): number {
    return this.mask;
  }
  /** The rooms subscribed to (built on demand: listings only). */
  get rooms(): readonly Room[] {
    return roomsOfBits(this.roomBits);
  }
  get roomCount(): number {
    return countBits(this.roomBits);
  }

  // ------------------------------------------------------------------ authentication

  /** awaiting_auth → authenticating. False when the connection is past that point. */
  beginAuthentication(): boolean {
    if (this.state !== 'awaiting_auth') return false;
    this.state = 'authenticating';
    this.authStartedAt = Date.now();
    return true;
  }

  /**
   * After the key lookup's await: bind the credentials and re-validate (closed meanwhile? the key
   * disabled since authentication began? expired?). Stays authenticating; false when refused.
   */
  authorize(credentials: Credentials, guard: KeyGuard): boolean {
    if (this.state !== 'authenticating') return false;
    this.account = credentials.accountId;
    this.key = credentials.keyId;
    this.expiresAtMs = credentials.expiresAtMs;
    return this.revalidate(guard);
  }

  /** After the account's preparation await: authenticating → streaming, re-validated. */
  goLive(guard: KeyGuard): boolean {
    if (this.state !== 'authenticating' || !this.revalidate(guard)) return false;
    this.state = 'streaming';
    return true;
  }

  /**
   * Re-check what may have changed during an await. Closes the connection (with the matching
   * AUTH_… code) and returns false when it may no longer receive anything.
   */
  revalidate(guard: KeyGuard, now = Date.now()): boolean {
    if (this.state === 'closing') return false;
    if (this.key !== null && this.account !== null) {
      const refused = guard.refusal(this.key, this.account, this.authStartedAt);
      if (refused) {
        this.revoke(refused);
        return false;
      }
      if (now >= this.expiresAtMs) {
        this.revoke('expired');
        return false;
      }
    }
    return true;
  }

  // ------------------------------------------------------------------ subscriptions

  /** Add rooms (live only). Returns how many rooms were new. */
  subscribe(rooms: readonly Room[]): number {
    if (!this.isLive) return 0;
    let added = 0;
    for (const room of rooms) {
      const bit = ROOM_BIT[room];
      if ((this.roomBits & bit) === 0) {
        this.roomBits |= bit;
        added++;
      }
      this.mask |= roomMask(room);
    }
    return added;
  }

  /** Remove rooms; returns how many were subscribed. */
  unsubscribe(rooms: readonly Room[]): number {
    let removed = 0;
    for (const room of rooms) {
      const bit = ROOM_BIT[room];
      if ((this.roomBits & bit) !== 0) {
        this.roomBits &= ~bit;
        removed++;
      }
    }
    let mask = 0;
    for (const room of roomsOfBits(this.roomBits)) mask |= roomMask(room);
    this.mask = mask;
    return removed;
  }

  // ------------------------------------------------------------------ live delivery (hot path)

  /**
   * One in-order event of this connection's account. O(1): a mask AND, a seq compare, an
   * expiry compare against the event's acceptance time, then a write of the shared bytes.
   * Returns true when written.
   */
  deliver(frame: EventFrame): boolean {
    if ((this.mask & frame.bit) === 0) return false;
    if (this.state === 'streaming') {
      if (frame.seq <= this.position) return false;
      if (frame.createdAtMs >= this.expiresAtMs) {
        this.revoke('expired');
        return false;
      }
      if (!this.transport.sendEvent(frame)) {
        this.slowConsumer();
        return false;
      }
      this.position = frame.seq;
      return true;
    }
    if (this.state === 'replaying') this.hold(frame);
    return false;
  }

  /**
   * Seqs `from`..`to` of the account will never be delivered (the sequencer skipped them):
   * announce them at this point of the stream (SPEC §2.8), never silently.
   */
  announceGap(from: number, to: number): void {
    if (this.state === 'replaying') {
      this.hold(new Gap(from, to));
      return;
    }
    if (this.state !== 'streaming' || to <= this.position) return;
    const start = Math.max(from, this.position + 1);
    this.position = to;
    if (this.mask !== 0) this.send('gap', controlFrame('gap', { from_seq: start, to_seq: to }), to);
  }

  // ------------------------------------------------------------------ replay (replay.ts drives it)

  /** streaming → replaying: live events are held from now on until finishReplay. */
  beginReplay(afterSeq: number): boolean {
    if (this.state !== 'streaming') return false;
    this.state = 'replaying';
    if (this.position < afterSeq) this.position = afterSeq;
    this.replay = new ReplayHold(this.limits.replayBufferBytes);
    return true;
  }

  /**
   * Lower a resume point that lies beyond the account's head back to the head: every later event
   * then reaches the connection (SPEC §2.8), where it would otherwise be skipped up to after_seq.
   */
  limitPositionTo(head: number): void {
    if (this.state === 'replaying' && this.position > head) this.position = head;
  }

  /** Raise the position without a frame (a range announced in `subscribed`). */
  skipTo(seq: number): void {
    if (this.state === 'replaying' && seq > this.position) this.position = seq;
  }

  /** A range the replay found pruned: announce it with a `gap` frame. */
  replayGap(from: number, to: number): boolean {
    if (this.state !== 'replaying') return false;
    if (to > this.position) {
      const start = Math.max(from, this.position + 1);
      this.position = to;
      if (!this.send('gap', controlFrame('gap', { from_seq: start, to_seq: to }), to)) return false;
    }
    return true;
  }

  /** One stored event of the replay. False when the connection can take no more. */
  replayEvent(event: AccountEvent, sentAt: number): boolean {
    if (this.state !== 'replaying') return false;
    if (event.seq <= this.position) return true;
    if (event.created_at_ms >= this.expiresAtMs) {
      this.revoke('expired');
      return false;
    }
    if (!this.transport.sendEvent(new EventFrame(event, sentAt))) {
      this.slowConsumer();
      return false;
    }
    this.position = event.seq;
    return true;
  }

  /**
   * End of the stored history: replaying → streaming, sending what was held meanwhile in order
   * (skipping what the replay already sent). 'again' when the hold overflowed: the caller reads
   * the store again from the current position, holding afresh.
   */
  finishReplay(): 'live' | 'again' | 'closed' {
    const held = this.replay;
    if (this.state !== 'replaying' || held === null) return 'closed';
    if (held.overflowed) {
      this.replay = new ReplayHold(this.limits.replayBufferBytes);
      return 'again';
    }
    this.replay = null;
    this.state = 'streaming';
    for (const item of held.items) {
      if (item instanceof Gap) this.announceGap(item.from, item.to);
      else this.deliver(item);
      if (this.state !== 'streaming') return 'closed';
    }
    return 'live';
  }

  private hold(item: EventFrame | Gap): void {
    this.replay!.add(item);
  }

  // ------------------------------------------------------------------ replies

  /**
   * Queue a control message; false (and 4009) when the outbound limit is reached. `position`: the
   * stream position a `subscribed` or `gap` establishes (Transport.sendControl).
   */
  send(type: ControlType, json: string, position?: number): boolean {
    if (this.state === 'closing') return false;
    if (!this.transport.sendControl(type, json, position)) {
      this.slowConsumer();
      return false;
    }
    return true;
  }

  sendError(code: string, message: string, extra?: Record<string, unknown>): boolean {
    this.metrics.errors.inc({ code });
    return this.send('error', errorFrame(code, message, extra));
  }

  // ------------------------------------------------------------------ endings

  /** The key was disabled, revoked, or expired: the matching AUTH_… error, then 4001. */
  revoke(reason: KeyDisableReason): void {
    const { code, text } = REVOKED[reason];
    this.fail(code, text, CloseCode.AUTH_FAILED);
  }

  /** Send an error frame then close with `closeCode` (auth failures, revocation, rate limit). */
  fail(code: string, message: string, closeCode: number): void {
    if (this.state === 'closing') return;
    this.metrics.errors.inc({ code });
    if (this.transport.sendControl('error', errorFrame(code, message))) {
      this.close(closeCode, message);
      return;
    }
    // No room for the error frame (the peer stopped reading): still close with the code that
    // tells the client what happened (e.g. 4001: do not reconnect with this key).
    this.end(closeCode);
    this.transport.abort(closeCode, message);
  }

  /** Server-initiated close (counted by code). */
  close(code: number, reason = ''): void {
    if (this.state === 'closing') return;
    this.end(code);
    this.transport.close(code, reason);
  }

  /** The peer stopped reading: 4009, dropping what is queued (SPEC §2.7, §2.9). */
  slowConsumer(): void {
    if (this.state === 'closing') return;
    this.end(CloseCode.SLOW_CONSUMER);
    this.transport.abort(CloseCode.SLOW_CONSUMER, 'slow consumer: outbound buffer limit reached');
  }

  /** → closing, counted by close code. */
  private end(code: number): void {
    this.state = 'closing';
    this.replay = null;
    this.metrics.closes.inc({ code: String(code) });
  }

  /** The transport is gone (peer closed, socket error). */
  transportClosed(): void {
    this.state = 'closing';
    this.replay = null;
  }

  // ------------------------------------------------------------------ keepalive and deadlines

  pongReceived(now: number): void {
    this.pingOutstandingSince = 0;
    this.lastPongAt = now;
  }

  /**
   * The sweeper's visit: auth deadline (4002), key expiry (4001), outbound stall (4009),
   * keepalive (4003), next ping. A stall is a queue whose bytes have not moved for the stall
   * timeout while the peer still answers pings (a "blind pong") or while we stopped reading it;
   * a peer silent on both counts gets the keepalive's 4003.
   */
  tick(now: number): void {
    const state = this.state;
    if (state === 'closing') return;
    if (state === 'awaiting_auth' || state === 'authenticating') {
      if (now >= this.authDeadline) {
        this.close(CloseCode.AUTH_TIMEOUT, 'authentication timeout');
        return;
      }
    } else if (now >= this.expiresAtMs) {
      this.revoke('expired');
      return;
    }
    const transport = this.transport;
    const { pongTimeoutMs, stallTimeoutMs } = this.limits;
    if (transport.queuedBytes === 0) this.stalledSince = 0;
    else {
      const sent = transport.sentBytes;
      if (this.stalledSince === 0 || sent > this.stallMark) {
        this.stalledSince = now;
        this.stallMark = sent;
      } else if (now - this.stalledSince >= stallTimeoutMs && (this.lastPongAt > this.stalledSince || transport.readingPaused || !transport.answersPings)) {
        this.slowConsumer();
        return;
      }
    }
    if (transport.answersPings && !transport.readingPaused && this.pingOutstandingSince !== 0 && now - this.pingOutstandingSince >= pongTimeoutMs) {
      this.close(CloseCode.KEEPALIVE_TIMEOUT, 'keepalive timeout: no pong');
      return;
    }
    if (now >= this.nextPingAt) {
      this.nextPingAt = now + this.limits.pingIntervalMs;
      if (this.pingOutstandingSince === 0) this.pingOutstandingSince = now;
      this.send('ping', controlFrame('ping', {}));
    }
  }

  describe(account: Account | undefined, nodeId: string): Record<string, unknown> {
    return {
      connection_id: this.id,
      account_id: this.accountId,
      account_name: account?.name ?? null,
      key_id: this.keyId,
      rooms: this.rooms,
      // `authenticated` for live connections (what the console and CLI show); `phase` is exact.
      state: this.isLive ? 'authenticated' : this.state,
      phase: this.state,
      connected_at: new Date(this.connectedAtMs).toISOString(),
      connected_since: new Date(this.connectedAtMs).toISOString(),
      last_seq: this.position,
      remote_address: this.transport.remoteAddress,
      transport: this.transport.kind,
      node: nodeId,
    };
  }
}
