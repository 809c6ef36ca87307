/**
 * The node's registry of live connections and the fan-out path. Connections are grouped per
 * account; an event for an account touches only that account's connections, the frame is built
 * once per (event, account), and writes made in one event-loop turn are flushed together.
 */
import { CloseCode, ErrorCode, type EventType } from '@tpx-realtime/protocol';
import type { Bus } from '../bus/types.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Account, AccountEvent, Store } from '../store/types.js';
import type { Connection } from './connection.js';
import { eventFrameJson, preframe } from './frames.js';
import { TYPE_BIT, maskOf } from './rooms.js';

interface AccountEntry {
  account: Account;
  /** Event types the account may access. */
  accessMask: number;
  connections: Set<Connection>;
  /**
   * Highest seq of this account handed to local connections, contiguous (-1 until the first
   * event fixes the baseline). With several nodes, events of one account can reach this node out
   * of seq order; later ones wait in `pending` while the gap is filled from the store.
   */
  lastSeq: number;
  pending: Map<number, AccountEvent>;
  gapTimer: NodeJS.Timeout | null;
}

/** How long an out-of-order event waits for the missing ones before the store is asked. */
const GAP_WAIT_MS = 30;

/** Live events buffered per connection during a replay; past this the replay re-reads the store. */
const MAX_REPLAY_BUFFER = 10_000;

export type KeyDisableReason = 'inactive' | 'revoked' | 'expired';

