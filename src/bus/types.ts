/**
 * The Bus seam (DESIGN.md): carries "account X has new events" between gateway nodes.
 * Subscriptions are per ACCOUNT held on this node, never per connection, so broker
 * subscriptions stay O(accounts on the node). The bus holds nothing that cannot be lost:
 * the store is the truth and nodes catch up from it (SPEC §7).
 */
import type { AccountEvent } from '../store/types.js';

export type KeyDisableReason = 'inactive' | 'revoked' | 'expired';

/** Control messages that must reach every node (e.g. a revoked key). */
export type ControlMessage =
  | { kind: 'key_disabled'; key_id: string; account_id: string; reason: KeyDisableReason }
  | { kind: 'key_enabled'; key_id: string }
  | { kind: 'account_changed'; account_id: string }
  | { kind: 'account_deleted'; account_id: string }
  | { kind: 'disconnect'; connection_id: string };

/**
 * A node's handler of control messages. It returns how many connections it acted on (summed
 * over the nodes by broadcastControl); the acknowledgement is sent once it has settled.
 */
export type ControlHandler = (message: ControlMessage) => number | void | Promise<number | void>;

/** What broadcastControl learned. */
export interface BroadcastResult {
  /** False when the broker could not be reached: nodes that cannot hear it re-check the store. */
  published: boolean;
  /** Nodes that received it through the broker (this node's own echo included); 0 in-process. */
  receivers: number;
  /** Of those, how many acknowledged having applied it before the timeout. */
  acknowledged: number;
  /** Sum of the handlers' counts on this node and on every node that acknowledged. */
  affected: number;
  /** The `instance` of every node that acknowledged (this node's own echo included). */
  ackedBy: string[];
}

/** One node's live connections, as listed by /admin/connections. */
export interface PresenceSnapshot {
  node: string;
  connections: Record<string, unknown>[];
}

export interface Bus {
  readonly kind: 'memory' | 'redis';
  /** Random per-process id: the origin of this node's messages and acknowledgements. */
  readonly instance: string;
  /** Publish new events of one account (already stored, with their seq). */
  publishEvents(accountId: string, events: AccountEvent[]): Promise<void>;
  /**
   * Start receiving events of an account on this node. The caller (the gateway's per-account
   * lifecycle) pairs every call with one unsubscribeAccount. Resolves once the broker confirmed
   * or after a short deadline: a subscription the broker has not confirmed is made good by the
   * catch-up that follows a regained hearing (onHearing/onReconnect).
   */
  subscribeAccount(accountId: string): Promise<void>;
  unsubscribeAccount(accountId: string): Promise<void>;
  /** Fire and forget: every node's handlers run (this node's synchronously, before the publish). */
  publishControl(message: ControlMessage): Promise<void>;
  /**
   * Apply a control message on this node, publish it, and wait (at most `timeoutMs`) until every
   * node that received it acknowledged having applied it. Used where "the call returned" must
   * mean "every node that can hear the bus has acted on it" (key revocation, SPEC §2.5/§7).
   */
  broadcastControl(message: ControlMessage, timeoutMs: number): Promise<BroadcastResult>;
  onEvents(handler: (accountId: string, events: AccountEvent[]) => void): void;
  onControl(handler: ControlHandler): void;
  /**
   * Called after a period in which this node could not hear the bus (reconnect, a stalled broker
   * answering again, another node's resync hint), so the gateway can catch up from the store.
   */
  onReconnect(handler: () => void): void;
  /**
   * True while this node hears the bus: its subscriber connection is up, subscribed, and answers a
   * heartbeat within its deadline. A node that cannot hear may miss control messages, so it
   * re-checks key status from the store instead (SPEC §7).
   */
  readonly hearing: boolean;
  /** Called on every change of `hearing`. */
  onHearing(handler: (hearing: boolean) => void): void;
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

/**
 * Run every handler, in order and synchronously, summing their counts; a failing handler counts 0
 * and never stops the others. Only what a handler leaves to a promise (e.g. a store read) runs
 * later: the returned promise settles once that is done too. A control message is therefore
 * applied before the caller processes anything else, e.g. the next message read from the same
 * socket (an event published after a revocation returned must find the key's connections closed).
 */
export function applyControl(handlers: readonly ControlHandler[], message: ControlMessage): Promise<number> {
  let affected = 0;
  const pending: Promise<void>[] = [];
  const count = (n: number | void) => {
    if (typeof n === 'number') affected += n;
  };
  for (const handler of handlers) {
    try {
      const result = handler(message);
      if (result instanceof Promise) pending.push(result.then(count, () => undefined));
      else count(result);
    } catch {
      // A handler bug must not break the bus for the other handlers.
    }
  }
  return pending.length === 0 ? Promise.resolve(affected) : Promise.all(pending).then(() => affected);
}
