/**
 * The node's registry of connections and the fan-out path. Connections are grouped per account
 * (LocalAccount: lifecycle + bus subscription + sequencer); an event for an account touches only
 * that account's live connections, its frame is built once per (event, account) and its bytes
 * once per transport kind, and writes made in one burst leave together (flush.ts).
 */
import type { Bus, KeyDisableReason } from '../bus/types.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { Account, AccountEvent, EventLog } from '../store/types.js';
import { CloseCode, ErrorCode } from '@tpx-realtime/protocol';
import type { Connection } from './connection.js';
import { LocalAccount } from './local-account.js';
import type { SequencerLimits } from './sequencer.js';
import { EventFrame } from './transport.js';

export class Hub {
  readonly connections = new Set<Connection>();
  private readonly accounts = new Map<string, LocalAccount>();
  /** Connections by key, from the moment their key is known (authenticating ones included). */
  private readonly byKey = new Map<string, Set<Connection>>();

  constructor(
    private readonly store: EventLog,
    readonly bus: Bus,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    readonly nodeId: string,
    private readonly sequencerLimits?: SequencerLimits,
  ) {
    bus.onEvents((accountId, events) => this.receive(accountId, events));
  }

  add(conn: Connection): void {
    this.connections.add(conn);
    this.metrics.connections.inc();
  }

  /** The connection is gone: forget it everywhere (idempotent). */
  remove(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.metrics.connections.dec();
    this.metrics.subscriptions.dec(conn.roomCount);
    const keyId = conn.keyId;
    if (keyId) {
      const set = this.byKey.get(keyId);
      set?.delete(conn);
      if (set && set.size === 0) this.byKey.delete(keyId);
    }
    const accountId = conn.accountId;
    if (accountId) this.accounts.get(accountId)?.leave(conn);
  }

  /** Make an authorized connection reachable by key revocation (before any further await). */
  trackKey(conn: Connection): void {
    const keyId = conn.keyId;
    if (!keyId || !this.connections.has(conn)) return;
    let set = this.byKey.get(keyId);
    if (!set) this.byKey.set(keyId, (set = new Set()));
    set.add(conn);
  }

  /**
   * Count an authorized connection as a member of its account here. `ready` is null when the
   * account is already live on this node, else a promise of its preparation.
   */
  join(conn: Connection, account: Account): { local: LocalAccount; ready: Promise<void> | null } {
    let local = this.accounts.get(account.account_id);
    if (!local) {
      local = new LocalAccount(account, {
        bus: this.bus,
        store: this.store,
        logger: this.logger,
        sequencerLimits: this.sequencerLimits,
        onIdle: (a) => {
          if (this.accounts.get(a.id) === a) this.accounts.delete(a.id);
        },
        sink: (a) => ({ deliver: (events) => this.deliver(a, events), gap: (from, to) => this.gap(a, from, to) }),
      });
      this.accounts.set(account.account_id, local);
    } else {
      local.refresh(account); // a fresh lookup is the newest truth about the account's rooms
    }
    return { local, ready: local.join(conn) };
  }

  /** Events of one account from the bus. */
  receive(accountId: string, events: AccountEvent[]): void {
    this.accounts.get(accountId)?.sequencer.receive(events);
  }

  /** Fan out in-order events of one account to this node's live connections. */
  private deliver(local: LocalAccount, events: AccountEvent[]): void {
    const targets = local.live;
    if (targets.size === 0) return;
    const sentAt = Date.now();
    let written = 0;
    // No access-mask check: the store put the event in this account's stream only if the account
    // could access its type when it was accepted, which is the rule (docs/decisions.md); a mask
    // cached here may be older than the store's (a room granted while this node missed the news).
    for (const event of events) {
      const frame = new EventFrame(event, sentAt);
      for (const conn of targets) if (conn.deliver(frame)) written++;
      if (frame.used) this.metrics.publishLatency.observe((sentAt - event.created_at_ms) / 1000);
    }
    if (written) this.metrics.eventsOut.inc(written);
  }

  private gap(local: LocalAccount, from: number, to: number): void {
    this.logger.info({ account_id: local.id, from_seq: from, to_seq: to }, 'seqs skipped: no longer in the store');
    for (const conn of local.live) conn.announceGap(from, to);
  }

  accessMaskOf(accountId: string): number {
    return this.accounts.get(accountId)?.accessMask ?? 0;
  }

  /** The account's stream position on this node (0 when not live here). */
  positionOf(accountId: string): number {
    return this.accounts.get(accountId)?.sequencer.position ?? 0;
  }

  accountOf(conn: Connection): Account | undefined {
    const accountId = conn.accountId;
    return accountId ? this.accounts.get(accountId)?.account : undefined;
  }

  hasAccount(accountId: string): boolean {
    return this.accounts.has(accountId);
  }

  accountIds(): string[] {
    return [...this.accounts.keys()];
  }

  /** Keys with connections on this node, grouped by account. */
  keysByAccount(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [keyId, set] of this.byKey) {
      const first = set.values().next().value as Connection | undefined;
      const accountId = first?.accountId;
      if (!accountId) continue;
      const list = out.get(accountId);
      if (list) list.push(keyId);
      else out.set(accountId, [keyId]);
    }
    return out;
  }

  /** Close every connection of a key, authenticating ones included. Returns how many. */
  disableKey(keyId: string, reason: KeyDisableReason): number {
    const set = this.byKey.get(keyId);
    if (!set) return 0;
    let n = 0;
    for (const conn of [...set]) {
      if (conn.isClosing) continue;
      conn.revoke(reason);
      n++;
    }
    return n;
  }

  /** The account's accessible rooms changed: applies to the next event, no reconnect needed. */
  accountChanged(account: Account): void {
    this.accounts.get(account.account_id)?.refresh(account);
  }

  /** Close every connection of a deleted account (authenticating ones included). */
  accountDeleted(accountId: string): number {
    const local = this.accounts.get(accountId);
    if (!local) return 0;
    let n = 0;
    for (const conn of local.membersSnapshot()) {
      if (conn.isClosing) continue;
      conn.fail(ErrorCode.AUTH_INVALID_API_KEY, 'Account was deleted', CloseCode.AUTH_FAILED);
      n++;
    }
    return n;
  }

  /** Close one connection of this node by id (operator request). */
  disconnect(connectionId: string): boolean {
    for (const conn of this.connections) {
      if (conn.id !== connectionId) continue;
      if (conn.isClosing) return false;
      conn.close(1000, 'disconnected by operator');
      return true;
    }
    return false;
  }

  /** After the bus was deaf, every account held here may have missed events: read them. */
  async catchUpAll(): Promise<void> {
    for (const local of [...this.accounts.values()]) await local.sequencer.catchUp();
  }

  /** Close everything (graceful shutdown). */
  closeAll(code: number, reason: string): void {
    for (const conn of this.connections) conn.close(code, reason);
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