const REASON_CODE: Record<KeyDisableReason, { code: string; text: string }> = {
  inactive: { code: ErrorCode.AUTH_API_KEY_INACTIVE, text: 'API key was deactivated' },
  revoked: { code: ErrorCode.AUTH_INVALID_API_KEY, text: 'API key was revoked' },
  expired: { code: ErrorCode.AUTH_API_KEY_EXPIRED, text: 'API key expired' },
};

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly accounts = new Map<string, AccountEntry>();
  private readonly byKey = new Map<string, Set<Connection>>();
  private dirty: Connection[] = [];
  private flushScheduled = false;

  constructor(
    private readonly store: Store,
    readonly bus: Bus,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    readonly nodeId: string,
  ) {
    bus.onEvents((accountId, events) => this.receive(accountId, events));
  }

  private readonly preparing = new Map<string, Promise<number>>();

  /**
   * Before the first connection of an account is attached on this node: subscribe the account on
   * the bus FIRST, then read its last seq. Any event committed after that read arrives through
   * the bus; anything before it is history (resume). Returns undefined when the account is
   * already served here. Concurrent first connections share one preparation.
   */
  prepareAccount(accountId: string): Promise<number> | undefined {
    if (this.accounts.has(accountId)) return undefined;
    let pending = this.preparing.get(accountId);
    if (!pending) {
      pending = (async () => {
        await this.bus.subscribeAccount(accountId);
        try {
          const head = await this.store.readEvents({ account_id: accountId, after_seq: 0, types: null, limit: 0 }); // counters only
          return head.last_seq;
        } catch (err) {
          await this.bus.unsubscribeAccount(accountId).catch(() => {});
          throw err;
        }
      })().finally(() => this.preparing.delete(accountId));
      this.preparing.set(accountId, pending);
    }
    return pending;
  }

  /** Undo a preparation whose connection went away before it was attached. */
  abandonPreparation(accountId: string): void {
    if (!this.accounts.has(accountId)) void this.bus.unsubscribeAccount(accountId).catch(() => {});
  }

  /** Keys with live connections on this node. */
  keyIds(): string[] {
    return [...this.byKey.keys()];
  }

  accountIds(): string[] {
    return [...this.accounts.keys()];
  }

  add(conn: Connection): void {
    this.connections.add(conn);
    this.metrics.connections.inc();
  }

  remove(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.metrics.connections.dec();
    this.metrics.subscriptions.dec(conn.rooms.size);
    if (conn.keyId) {
      const set = this.byKey.get(conn.keyId);
      set?.delete(conn);
      if (set && set.size === 0) this.byKey.delete(conn.keyId);
    }
    if (conn.accountId) {
      const entry = this.accounts.get(conn.accountId);
      if (entry) {
        entry.connections.delete(conn);
        if (entry.connections.size === 0) {
          if (entry.gapTimer) clearTimeout(entry.gapTimer);
          this.accounts.delete(conn.accountId);
          void this.bus.unsubscribeAccount(conn.accountId).catch((err) => this.logger.warn({ err }, 'bus unsubscribe failed'));
        }
      }
    }
  }

  hasAccount(accountId: string): boolean {
    return this.accounts.has(accountId);
  }

  /**
   * Bind an authenticated connection to its account and key. `baselineSeq` comes from
   * prepareAccount for the first connection of an account on this node (the bus subscription is
   * then already in place); it lets the node notice events missed while the bus was down.
   */
  attach(conn: Connection, account: Account, keyId: string, baselineSeq?: number): void {
    conn.accountId = account.account_id;
    conn.keyId = keyId;
    conn.state = 'authenticated';
    let entry = this.accounts.get(account.account_id);
    if (!entry) {
      entry = { account, accessMask: maskOf(account.rooms), connections: new Set(), lastSeq: baselineSeq ?? -1, pending: new Map(), gapTimer: null };
      this.accounts.set(account.account_id, entry);
      if (baselineSeq === undefined) {
        // The account was served when authentication began but its last connection left since.
        void this.bus.subscribeAccount(account.account_id).catch((err) => this.logger.warn({ err }, 'bus subscribe failed'));
      }
    } else {
      // A fresh lookup is the newest truth about the account's rooms.
      entry.account = account;
      entry.accessMask = maskOf(account.rooms);
    }
    entry.connections.add(conn);
    let keySet = this.byKey.get(keyId);
    if (!keySet) this.byKey.set(keyId, (keySet = new Set()));
    keySet.add(conn);
  }

  accountOf(conn: Connection): Account | undefined {
    return conn.accountId ? this.accounts.get(conn.accountId)?.account : undefined;
  }

  accessMaskOf(accountId: string): number {
    return this.accounts.get(accountId)?.accessMask ?? 0;
  }

  /**
   * Events of one account from the bus: delivered in seq order. Anything at or below the entry's
   * seq is a duplicate (e.g. seen during catch-up); anything past a gap waits for the gap.
   */
  receive(accountId: string, events: AccountEvent[]): void {
    const entry = this.accounts.get(accountId);
    if (!entry || events.length === 0) return;
    if (entry.lastSeq === -1) entry.lastSeq = events[0].seq - 1;
    // Fast path: nothing waiting and this batch continues the stream exactly.
    let next = entry.lastSeq + 1;
    let contiguous = entry.pending.size === 0;
    for (let i = 0; contiguous && i < events.length; i++, next++) contiguous = events[i].seq === next;
    if (contiguous) {
      entry.lastSeq = next - 1;
      this.deliver(entry, events);
      return;
    }
    // Slow path: park everything not yet delivered, release what is now contiguous.
    for (const event of events) if (event.seq > entry.lastSeq) entry.pending.set(event.seq, event);
    this.drainPending(entry);
  }

  private drainPending(entry: AccountEntry): void {
    const ready: AccountEvent[] = [];
    for (let next = entry.pending.get(entry.lastSeq + 1); next; next = entry.pending.get(entry.lastSeq + 1)) {
      entry.pending.delete(next.seq);
      entry.lastSeq = next.seq;
      ready.push(next);
    }
    if (ready.length) this.deliver(entry, ready);
    if (entry.pending.size > 0 && !entry.gapTimer) {
      entry.gapTimer = setTimeout(() => {
        entry.gapTimer = null;
        void this.fillGap(entry);
      }, GAP_WAIT_MS);
    }
  }

  /** Read the missing seqs from the store (the truth) and deliver everything in order. */
  private async fillGap(entry: AccountEntry): Promise<void> {
    const accountId = entry.account.account_id;
    try {
      for (;;) {
        const page = await this.store.readEvents({ account_id: accountId, after_seq: entry.lastSeq, types: null, limit: 1000 });
        if (this.accounts.get(accountId) !== entry) return;
        const fresh = page.events.filter((e) => e.seq > entry.lastSeq);
        for (const e of fresh) entry.pending.set(e.seq, e);
        if (page.events.length === 0 && entry.pending.size > 0) {
          // Still missing: either committed later (retry) or already pruned (skip ahead).
          const lowest = Math.min(...entry.pending.keys());
          if (page.pruned_through >= lowest - 1 || page.last_seq >= lowest) entry.lastSeq = lowest - 1;
        }
        const before = entry.lastSeq;
        this.drainPending(entry);
        if (page.events.length < 1000 || entry.lastSeq === before) return;
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, account_id: accountId }, 'gap fill failed; retrying');
      if (!entry.gapTimer) entry.gapTimer = setTimeout(() => ((entry.gapTimer = null), void this.fillGap(entry)), 500);
    }
  }

  /** After the bus was down, every account held here may have missed events: read them. */
  async catchUpAll(): Promise<void> {
    for (const entry of this.accounts.values()) {
      if (entry.lastSeq !== -1) await this.fillGap(entry);
    }
  }

  /** Fan out in-order events of one account to this node's connections. */
  private deliver(entry: AccountEntry, events: AccountEvent[]): void {
    const sentAt = Date.now();
    let written = 0;
    for (const event of events) {
      const bit = TYPE_BIT[event.msg_type as EventType];
      if ((entry.accessMask & bit) === 0) continue;
      let frame: Buffer | null = null;
      for (const conn of entry.connections) {
        if (conn.state !== 'authenticated' || (conn.subscribedMask & bit) === 0) continue;
        frame ??= preframe(eventFrameJson(event, sentAt));
        if (conn.replayBuffer) {
          if (conn.replayBuffer.length < MAX_REPLAY_BUFFER) conn.replayBuffer.push({ seq: event.seq, frame, mask: bit });
          else conn.replayOverflow = true;
          continue;
        }
        if (event.seq <= conn.lastSeq) continue;
        if (this.write(conn, frame)) {
          conn.lastSeq = event.seq;
          written++;
        }
      }
      if (frame) this.metrics.publishLatency.observe((sentAt - event.created_at_ms) / 1000);
    }
    if (written) this.metrics.eventsOut.inc(written);
  }

  /** Write a pre-framed event and schedule the end-of-turn flush. */
  write(conn: Connection, frame: Buffer): boolean {
    const wasPending = conn.hasPending;
    const ok = conn.writeFrame(frame);
    if (!ok) {
      if (conn.state === 'closing') this.metrics.closes.inc({ code: String(CloseCode.SLOW_CONSUMER) });
      return false;
    }
    if (!wasPending) {
      this.dirty.push(conn);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // A microtask runs once the current callback and the continuations already queued are
        // done: every publish of one group commit (their continuations are queued together)
        // still leaves in one write per socket, but without waiting for the next loop phase.
        // setImmediate cost p50 +0.6 ms (a poll phase and the timers in between) at 100 ev/s.
        queueMicrotask(this.flush);
      }
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const conn of dirty) conn.flush();
  };

  /** Close every live connection of a key (deactivated, revoked or expired). */
  disableKey(keyId: string, reason: KeyDisableReason): number {
    const set = this.byKey.get(keyId);
    if (!set) return 0;
    const { code, text } = REASON_CODE[reason];
    let n = 0;
    for (const conn of [...set]) {
      if (conn.closing) continue;
      conn.fail(code, text, CloseCode.AUTH_FAILED);
      this.metrics.closes.inc({ code: String(CloseCode.AUTH_FAILED) });
      n++;
    }
    return n;
  }

  /** The account's accessible rooms changed: applies to the next event, no reconnect needed. */
  accountChanged(account: Account): void {
    const entry = this.accounts.get(account.account_id);
    if (!entry) return;
    entry.account = account;
    entry.accessMask = maskOf(account.rooms);
  }

  accountDeleted(accountId: string): void {
    const entry = this.accounts.get(accountId);
    if (!entry) return;
    for (const conn of [...entry.connections]) {
      conn.fail(ErrorCode.AUTH_INVALID_API_KEY, 'Account was deleted', CloseCode.AUTH_FAILED);
    }
  }

  /** Close everything with 1001 (graceful shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of this.connections) {
      conn.close(code, reason);
    }
  }

  list(filter?: { account_id?: string }): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const conn of this.connections) {
      if (filter?.account_id && conn.accountId !== filter.account_id) continue;
      out.push(conn.describe(this.accountOf(conn), this.nodeId));
    }
    return out;
  }
}
