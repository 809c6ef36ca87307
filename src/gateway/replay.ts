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
import type { Store } from '../store/types.js';
import type { Connection, KeyGuard } from './connection.js';
import { controlFrame } from './frames.js';
import type { Hub } from './hub.js';
import { typesOfMask } from './rooms.js';

/**
 * The largest event payload the publish API accepts (SPEC §3.1, TPX_MAX_EVENT_BYTES default).
 * The store reads pages by count, not bytes, so a page is sized for events this large: one page
 * then holds at most about TPX_MAX_OUTBOUND_BYTES of payload (16 events at the defaults).
 */
const ASSUMED_MAX_EVENT_BYTES = 256 * 1024;
const MIN_PAGE = 16;
const MAX_PAGE = 500;

export function replayPageLimit(maxOutboundBytes: number): number {
  return Math.min(MAX_PAGE, Math.max(MIN_PAGE, Math.floor(maxOutboundBytes / ASSUMED_MAX_EVENT_BYTES)));
}

export interface ReplayRequest {
  /** Rooms of this `subscribe`, as answered in `subscribed`. */
  granted: Room[];
  afterSeq: number;
}

export class Replayer {
  private readonly pageLimit: number;
  private readonly paceBytes: number;

  constructor(
    private readonly store: Store,
    private readonly hub: Hub,
    private readonly guard: KeyGuard,
    private readonly metrics: GatewayMetrics,
    maxOutboundBytes: number,
  ) {
    this.pageLimit = replayPageLimit(maxOutboundBytes);
    this.paceBytes = maxOutboundBytes / 4;
  }

  async run(conn: Connection, req: ReplayRequest): Promise<void> {
    const accountId = conn.accountId;
    const positionBefore = conn.lastSeq;
    if (accountId === null || !conn.beginReplay(req.afterSeq)) return;
    const limit = this.pageLimit;
    let first = true;
    for (;;) {
      const types = new Set(typesOfMask(conn.subscribedMask & this.hub.accessMaskOf(accountId)));
      const page = await this.store.readEvents({ account_id: accountId, after_seq: conn.lastSeq, types, limit });
      if (!conn.revalidate(this.guard)) return;
      if (first) {
        first = false;
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
      if (page.events.length === limit) continue;
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
    const payload: Record<string, unknown> = { rooms: req.granted, resumed_from: req.afterSeq, last_seq: Math.max(page.last_seq, req.afterSeq, positionBefore) };
    let gapTo = page.pruned_through;
    if (positionBefore > req.afterSeq) gapTo = Math.max(gapTo, positionBefore);
    if (gapTo > req.afterSeq) payload.gap = { from_seq: req.afterSeq + 1, to_seq: gapTo };
    return payload;
  }
}
