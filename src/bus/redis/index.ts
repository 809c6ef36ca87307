/**
 * Redis fan-out between gateway nodes (SPEC §7, DESIGN "Bus" seam).
 *
 * Connections: one publisher and one subscriber connection per node, whatever the number of
 * WebSocket connections or accounts.
 *
 * Channels:
 *   - `tpx:acct:<account_id>`: one per account, subscribed only while this node holds at least
 *     one connection of that account (the hub calls subscribeAccount on the first connection and
 *     unsubscribeAccount after the last; we reference count anyway). So a node only receives the
 *     traffic of accounts it serves: Redis never sends every message to every node.
 *   - `tpx:control`: every node; key revocations, account changes, and the bus's own resync hint.
 *
 * Messages carry the stored AccountEvents (JSON, with their seq), so the hot path needs no store
 * read. Envelope: `{"o":"<origin instance>","e":[AccountEvent…]}` or `{"o":…,"c":ControlMessage}`
 * or `{"o":…,"r":1}` (resync: "I failed to publish something; everyone catch up from the store").
 *
 * Own messages: a node delivers its own events and control messages to its local handlers
 * synchronously inside publishEvents/publishControl (like the in-process bus), and ignores the
 * copy Redis echoes back (tagged with a random per-process origin id, not TPX_NODE_ID, which
 * operators could accidentally reuse). Why local-first rather than "everything via the round
 * trip": the publishing node's own connections get the event without the Redis hop, and still
 * get it while Redis is down; each frame is produced once (the echo is dropped before parsing
 * the events).
 *
 * Redis holds nothing that cannot be lost: it is pure pub/sub, no keys. When the subscriber
 * connection comes back after a drop (Redis restarted, network blip) the bus re-subscribes
 * every channel it needs and only THEN calls the onReconnect handlers, so the gateway's catch-up
 * from the store overlaps with live traffic instead of leaving a hole (the hub drops seq it
 * already delivered). When this node failed to publish (publisher connection down), it sends a
 * resync hint once its publisher is back, so other nodes catch up even if their own subscriber
 * connection never dropped.
 *
 * Failure: the publisher has no offline queue, a short connect timeout, no per-request retries
 * and a command timeout, so publishEvents rejects within about a second while Redis is down;
 * the publish pipeline logs that and still answers 202 (the event is in the store).
 *
 * Hearing: a node knows whether it hears the bus. The subscriber connection sends PING every
 * HEARTBEAT_MS; no answer within HEARTBEAT_DEADLINE_MS, a closed connection, or channels not yet
 * re-subscribed make the node deaf. ioredis's connection status alone is not enough: a Redis
 * stopped with SIGSTOP keeps its TCP connections open and simply never answers. While deaf, the
 * gateway re-checks key status from the store (SPEC §7); when hearing returns it catches up
 * (onReconnect) because anything may have been missed meanwhile.
 *
 * Acknowledged control messages (broadcastControl): the message carries a request id and this
 * node's reply channel; every node that receives it (this node's own echo included) answers on
 * that channel once its handlers have applied it. PUBLISH returns how many subscribers received
 * the message, so the sender knows how many answers to wait for.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { AccountEvent } from '../../store/types.js';
import { applyControl, type BroadcastResult, type Bus, type ControlHandler, type ControlMessage, type PresenceSnapshot } from '../types.js';

export const ACCOUNT_CHANNEL_PREFIX = 'tpx:acct:';
export const CONTROL_CHANNEL = 'tpx:control';

/** How often the subscriber connection is asked for a PING, and how long an answer may take. */
const HEARTBEAT_MS = 250;
const HEARTBEAT_DEADLINE_MS = 500;
/** (UN)SUBSCRIBE of one account waits at most this long; the catch-up after deafness covers the rest. */
const SUBSCRIBE_DEADLINE_MS = 1000;

export interface RedisBusOptions {
  /** Command timeout of the publisher (ms). */
  commandTimeoutMs?: number;
  /** TCP connect timeout (ms). */
  connectTimeoutMs?: number;
  /** Upper bound of the reconnect backoff (ms). */
  maxReconnectDelayMs?: number;
  /** How long start() waits for the first connection before failing (ms). */
  startTimeoutMs?: number;
  /** Optional sink for connection state changes (logging). */
  onStateChange?: (state: { connection: 'publisher' | 'subscriber'; event: string; error?: string }) => void;
}

