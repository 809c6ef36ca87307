/**
 * `tpx simulate`: drive a realistic stream of auctions through the publish API. Several deals
 * run interleaved; each follows the life of a real auction with one conversation_id:
 *
 *   BID_REQUEST (all accounts) → BID_OUTBID… (each to the account that lost the lead; an
 *   outbid account drops out) → AUCTION_RESULT (every account; is_winner only for the final
 *   leader, which may be a buyer outside TPX, so single-account runs see losses too)
 *   → if an account won: [CONDITIONAL_BID_APPLIED + _STATUS_CHANGE when a standing bid won]
 *   → INSTANT_CASH_OFFER_STATUS_CHANGE (accepted) → PAYMENT_CHARGED → TRANSFER_CONFIRMATION_RECEIVED
 *   → PAYMENT_SETTLED, or PAYMENT_FAILED (~10%); now and then CONDITIONAL_BID_EXPIRING_SOON.
 *
 * Times in the payloads are relative to now (a BID_REQUEST expires 5 minutes after it is sent).
 * Bounded by --count (events) and/or --duration (default 30 s when neither is given).
 */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { EventType } from '@tpx-realtime/protocol';
import { sampleAssetBlock, samplePayload } from '@tpx-realtime/protocol';
import { adminClient } from '../context.js';
import { CliError } from '../errors.js';
import { tpx } from '../invocation.js';
import { colourer, notice, stdoutColours } from '../format.js';
import { collectIds, durationArg, positiveIntArg, rateArg } from '../validate.js';
import type { ApiClient } from '../api.js';

export interface SimEvent {
  msg_type: EventType;
  account_ids: string[];
  payload: Record<string, unknown>;
}

type Rng = () => number;

