/**
 * The node's registry of live connections and the fan-out path. Connections are grouped per
 * account; an event for an account touches only that account's connections, the frame is built
 * once per (event, account), and writes made in one event-loop turn are flushed together.
 */
import { CloseCode, ErrorCode, type EventType } from '../protocol/constants.js';
import type { Bus } from '../bus/types.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Account, AccountEvent } from '../store/types.js';
import type { Connection } from './connection.js';
import { eventFrameJson, preframe } from './frames.js';
import { TYPE_BIT, maskOf } from './rooms.js';

interface AccountEntry {
  account: Account;
  /** Event types the account may access. */
  accessMask: number;
  connections: Set<Connection>;
}

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
    private readonly bus: Bus,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    readonly nodeId: string,
  ) {
    bus.onEvents((accountId, events) => this.deliver(accountId, events));
    bus.onControl((msg) => {
      if (msg.kind === 'key_disabled') this.disableKey(msg.key_id, msg.reason);
      else if (msg.kind === 'account_deleted') this.accountDeleted(msg.account_id);
    });
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
          this.accounts.delete(conn.accountId);
          void this.bus.unsubscribeAccount(conn.accountId).catch((err) => this.logger.warn({ err }, 'bus unsubscribe failed'));
        }
      }
    }
  }

  /** Bind an authenticated connection to its account and key. */
  attach(conn: Connection, account: Account, keyId: string): void {
    conn.accountId = account.account_id;
    conn.keyId = keyId;
    conn.state = 'authenticated';
    let entry = this.accounts.get(account.account_id);
    if (!entry) {
      entry = { account, accessMask: maskOf(account.rooms), connections: new Set() };
      this.accounts.set(account.account_id, entry);
      void this.bus.subscribeAccount(account.account_id).catch((err) => this.logger.warn({ err }, 'bus subscribe failed'));
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

  /** Fan out stored events of one account to this node's connections. */
  deliver(accountId: string, events: AccountEvent[]): void {
    const entry = this.accounts.get(accountId);
    if (!entry) return;
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
    const wasCorked = conn.corked;
    const ok = conn.writeFrame(frame);
    if (!ok) {
      if (conn.state === 'closing') this.metrics.closes.inc({ code: String(CloseCode.SLOW_CONSUMER) });
      return false;
    }
    if (!wasCorked) {
      this.dirty.push(conn);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate runs after this loop turn's I/O callbacks, so frames produced by several
        // publishes handled in the same turn leave in one write per socket.
        setImmediate(this.flush);
      }
    }
    return true;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const conn of dirty) conn.uncork();
  };

  /** Close every live connection of a key (deactivated, revoked or expired). */
  disableKey(keyId: string, reason: KeyDisableReason): number {
    const set = this.byKey.get(keyId);
    if (!set) return 0;
    const { code, text } = REASON_CODE[reason];
    let n = 0;
    for (const conn of [...set]) {
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
