/**
 * The Bus seam (DESIGN.md): carries "account X has new events" between gateway nodes.
 * Subscriptions are per ACCOUNT held on this node, never per connection, so broker
 * subscriptions stay O(accounts on the node). The bus holds nothing that cannot be lost:
 * the store is the truth and nodes catch up from it (SPEC §7).
 */
import type { AccountEvent } from '../store/types.js';

/** Control messages that must reach every node (e.g. a revoked key). */
export type ControlMessage =
  | { kind: 'key_disabled'; key_id: string; account_id: string; reason: 'inactive' | 'revoked' | 'expired' }
  | { kind: 'account_changed'; account_id: string }
  | { kind: 'account_deleted'; account_id: string };

/** One node's live connections, as listed by /admin/connections. */
export interface PresenceSnapshot {
  node: string;
  connections: Record<string, unknown>[];
}

export interface Bus {
  readonly kind: 'memory' | 'redis';
  /** Publish new events of one account (already stored, with their seq). */
  publishEvents(accountId: string, events: AccountEvent[]): Promise<void>;
  /** Start receiving events of an account on this node (idempotent, reference counted by caller). */
  subscribeAccount(accountId: string): Promise<void>;
  unsubscribeAccount(accountId: string): Promise<void>;
  publishControl(message: ControlMessage): Promise<void>;
  onEvents(handler: (accountId: string, events: AccountEvent[]) => void): void;
  onControl(handler: (message: ControlMessage) => void): void;
  /** Called after the bus reconnects, so the gateway can catch up from the store. */
  onReconnect(handler: () => void): void;
  /** What this node answers when any node asks who is connected. */
  setPresenceProvider(provider: () => PresenceSnapshot): void;
  /**
   * Snapshots of every node (this one included), for /admin/connections (SPEC §7). Nodes that do
   * not answer within `timeoutMs` are reported in `missing` rather than failing the request.
   */
  collectPresence(timeoutMs: number): Promise<{ nodes: PresenceSnapshot[]; missing: number }>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
