/**
 * Rooms as bitmasks: 11 event types fit in one integer, so "is this connection subscribed to
 * this event type, and may its account access it" is two AND operations, O(1), no allocation.
 */
import { ALL_ROOM, EVENT_TYPES, ROOMS, type EventType, type Room } from '@tpx-realtime/protocol';

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

/**
 * A set of room NAMES as bits (ALL is a room of its own here, unlike in the type masks above):
 * what a connection subscribed to, kept as one integer instead of a Set per connection.
 */
export const ROOM_BIT: Readonly<Record<Room, number>> = Object.fromEntries(ROOMS.map((r, i) => [r, 1 << i])) as Record<Room, number>;

export function roomsOfBits(bits: number): Room[] {
  return ROOMS.filter((r) => (bits & ROOM_BIT[r]) !== 0);
}

export function countBits(bits: number): number {
  let n = 0;
  for (let b = bits; b !== 0; b &= b - 1) n++;
  return n;
}
