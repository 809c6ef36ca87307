/**
 * Resume (SPEC §2.8): `subscribe` with `after_seq`. The connection holds live events from before
 * the first store read (Connection.beginReplay), history is sent in seq order paced by the
 * transport, then what was held is sent skipping what history already covered: no gap, no
 * duplicate across the switch. A hold that overflowed simply means another store read.
 *
 * Nothing is skipped silently: a range pruned before the replay is in `subscribed.gap`; one
 * pruned while a multi-page replay runs gets a `gap` frame at that point of the stream.
 */
import type { Room } from '@tpx-realtime/protocol';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { EventLog } from '../store/types.js';
import type { Connection, KeyGuard } from './connection.js';
import { controlFrame } from './frames.js';
import { ALL_TYPES_MASK, typesOfMask } from './rooms.js';

/** Most events per replay page; pages are also bounded in bytes (see Replayer.pageBytes). */
const PAGE_EVENTS = 500;

export interface ReplayRequest {
  /** Rooms of this `subscribe`, as answered in `subscribed`. */
  granted: Room[];
  afterSeq: number;
}

export class Replayer {
  /**
   * Payload bytes per store read: a quarter of the outbound limit, so one resuming connection
   * holds at most about that much history in memory (plus one event, however large) whatever
   * the size of its events. Pacing keeps the socket's queue under the same quarter.
   */
  private readonly pageBytes: number;
  private readonly paceBytes: number;

  constructor(
    private readonly store: EventLog,
    private readonly guard: KeyGuard,
    private readonly metrics: GatewayMetrics,
    maxOutboundBytes: number,
  ) {
    this.pageBytes = Math.max(1, Math.floor(maxOutboundBytes / 4));
    this.paceBytes = maxOutboundBytes / 4;
  }

  async run(conn: Connection, req: ReplayRequest): Promise<void> {
    const accountId = conn.accountId;
    const positionBefore = conn.lastSeq;
    if (accountId === null || !conn.beginReplay(req.afterSeq)) return;
    let first = true;
    for (;;) {
      // The connection's rooms only: the stream already holds nothing the account could not access
      // when it was accepted (the same rule as live delivery, docs/decisions.md).
      const mask = conn.subscribedMask;
      const types = mask === ALL_TYPES_MASK ? null : new Set(typesOfMask(mask));
      const page = await this.store.readEvents({ account_id: accountId, after_seq: conn.lastSeq, types, limit: PAGE_EVENTS, max_bytes: this.pageBytes });
      if (!conn.revalidate(this.guard)) return;
      if (first) {
        first = false;
        // A resume point beyond the head (a store restored from a backup, another environment's
        // checkpoint, a stale Last-Event-ID): the stream goes on from the head, and `subscribed`
        // says so (last_seq < resumed_from), instead of silently skipping the seqs up to after_seq.
        conn.limitPositionTo(Math.max(page.last_seq, positionBefore));
        // Its position is where the replay starts: after_seq, or past a range announced as a gap.
        const position = Math.max(conn.lastSeq, page.pruned_through);
        if (!conn.send('subscribed', controlFrame('subscribed', this.subscribedPayload(req, positionBefore, page)), position)) return;
        conn.skipTo(page.pruned_through);
      } else if (page.pruned_through > conn.lastSeq) {
        if (!conn.replayGap(conn.lastSeq + 1, page.pruned_through)) return;
      }
      const sentAt = Date.now();
      let written = 0;
      for (const event of page.events) {
        // Pace the replay by the transport instead of tripping the slow-consumer limit.
        if (conn.transport.queuedBytes > this.paceBytes) {
          await conn.transport.waitForDrain();
          if (!conn.revalidate(this.guard)) return;
        }
        if (!conn.replayEvent(event, sentAt)) return;
        written++;
      }
      this.metrics.eventsOut.inc(written);
      // A page cut short by its count or byte bound before the stream's head: read on.
      const lastRead = page.events.at(-1)?.seq;
      if (lastRead !== undefined && lastRead < page.last_seq) continue;
      if (conn.finishReplay() !== 'again') return;
    }
  }

  /**
   * `subscribed` of a resume. Its `gap` covers what was pruned after `after_seq` and, for a
   * subscribe whose `after_seq` is below what this connection was already sent, the range in
   * between: its history (of newly added rooms, or older than this connection's first
   * subscription) cannot be sent without breaking strictly increasing seq (docs/decisions.md).
   */
  private subscribedPayload(req: ReplayRequest, positionBefore: number, page: { pruned_through: number; last_seq: number }): Record<string, unknown> {
    const payload: Record<string, unknown> = { rooms: req.granted, resumed_from: req.afterSeq, last_seq: Math.max(page.last_seq, positionBefore) };
    let gapTo = page.pruned_through;
    if (positionBefore > req.afterSeq) gapTo = Math.max(gapTo, positionBefore);
    if (gapTo > req.afterSeq) payload.gap = { from_seq: req.afterSeq + 1, to_seq: gapTo };
    return payload;
  }
}
