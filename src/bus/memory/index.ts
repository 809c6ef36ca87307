/**
 * In-process bus for a single node. Delivery is synchronous: when publishEvents resolves, every
 * local connection has already been handed the event. That keeps per-account seq order and makes
 * "nothing published after a key was disabled reaches it" trivially true on one node.
 */
import type { AccountEvent } from '../../store/types.js';
import type { Bus, ControlMessage, PresenceSnapshot } from '../types.js';

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private eventHandlers: Array<(accountId: string, events: AccountEvent[]) => void> = [];
  private controlHandlers: Array<(message: ControlMessage) => void> = [];

  async publishEvents(accountId: string, events: AccountEvent[]): Promise<void> {
    for (const handler of this.eventHandlers) handler(accountId, events);
  }
  async subscribeAccount(): Promise<void> {}
  async unsubscribeAccount(): Promise<void> {}
  async publishControl(message: ControlMessage): Promise<void> {
    for (const handler of this.controlHandlers) handler(message);
  }
  onEvents(handler: (accountId: string, events: AccountEvent[]) => void): void {
    this.eventHandlers.push(handler);
  }
  onControl(handler: (message: ControlMessage) => void): void {
    this.controlHandlers.push(handler);
  }
  onReconnect(): void {
    // An in-process bus never disconnects.
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
