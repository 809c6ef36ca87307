/**
 * One account as served by this node: an explicit lifecycle that owns the account's bus
 * subscription and its sequencer (docs/architecture.md).
 *
 *   idle ──join──▶ preparing ──(subscribed, baseline read)──▶ live ──last leave──▶ releasing ──▶ idle
 *                      │                                                             │
 *                      └──────── failed ──▶ releasing            join meanwhile ─────┘──▶ preparing
 *
 * Members are counted as a set of connections, from the moment a connection joins (right after
 * its key lookup, before any await on the account) until it leaves (closed, refused, or its
 * preparation failed). Joins and leaves during preparation or release are therefore counted by
 * construction: the subscription is released only when the set is empty at a point where no
 * preparation is running, and a release that finds new members prepares again. (The old
 * reference counting unsubscribed when the first of two racing connections closed before the
 * shared preparation finished, while the second stayed attached: issue 9, defect 1.)
 */
import type { Bus } from '../bus/types.js';
import type { Logger } from '../observability/logger.js';
import type { Account, EventLog } from '../store/types.js';
import type { Connection } from './connection.js';
import { maskOf } from './rooms.js';
import { Sequencer, type SequencerLimits, type SequencerSink } from './sequencer.js';

export type LocalAccountState = 'idle' | 'preparing' | 'live' | 'releasing';

interface Waiter {
  conn: Connection;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface LocalAccountDeps {
  bus: Bus;
  store: EventLog;
  logger: Logger;
  /** Called once the account went back to idle (the hub forgets it). */
  onIdle(account: LocalAccount): void;
  /** Where its in-order events and gaps go (the hub's fan-out). */
  sink(account: LocalAccount): SequencerSink;
  sequencerLimits?: SequencerLimits;
}

export class LocalAccount {
  private state: LocalAccountState = 'idle';
  /** Connections that joined: authenticating ones and live ones. */
  private readonly members = new Set<Connection>();
  /** Members that are live: the fan-out targets. */
  readonly live = new Set<Connection>();
  private waiters: Waiter[] = [];
  readonly sequencer: Sequencer;
  /** Event types the account may access (rooms.ts). */
  accessMask: number;

  constructor(
    public account: Account,
    private readonly deps: LocalAccountDeps,
  ) {
    this.accessMask = maskOf(account.rooms);
    this.sequencer = new Sequencer(account.account_id, deps.store, deps.sink(this), deps.logger, deps.sequencerLimits);
  }

  get id(): string {
    return this.account.account_id;
  }

  get currentState(): LocalAccountState {
    return this.state;
  }

  get memberCount(): number {
    return this.members.size;
  }

  /** Every member, live or still authenticating (revocation and deletion reach both). */
  membersSnapshot(): Connection[] {
    return [...this.members];
  }

  /** A fresher view of the account (a key lookup or an account_changed message). */
  refresh(account: Account): void {
    this.account = account;
    this.accessMask = maskOf(account.rooms);
  }

  /**
   * Count `conn` as a member. Returns null when the account is live here (attach at once), or a
   * promise settled when the preparation it waits for succeeds or fails.
   */
  join(conn: Connection): Promise<void> | null {
    this.members.add(conn);
    if (this.state === 'live') return null;
    const ready = new Promise<void>((resolve, reject) => this.waiters.push({ conn, resolve, reject }));
    if (this.state === 'idle') void this.prepare();
    return ready;
  }

  /** Add a live member to the fan-out. False when it is not (or no longer) a member. */
  attach(conn: Connection): boolean {
    if (this.state !== 'live' || !this.members.has(conn)) return false;
    this.live.add(conn);
    return true;
  }

  /** Idempotent: a connection leaves once, whatever path gets there first. */
  leave(conn: Connection): void {
    if (!this.members.delete(conn)) return;
    this.live.delete(conn);
    if (this.members.size === 0 && this.state === 'live') void this.release();
  }

  /**
   * idle → preparing → live: subscribe on the bus FIRST, then read the account's last seq. Every
   * event committed after that read arrives through the bus (parked by the sequencer until the
   * baseline is known); anything before it is history (resume).
   */
  private async prepare(): Promise<void> {
    this.state = 'preparing';
    this.sequencer.park();
    try {
      await this.deps.bus.subscribeAccount(this.id);
      const head = await this.deps.store.readEvents({ account_id: this.id, after_seq: 0, types: null, limit: 0 }); // counters only
      this.state = 'live';
      this.sequencer.start(head.last_seq);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.resolve();
      if (this.members.size === 0) void this.release();
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, account_id: this.id }, 'account preparation failed');
      const waiters = this.waiters;
      this.waiters = [];
      // Those waiting for this preparation are no longer members: their authentication fails.
      for (const w of waiters) {
        this.members.delete(w.conn);
        w.reject(err);
      }
      void this.release();
    }
  }

  /** live (or a failed preparation) → releasing → idle, or → preparing when members joined meanwhile. */
  private async release(): Promise<void> {
    this.state = 'releasing';
    this.sequencer.stop();
    this.live.clear();
    try {
      await this.deps.bus.unsubscribeAccount(this.id);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, account_id: this.id }, 'bus unsubscribe failed');
    }
    if (this.members.size > 0) {
      void this.prepare();
      return;
    }
    this.state = 'idle';
    this.deps.onIdle(this);
  }
}
