/**
 * `tpx simulate`'s deal generator: every event is valid, one conversation per deal, the right
 * accounts receive each step, outbid accounts lose (also with a single account: before, every
 * AUCTION_RESULT of a one-account run was a win, even right after its BID_OUTBID), and the
 * payment flow is consistent. Pure (no server).
 */
import { describe, expect, it } from 'vitest';
import { validateEventPayload } from '@tpx-realtime/protocol';
import { dealEvents, type SimEvent } from '../../src/cli/commands/simulate.js';

/** Deterministic PRNG (mulberry32) so each case explores a fixed set of deals. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ACCOUNTS = ['acc_a', 'acc_b', 'acc_c'];

describe('simulate deal generator', () => {
  const deals: SimEvent[][] = [];
  for (let seed = 1; seed <= 200; seed++) deals.push([...dealEvents(ACCOUNTS, rng(seed))]);

  it('every event passes the protocol validator', () => {
    for (const deal of deals) {
      for (const ev of deal) {
        const r = validateEventPayload(ev.msg_type, ev.payload);
        expect(r.ok, `${ev.msg_type}: ${JSON.stringify(r)}`).toBe(true);
      }
    }
  });

  it('one conversation_id per deal, in the auction order', () => {
    for (const deal of deals) {
      const convs = new Set(deal.map((e) => e.payload.conversation_id).filter((c) => c !== undefined));
      expect(convs.size).toBe(1);
      const types = deal.map((e) => e.msg_type);
      expect(types[0]).toBe('BID_REQUEST');
      expect(deal[0].account_ids).toEqual(ACCOUNTS);
      const firstResult = types.indexOf('AUCTION_RESULT');
      expect(types.slice(1, firstResult).every((t) => t === 'BID_OUTBID')).toBe(true);
      const last = types[types.length - 1];
      const won = deal.some((e) => e.msg_type === 'AUCTION_RESULT' && e.payload.is_winner === true);
      if (won) expect(['PAYMENT_SETTLED', 'PAYMENT_FAILED']).toContain(last);
      else expect(last).toBe('AUCTION_RESULT'); // the lot went to a buyer outside TPX
      if (last === 'PAYMENT_SETTLED') {
        expect(types.slice(-3)).toEqual(['PAYMENT_CHARGED', 'TRANSFER_CONFIRMATION_RECEIVED', 'PAYMENT_SETTLED']);
      }
    }
  });

  it('at most one winner; every later step goes to the winner only; payment ids and totals agree', () => {
    for (const deal of deals) {
      const results = deal.filter((e) => e.msg_type === 'AUCTION_RESULT');
      expect(results.map((e) => e.account_ids[0]).sort()).toEqual([...ACCOUNTS].sort());
      const winners = results.filter((e) => e.payload.is_winner === true);
      expect(winners.length).toBeLessThanOrEqual(1);
      if (winners.length === 0) continue;
      const winner = winners[0].account_ids[0];
      const afterResults = deal.slice(deal.lastIndexOf(results[results.length - 1]) + 1);
      for (const e of afterResults) expect(e.account_ids).toEqual([winner]);
      const charged = deal.find((e) => e.msg_type === 'PAYMENT_CHARGED');
      const settled = deal.find((e) => e.msg_type === 'PAYMENT_SETTLED');
      if (charged && settled) {
        expect(settled.payload.payment_id).toBe(charged.payload.payment_id);
        expect(settled.payload.total_charged_cents).toBe(charged.payload.amount_cents);
        const p = settled.payload as Record<string, number>;
        expect(p.bid_amount_cents + p.platform_fee_cents + p.processing_fee_cents).toBe(p.total_charged_cents);
      }
    }
  });

  it('the outbid goes to the bidder who lost the lead, once, and that account loses the auction', () => {
    for (const deal of deals) {
      const outbids = deal.filter((e) => e.msg_type === 'BID_OUTBID');
      for (const o of outbids) expect(o.account_ids).toHaveLength(1);
      const outbid = outbids.map((o) => o.account_ids[0]);
      expect(new Set(outbid).size).toBe(outbid.length);
      for (const result of deal.filter((e) => e.msg_type === 'AUCTION_RESULT')) {
        if (outbid.includes(result.account_ids[0])) {
          expect(result.payload.is_winner).toBe(false);
          // The loser's own (beaten) bid is in its result, as in its BID_OUTBID.
          const o = outbids.find((x) => x.account_ids[0] === result.account_ids[0])!;
          expect(result.payload.bid_id).toBe(o.payload.bid_id);
          expect(result.payload.bid_amount_cents).toBe(o.payload.bid_amount_cents);
        }
      }
    }
  });

  it('a single account wins some auctions and loses others, and is never told it won after being outbid', () => {
    const single: SimEvent[][] = [];
    for (let seed = 1; seed <= 200; seed++) single.push([...dealEvents(['only'], rng(seed))]);
    const outcomes = single.map((deal) => deal.find((e) => e.msg_type === 'AUCTION_RESULT')!.payload.is_winner);
    expect(outcomes.filter((w) => w === true).length).toBeGreaterThan(20);
    expect(outcomes.filter((w) => w === false).length).toBeGreaterThan(20);
    for (const deal of single) {
      const i = deal.findIndex((e) => e.msg_type === 'BID_OUTBID');
      if (i >= 0) expect(deal.find((e) => e.msg_type === 'AUCTION_RESULT')!.payload.is_winner).toBe(false);
    }
  });

  it('times are relative to now: the BID_REQUEST has not expired when it is published', () => {
    const before = Date.now();
    for (const deal of deals.slice(0, 20)) {
      const expires = Date.parse(String(deal[0].payload.expires_at));
      expect(expires).toBeGreaterThan(before);
      const event = (deal[0].payload.asset_details as Record<string, unknown>).event_date_utc;
      if (event !== undefined) expect(Date.parse(String(event))).toBeGreaterThan(before);
    }
  });

  it('covers the whole event vocabulary across deals', () => {
    const seen = new Set(deals.flat().map((e) => e.msg_type));
    for (const t of ['PAYMENT_FAILED', 'CONDITIONAL_BID_APPLIED', 'CONDITIONAL_BID_STATUS_CHANGE', 'CONDITIONAL_BID_EXPIRING_SOON', 'INSTANT_CASH_OFFER_STATUS_CHANGE']) {
      expect(seen.has(t as SimEvent['msg_type'])).toBe(true);
    }
  });
});
