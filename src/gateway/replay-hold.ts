/**
 * What a connection holds while it replays history (SPEC §2.8): live events and announced gaps
 * that arrive meanwhile, bounded in count and bytes. Past a bound everything held is dropped and
 * the hold is marked overflowed: it is all in the store, and the replay reads it again.
 */
import { EventFrame } from './transport.js';

/** Live events held per connection during a replay; past this the replay re-reads the store. */
const MAX_HELD = 10_000;

/** A skipped range waiting in a hold (announced when the replay ends). */
export class Gap {
  constructor(
    readonly from: number,
    readonly to: number,
  ) {}
}

export class ReplayHold {
  items: Array<EventFrame | Gap> = [];
  overflowed = false;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  add(item: EventFrame | Gap): void {
    if (this.overflowed) return;
    const bytes = item instanceof EventFrame ? item.event.payload_json.length + 200 : 0;
    if (this.items.length >= MAX_HELD || this.bytes + bytes > this.maxBytes) {
      this.overflowed = true;
      this.items = [];
      this.bytes = 0;
      return;
    }
    this.items.push(item);
    this.bytes += bytes;
  }
}