export const PRESENCE_REPLY_PREFIX = 'tpx:presence:';

/**
 * e: events · c: control message (a: acknowledge it to `reply` with request `id`) · r: resync
 * hint · p: presence request (answer to `reply`) · q: presence answer to request `id` ·
 * k: acknowledgement of request `id`, with the count of connections acted on.
 */
type Envelope = {
  o: string;
  e?: AccountEvent[];
  c?: ControlMessage;
  a?: { id: string; reply: string };
  r?: 1;
  p?: { id: string; reply: string };
  q?: { id: string; snapshot: PresenceSnapshot };
  k?: { id: string; n: number };
};

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  /** Random per-process id used to recognise our own messages. */
  readonly origin = randomUUID();
  readonly instance = this.origin;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly eventHandlers: Array<(accountId: string, events: AccountEvent[]) => void> = [];
  private readonly controlHandlers: ControlHandler[] = [];
  private readonly reconnectHandlers: Array<() => void> = [];
  private readonly hearingHandlers: Array<(hearing: boolean) => void> = [];
  /** account_id → number of subscribe calls not yet matched by unsubscribe. */
  private readonly refs = new Map<string, number>();
  private publishFailed = false;
  private closed = false;
  /** Where other nodes answer our presence requests and acknowledge our control messages. */
  private readonly replyChannel = PRESENCE_REPLY_PREFIX + this.origin;
  private presenceProvider: (() => PresenceSnapshot) | null = null;
  private readonly presenceWaits = new Map<string, (snapshot: PresenceSnapshot) => void>();
  private readonly ackWaits = new Map<string, (n: number, from: string) => void>();

  // hearing: see the header
  private hearingNow = false;
  /** Became true once: only later regained hearings call the reconnect handlers. */
  private heardOnce = false;
  /** The subscriber's channels are subscribed on the current connection. */
  private channelsReady = false;
  /** onSubscriberReady is running (the heartbeat starts it again if it failed on a live connection). */
  private resubscribing = false;
  private heartbeatSentAt = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    readonly url: string,
    private readonly opts: RedisBusOptions = {},
  ) {
    const maxDelay = opts.maxReconnectDelayMs ?? 1000;
    const base: RedisOptions = {
      connectTimeout: opts.connectTimeoutMs ?? 1000,
      retryStrategy: (times) => Math.min(50 * times, maxDelay),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      lazyConnect: true,
      keepAlive: 10_000,
    };
    this.pub = new Redis(url, { ...base, commandTimeout: opts.commandTimeoutMs ?? 1000, connectionName: 'tpx-pub' });
    this.sub = new Redis(url, { ...base, connectionName: 'tpx-sub' });

    for (const [name, conn] of [['publisher', this.pub], ['subscriber', this.sub]] as const) {
      // An 'error' listener is required (ioredis prints unhandled errors otherwise); state is
      // reported through onStateChange, reconnection is automatic.
      conn.on('error', (err: Error) => this.opts.onStateChange?.({ connection: name, event: 'error', error: err.message }));
      conn.on('close', () => this.opts.onStateChange?.({ connection: name, event: 'close' }));
    }
    this.pub.on('ready', () => {
      this.opts.onStateChange?.({ connection: 'publisher', event: 'ready' });
      if (this.publishFailed) {
        this.publishFailed = false;
        this.pub.publish(CONTROL_CHANNEL, JSON.stringify({ o: this.origin, r: 1 } satisfies Envelope)).catch(() => {
          this.publishFailed = true;
        });
      }
    });
    this.sub.on('close', () => {
      this.channelsReady = false;
      this.heartbeatSentAt = 0;
      this.setHearing(false);
    });
    this.sub.on('ready', () => void this.onSubscriberReady());
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get hearing(): boolean {
    return this.hearingNow;
  }

  /** Connect both connections; rejects if Redis cannot be reached within startTimeoutMs. */
  async start(): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    const ready = (conn: Redis) =>
      new Promise<void>((resolve, reject) => {
        if (conn.status === 'ready') return resolve();
        const timer = setTimeout(() => {
          conn.off('ready', onReady);
          reject(new Error(`Redis at ${redact(this.url)} not reachable within ${timeoutMs} ms`));
        }, timeoutMs);
        const onReady = () => {
          clearTimeout(timer);
          resolve();
        };
        conn.once('ready', onReady);
      });
    this.pub.connect().catch(() => undefined); // retried by retryStrategy; readiness awaited below
    this.sub.connect().catch(() => undefined);
    try {
      await Promise.all([ready(this.pub), ready(this.sub)]);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private async onSubscriberReady(): Promise<void> {
    this.opts.onStateChange?.({ connection: 'subscriber', event: this.heardOnce ? 'resubscribed' : 'ready' });
    const channels = [CONTROL_CHANNEL, this.replyChannel, ...[...this.refs.keys()].map((a) => ACCOUNT_CHANNEL_PREFIX + a)];
    this.resubscribing = true;
    try {
      // Chunked so a node serving many accounts does not send one giant command.
      for (let i = 0; i < channels.length; i += 1000) await this.sub.subscribe(...channels.slice(i, i + 1000));
    } catch {
      // The connection dropped again: the next 'ready' (or, if it is still up, the heartbeat) redoes all of this.
      return;
    } finally {
      this.resubscribing = false;
    }
    this.channelsReady = true;
    this.setHearing(true);
  }

  /** One heartbeat tick: judge the PING in flight, or send the next one. */
  private beat(): void {
    if (this.closed) return;
    if (this.sub.status !== 'ready' || !this.channelsReady) {
      this.setHearing(false);
      if (this.sub.status === 'ready' && !this.resubscribing) void this.onSubscriberReady();
      return;
    }
    const now = Date.now();
    if (this.heartbeatSentAt !== 0) {
      if (now - this.heartbeatSentAt > HEARTBEAT_DEADLINE_MS) this.setHearing(false);
      return;
    }
    this.heartbeatSentAt = now;
    const sentAt = now;
    this.sub.ping().then(
      () => {
        if (this.heartbeatSentAt !== sentAt) return; // a connection drop reset it meanwhile
        this.heartbeatSentAt = 0;
        if (this.sub.status === 'ready' && this.channelsReady) this.setHearing(true);
      },
      () => {
        if (this.heartbeatSentAt === sentAt) this.heartbeatSentAt = 0;
        this.setHearing(false);
      },
    );
  }

  private setHearing(hearing: boolean): void {
    if (hearing === this.hearingNow || this.closed) return;
    this.hearingNow = hearing;
    this.opts.onStateChange?.({ connection: 'subscriber', event: hearing ? 'hearing' : 'deaf' });
    for (const handler of this.hearingHandlers) safeCall(() => handler(hearing));
    if (hearing) {
      // Anything may have been missed while deaf: let the gateway catch up from the store.
      if (this.heardOnce) for (const handler of this.reconnectHandlers) safeCall(handler);
      this.heardOnce = true;
    }
  }

  private onMessage(channel: string, message: string): void {
    // Cheap own-echo check before parsing events: the origin is the first field we write.
    if (channel.startsWith(ACCOUNT_CHANNEL_PREFIX) && message.startsWith(`{"o":"${this.origin}"`)) return;
    let env: Envelope;
    try {
      env = JSON.parse(message) as Envelope;
    } catch {
      return;
    }
    if (!env || typeof env !== 'object') return;
    const own = env.o === this.origin;
    if (channel === this.replyChannel) {
      if (env.q) this.presenceWaits.get(env.q.id)?.(env.q.snapshot);
      else if (env.k && typeof env.k.id === 'string') this.ackWaits.get(env.k.id)?.(Number(env.k.n) || 0, String(env.o));
      return;
    }
    if (channel === CONTROL_CHANNEL) {
      if (env.c && typeof env.c === 'object' && typeof env.c.kind === 'string') {
        const ack = validReply(env.a) ? env.a : null;
        // Our own message was applied locally before it was published: acknowledge only.
        if (own) {
          if (ack) this.acknowledge(ack, 0);
          return;
        }
        const applied = applyControl(this.controlHandlers, env.c);
        if (ack) void applied.then((n) => this.acknowledge(ack, n));
        return;
      }
      if (own) return;
      if (env.p && validReply(env.p) && this.presenceProvider) {
        const answer: Envelope = { o: this.origin, q: { id: env.p.id, snapshot: this.presenceProvider() } };
        this.pub.publish(env.p.reply, JSON.stringify(answer)).catch(() => undefined);
      } else if (env.r === 1) {
        for (const handler of this.reconnectHandlers) safeCall(handler);
      }
      return;
    }
    if (own || !channel.startsWith(ACCOUNT_CHANNEL_PREFIX) || !Array.isArray(env.e) || env.e.length === 0) return;
    const accountId = channel.slice(ACCOUNT_CHANNEL_PREFIX.length);
    // Only accounts this node still serves (a message may race with our UNSUBSCRIBE).
    if (!this.refs.has(accountId)) return;
    const events = env.e;
    for (const handler of this.eventHandlers) safeCall(() => handler(accountId, events));
  }

  private acknowledge(ack: { id: string; reply: string }, n: number): void {
    this.pub.publish(ack.reply, JSON.stringify({ o: this.origin, k: { id: ack.id, n } } satisfies Envelope)).catch(() => undefined);
  }

  async publishEvents(accountId: string, events: AccountEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Local connections first (synchronously, like the in-process bus), then the other nodes.
    for (const handler of this.eventHandlers) safeCall(() => handler(accountId, events));
    await this.publishRaw(ACCOUNT_CHANNEL_PREFIX + accountId, JSON.stringify({ o: this.origin, e: events } satisfies Envelope));
  }

  async publishControl(message: ControlMessage): Promise<void> {
    const applied = applyControl(this.controlHandlers, message);
    await this.publishRaw(CONTROL_CHANNEL, JSON.stringify({ o: this.origin, c: message } satisfies Envelope));
    await applied;
  }

  async broadcastControl(message: ControlMessage, timeoutMs: number): Promise<BroadcastResult> {
    const local = await applyControl(this.controlHandlers, message);
    const id = randomUUID();
    let acknowledged = 0;
    const ackedBy: string[] = [];
    let affected = local;
    let expected = Infinity;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    // Registered before publishing: an answer may arrive before PUBLISH's reply does.
    this.ackWaits.set(id, (n, from) => {
      acknowledged++;
      ackedBy.push(from);
      affected += n;
      if (acknowledged >= expected) finish();
    });
    const timer = setTimeout(finish, timeoutMs);
    try {
      const envelope: Envelope = { o: this.origin, c: message, a: { id, reply: this.replyChannel } };
      expected = await this.publishRaw(CONTROL_CHANNEL, JSON.stringify(envelope));
      if (acknowledged >= expected) finish();
      await finished;
      return { published: true, receivers: expected, acknowledged, affected, ackedBy };
    } catch {
      return { published: false, receivers: 0, acknowledged, affected, ackedBy };
    } finally {
      clearTimeout(timer);
      this.ackWaits.delete(id);
    }
  }

  /** PUBLISH; resolves with the number of subscribers that received it. */
  private async publishRaw(channel: string, payload: string): Promise<number> {
    if (this.closed) throw new Error('bus closed');
    try {
      return await this.pub.publish(channel, payload);
    } catch (err) {
      this.publishFailed = true;
      throw err;
    }
  }

  async subscribeAccount(accountId: string): Promise<void> {
    const n = this.refs.get(accountId) ?? 0;
    this.refs.set(accountId, n + 1);
    // Not connected: onSubscriberReady subscribes it (its channel list is taken once 'ready').
    if (n > 0 || this.sub.status !== 'ready') return;
    try {
      await withDeadline(this.sub.subscribe(ACCOUNT_CHANNEL_PREFIX + accountId), SUBSCRIBE_DEADLINE_MS);
    } catch (err) {
      // Refused because the connection dropped under it (no offline queue, no retries): the
      // account stays held (refs), the next 'ready' subscribes it with every other channel, and
      // regaining hearing catches the gateway up from the store. Never the caller's failure: an
      // authentication must not be refused because Redis restarted (SPEC §7).
      this.opts.onStateChange?.({ connection: 'subscriber', event: 'subscribe failed', error: (err as Error).message });
      if (this.sub.status === 'ready' && this.channelsReady && !this.closed) {
        // Still connected, so no 'ready' will come: deaf until every channel is subscribed again.
        this.channelsReady = false;
        this.setHearing(false);
        void this.onSubscriberReady();
      }
    }
  }

  async unsubscribeAccount(accountId: string): Promise<void> {
    const n = this.refs.get(accountId) ?? 0;
    if (n === 0) return;
    if (n > 1) {
      this.refs.set(accountId, n - 1);
      return;
    }
    this.refs.delete(accountId);
    if (this.sub.status !== 'ready') return;
    // Commands on one connection run in order, so a later re-subscribe of the same account wins.
    await withDeadline(this.sub.unsubscribe(ACCOUNT_CHANNEL_PREFIX + accountId), SUBSCRIBE_DEADLINE_MS);
  }

  /** Accounts this node currently listens to (for tests and diagnostics). */
  subscribedAccounts(): string[] {
    return [...this.refs.keys()];
  }

  onEvents(handler: (accountId: string, events: AccountEvent[]) => void): void {
    this.eventHandlers.push(handler);
  }
  onControl(handler: ControlHandler): void {
    this.controlHandlers.push(handler);
  }
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }
  onHearing(handler: (hearing: boolean) => void): void {
    this.hearingHandlers.push(handler);
  }

  setPresenceProvider(provider: () => PresenceSnapshot): void {
    this.presenceProvider = provider;
  }

  /**
   * Ask every node on the control channel for its connections and wait for as many answers as
   * there are other subscribers of that channel (PUBSUB NUMSUB), or until the timeout.
   */
  async collectPresence(timeoutMs: number): Promise<{ nodes: PresenceSnapshot[]; missing: number }> {
    const own = this.presenceProvider ? [this.presenceProvider()] : [];
    let expected: number;
    try {
      const counts = (await this.pub.pubsub('NUMSUB', CONTROL_CHANNEL)) as Array<string | number>;
      expected = Math.max(0, Number(counts[1] ?? 0) - 1);
    } catch {
      return { nodes: own, missing: 0 };
    }
    if (expected === 0) return { nodes: own, missing: 0 };
    const id = randomUUID();
    const answers: PresenceSnapshot[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.presenceWaits.set(id, (snapshot) => {
        answers.push(snapshot);
        if (answers.length >= expected) done();
      });
      this.publishRaw(CONTROL_CHANNEL, JSON.stringify({ o: this.origin, p: { id, reply: this.replyChannel } } satisfies Envelope)).catch(done);
    });
    this.presenceWaits.delete(id);
    return { nodes: [...own, ...answers], missing: Math.max(0, expected - answers.length) };
  }

  async ping(): Promise<void> {
    if (this.sub.status !== 'ready') throw new Error(`Redis subscriber connection is ${this.sub.status}`);
    if (!this.hearingNow) throw new Error('Redis subscriber connection does not answer its heartbeat');
    await this.pub.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.eventHandlers.length = 0;
    this.controlHandlers.length = 0;
    this.reconnectHandlers.length = 0;
    this.hearingHandlers.length = 0;
    await Promise.all(
      [this.pub, this.sub].map(async (conn) => {
        if (conn.status === 'ready') await withDeadline(conn.quit(), 1000).catch(() => conn.disconnect());
        else conn.disconnect();
      }),
    );
    // A QUIT that timed out (a stopped Redis) leaves the socket open: drop it.
    this.pub.disconnect();
    this.sub.disconnect();
  }
}

function validReply(x: unknown): x is { id: string; reply: string } {
  const r = x as { id?: unknown; reply?: unknown } | undefined;
  return !!r && typeof r.id === 'string' && typeof r.reply === 'string' && r.reply.startsWith(PRESENCE_REPLY_PREFIX);
}

/** Wait for `promise` at most `ms`; past that resolve anyway (the caller has a fallback). */
function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    promise.then(
      () => (clearTimeout(timer), resolve()),
      (err) => (clearTimeout(timer), reject(err)),
    );
  });
}

function safeCall(fn: () => void): void {
  try {
    fn();
  } catch {
    // A handler bug must not break the bus for the other handlers.
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Build and connect a RedisBus (used by createBus). */
export async function createRedisBus(url: string, opts: RedisBusOptions = {}): Promise<RedisBus> {
  const bus = new RedisBus(url, opts);
  await bus.start();
  return bus;
}
