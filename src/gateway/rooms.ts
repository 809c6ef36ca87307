/**
 * Rooms as bitmasks: 11 event types fit in one integer, so "is this connection subscribed to
 * this event type, and may its account access it" is two AND operations, O(1), no allocation.
 */
import { ALL_ROOM, EVENT_TYPES, type EventType, type Room } from '@tpx-realtime/protocol';

export const TYPE_BIT: Readonly<Record<EventType, number>> = Object.fromEntries(
  EVENT_TYPES.map((t, i) => [t, 1 << i]),
) as Record<EventType, number>;

export const ALL_TYPES_MASK = (1 << EVENT_TYPES.length) - 1;

export function maskOf(types: readonly EventType[]): number {
  let mask = 0;
  for (const t of types) mask |= TYPE_BIT[t];
  return mask;
}

export function roomMask(room: Room): number {
  return room === ALL_ROOM ? ALL_TYPES_MASK : TYPE_BIT[room];
}

export function typesOfMask(mask: number): EventType[] {
  return EVENT_TYPES.filter((t) => (mask & TYPE_BIT[t]) !== 0);
}