/** The leader of an auction when a buyer outside TPX holds the high bid. */
const OUTSIDE = '(outside TPX)';

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** The events of one deal, in order. Pure given the rng; exported for tests. */
export function* dealEvents(accounts: readonly string[], rng: Rng = Math.random): Generator<SimEvent> {
  const assetType = rng() < 0.7 ? 'TICKET' : 'SEALED_TCG';
  const conversationId = randomUUID();
  const quantity = assetType === 'TICKET' ? 1 + Math.floor(rng() * 4) : 1 + Math.floor(rng() * 2);
  const asset = sampleAssetBlock(assetType, randomUUID(), quantity);
  const referenceId = `ico_${randomUUID().slice(0, 8)}`;
  const base = (type: EventType, fields: Record<string, unknown>) =>
    samplePayload(type, { assetType, conversationId, randomIds: true, fields: { ...asset, ...fields } }) as Record<string, unknown>;
  const ext = `partner-ref-${Math.floor(rng() * 1e6)}`;

  yield {
    msg_type: 'BID_REQUEST',
    account_ids: [...accounts],
    payload: base('BID_REQUEST', {
      reference_type: 'INSTANT_CASH_OFFER',
      reference_id: referenceId,
      expires_at: new Date(Date.now() + 5 * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    }),
  };

  // Bidding war between the accounts and buyers outside TPX (OUTSIDE: they receive nothing).
  // Each outbid goes to the account that held the high bid, which then drops out: its
  // AUCTION_RESULT is a loss.
  let price = 10_000 + Math.floor(rng() * 50_000);
  const bids = new Map<string, { bidId: string; amount: number }>();
  const inRace = new Set(accounts);
  let leader: string = rng() < 0.3 ? OUTSIDE : pick(rng, accounts);
  if (leader !== OUTSIDE) bids.set(leader, { bidId: randomUUID(), amount: price });
  const rounds = Math.floor(rng() * 4);
  for (let i = 0; i < rounds; i++) {
    const challengers = [...inRace].filter((a) => a !== leader);
    if (leader !== OUTSIDE) challengers.push(OUTSIDE); // someone outside can always bid more
    if (challengers.length === 0) break;
    const previous = leader;
    leader = pick(rng, challengers);
    price += 500 + Math.floor(rng() * 2_500);
    if (leader !== OUTSIDE) bids.set(leader, { bidId: randomUUID(), amount: price });
    if (previous !== OUTSIDE) {
      inRace.delete(previous);
      const beaten = bids.get(previous)!;
      yield {
        msg_type: 'BID_OUTBID',
        account_ids: [previous],
        payload: base('BID_OUTBID', { bid_id: beaten.bidId, bid_amount_cents: beaten.amount, conditional_bid_id: null, external_reference_id: ext }),
      };
    }
  }

  const winner = leader === OUTSIDE ? undefined : leader;
  const viaConditional = rng() < 0.25;
  const conditionalBidId = viaConditional ? randomUUID() : null;
  for (const account of accounts) {
    const isWinner = account === winner;
    const bid = bids.get(account);
    yield {
      msg_type: 'AUCTION_RESULT',
      account_ids: [account],
      payload: base('AUCTION_RESULT', {
        is_winner: isWinner,
        bid_id: bid?.bidId,
        conditional_bid_id: isWinner ? conditionalBidId : null,
        bid_amount_cents: bid?.amount,
        quantity: isWinner ? quantity : undefined,
        external_reference_id: bid ? ext : undefined,
      }),
    };
  }
  if (winner === undefined) return; // the lot went to a buyer outside TPX
  const leaderBid = bids.get(winner)!.bidId;

  if (conditionalBidId) {
    const max = quantity * (2 + Math.floor(rng() * 4));
    yield {
      msg_type: 'CONDITIONAL_BID_APPLIED',
      account_ids: [winner],
      payload: base('CONDITIONAL_BID_APPLIED', {
        conditional_bid_id: conditionalBidId,
        bid_id: leaderBid,
        bid_amount_cents: price,
        quantity,
        all_in_price_cents: Math.round(price * 1.09),
        current_filled_quantity: quantity,
        max_filled_quantity: max,
        external_reference_id: ext,
      }),
    };
    yield {
      msg_type: 'CONDITIONAL_BID_STATUS_CHANGE',
      account_ids: [winner],
      payload: base('CONDITIONAL_BID_STATUS_CHANGE', {
        conditional_bid_id: conditionalBidId,
        status: 'PARTIALLY_FILLED',
        previous_status: 'NOT_FILLED',
        is_active: true,
        current_filled_quantity: quantity,
        max_filled_quantity: max,
        reason: `Filled ${quantity} of ${max} via auction`,
      }),
    };
    if (rng() < 0.5) {
      yield {
        msg_type: 'CONDITIONAL_BID_EXPIRING_SOON',
        account_ids: [winner],
        payload: base('CONDITIONAL_BID_EXPIRING_SOON', {
          conditional_bid_id: conditionalBidId,
          expires_at: new Date(Date.now() + 24 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          status: 'PARTIALLY_FILLED',
          current_filled_quantity: quantity,
          max_filled_quantity: max,
        }),
      };
    }
  }

  yield {
    msg_type: 'INSTANT_CASH_OFFER_STATUS_CHANGE',
    account_ids: [winner],
    payload: base('INSTANT_CASH_OFFER_STATUS_CHANGE', {
      reference_type: 'INSTANT_CASH_OFFER',
      reference_id: referenceId,
      status: 'ACCEPTED',
      previous_status: 'PENDING',
      bid_id: leaderBid,
      bid_amount_cents: price,
      quantity,
      external_reference_id: ext,
    }),
  };

  const paymentId = randomUUID();
  const platformFee = Math.round(price * 0.06);
  const processingFee = Math.round(price * 0.029) + 30;
  const total = price + platformFee + processingFee;
  const rail = pick(rng, ['CARD', 'ACH', 'WIRE', 'TRADEPOST_BALANCE'] as const);
  if (rng() < 0.1) {
    yield {
      msg_type: 'PAYMENT_FAILED',
      account_ids: [winner],
      payload: base('PAYMENT_FAILED', {
        payment_id: paymentId,
        amount_cents: total,
        payment_rail: rail,
        ...pick(rng, [
          { failure_code: 'INSUFFICIENT_FUNDS', failure_reason: 'Insufficient funds' },
          { failure_code: 'CARD_DECLINED', failure_reason: 'The card was declined by the issuer' },
          { failure_code: 'ACH_RETURNED', failure_reason: 'The ACH debit was returned (R01)' },
        ]),
      }),
    };
    return;
  }
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  yield {
    msg_type: 'PAYMENT_CHARGED',
    account_ids: [winner],
    payload: base('PAYMENT_CHARGED', { payment_id: paymentId, amount_cents: total, payment_rail: rail, payment_strategy: 'ON_CONFIRMATION', charged_at: now() }),
  };
  yield {
    msg_type: 'TRANSFER_CONFIRMATION_RECEIVED',
    account_ids: [winner],
    payload: base('TRANSFER_CONFIRMATION_RECEIVED', {
      transfer_id: randomUUID(),
      transfer_method: assetType === 'TICKET' ? 'DIGITAL' : 'PHYSICAL',
      quantity,
      confirmed_at: now(),
    }),
  };
  yield {
    msg_type: 'PAYMENT_SETTLED',
    account_ids: [winner],
    payload: base('PAYMENT_SETTLED', {
      payment_id: paymentId,
      total_charged_cents: total,
      bid_amount_cents: price,
      platform_fee_cents: platformFee,
      processing_fee_cents: processingFee,
      seller_payout_cents: price,
      settled_at: now(),
    }),
  };
}

interface SimulateOptions {
  account?: string[];
  rate: number;
  duration?: number;
  count?: number;
  concurrency: number;
  quiet?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Bidders when no --account is given: the first accounts of the server (a deal addresses each). */
const DEFAULT_BIDDERS = 10;

/** The accounts to simulate for: --account, else the server's first accounts (an error when it has none). */
async function bidders(client: ApiClient, chosen: string[] | undefined): Promise<string[]> {
  if (chosen && chosen.length > 0) return [...new Set(chosen)];
  const { accounts } = await client.get<{ accounts: Array<{ account_id: string }> }>('/admin/accounts', { limit: String(DEFAULT_BIDDERS) });
  if (accounts.length === 0) {
    throw new CliError(`no accounts to simulate for: create one with \`${tpx()} accounts create\`, or pass --account <account_id>`);
  }
  notice(`no --account given: the server's first ${accounts.length} account(s) bid`);
  return accounts.map((a) => a.account_id);
}

async function run(client: ApiClient, opts: SimulateOptions & { account: string[] }): Promise<void> {
  const durationMs = opts.duration ?? (opts.count === undefined ? 30_000 : undefined);
  const deadline = durationMs !== undefined ? Date.now() + durationMs : Infinity;
  const limit = opts.count ?? Infinity;
  const c = colourer(stdoutColours());
  const active: Array<Generator<SimEvent>> = [];
  let sent = 0;
  let deals = 0;
  let failed = 0;
  let stopping = false;
  const onSig = () => {
    stopping = true;
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  const start = Date.now();
  notice(`simulating ${opts.rate}/s to ${opts.account.length} account(s)` +
    `${opts.count !== undefined ? `, ${opts.count} events` : ''}${durationMs !== undefined ? `, for ${durationMs / 1000}s` : ''} (Ctrl-C to stop)`);
  while (!stopping && sent + failed < limit && Date.now() < deadline) {
    while (active.length < opts.concurrency) {
      active.push(dealEvents(opts.account));
      deals++;
    }
    const i = Math.floor(Math.random() * active.length);
    const next = active[i].next();
    if (next.done) {
      active.splice(i, 1);
      continue;
    }
    const ev = next.value;
    try {
      const res = await client.post<{ msg_id: string; recipients: number }>('/v1/events', ev);
      sent++;
      if (!opts.quiet) {
        const conv = String(ev.payload.conversation_id ?? ev.payload.conditional_bid_id ?? '').slice(0, 8);
        process.stdout.write(`${c('dim', String(sent).padStart(5))}  ${c('cyan', ev.msg_type.padEnd(32))} conv=${conv}…  → ${res.recipients} recipient(s)\n`);
      }
    } catch (err) {
      failed++;
      notice(`publish ${ev.msg_type} failed: ${(err as Error).message}`);
      if (failed >= 5 && sent === 0) throw err;
    }
    const due = start + ((sent + failed) * 1000) / opts.rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
  }
  process.off('SIGINT', onSig);
  process.off('SIGTERM', onSig);
  const secs = (Date.now() - start) / 1000;
  notice(`done: ${sent} events published (${failed} failed) across ${deals} deal(s) in ${secs.toFixed(1)}s`);
  if (failed > 0) process.exitCode = 1;
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description('publish a realistic stream of auctions, outbids, results and payments')
    .option('--account <account_id>', `participating account; repeat or comma-separate for several bidders (default: the server's first ${DEFAULT_BIDDERS} accounts)`, collectIds('account id'))
    .option('--rate <rate>', 'events per second, e.g. 5/s, 120/m', rateArg, 5)
    .option('--duration <duration>', 'stop after this long, e.g. 30s, 5m; a plain number is seconds (default 30s unless --count)', durationArg)
    .option('--count <n>', 'stop after n events', positiveIntArg)
    .option('--concurrency <n>', 'deals in progress at once', positiveIntArg, 3)
    .option('--quiet', 'print only the summary')
    .action(async (opts: SimulateOptions, cmd: Command) => {
      const client = adminClient(cmd);
      await run(client, { ...opts, account: await bidders(client, opts.account) });
    });
}
