/**
 * In-process bus for a single node. Delivery is synchronous: when publishEvents resolves, every
 * local connection has already been handed the event. That keeps per-account seq order and makes
 * "nothing published after a key was disabled reaches it" trivially true on one node.
 */
import { randomUUID } from 'node:crypto';
import type { AccountEvent } from '../../store/types.js';
import { applyControl, type BroadcastResult, type Bus, type ControlHandler, type ControlMessage, type PresenceSnapshot } from '../types.js';

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly instance = randomUUID();
  /** An in-process bus is never out of earshot. */
  readonly hearing: boolean = true;
  private eventHandlers: Array<(accountId: string, events: AccountEvent[]) => void> = [];
  private controlHandlers: ControlHandler[] = [];

  async publishEvents(accountId: string, events: AccountEvent[]): Promise<void> {
    for (const handler of this.eventHandlers) handler(accountId, events);
  }
  async subscribeAccount(_accountId: string): Promise<void> {}
  async unsubscribeAccount(_accountId: string): Promise<void> {}
  async publishControl(message: ControlMessage): Promise<void> {
    await applyControl(this.controlHandlers, message);
  }
  async broadcastControl(message: ControlMessage): Promise<BroadcastResult> {
    const affected = await applyControl(this.controlHandlers, message);
    return { published: true, receivers: 0, acknowledged: 0, affected, ackedBy: [] };
  }
  onEvents(handler: (accountId: string, events: AccountEvent[]) => void): void {
    this.eventHandlers.push(handler);
  }
  onControl(handler: ControlHandler): void {
    this.controlHandlers.push(handler);
  }
  onReconnect(_handler: () => void): void {
    // An in-process bus never disconnects.
  }
  onHearing(_handler: (hearing: boolean) => void): void {
    // Always hearing.
  }
  private presence: (() => PresenceSnapshot) | null = null;
  setPresenceProvider(provider: () => PresenceSnapshot): void {
    this.presence = provider;
  }
  async collectPresence(): Promise<{ nodes: PresenceSnapshot[]; missing: number }> {
    return { nodes: this.presence ? [this.presence()] : [], missing: 0 };
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {
    this.eventHandlers = [];
    this.controlHandlers = [];
  }
}
