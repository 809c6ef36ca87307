/**
 * Realistic, valid sample payloads of the 11 event types (TICKET and SEALED_TCG variants).
 * Used by tests, `tpx simulate`, `tpx publish` and the benchmarks. Pure: no Node-only imports
 * (ids come from the Web Crypto `crypto.randomUUID`, present in Node ≥ 19 and browsers).
 *
 * Times are relative to `now` (default: the current time), as a real event would carry them:
 * a BID_REQUEST expires 5 minutes after it is sent, the ticketed event is 30 days ahead, a
 * payment is charged and settled "now". A sample is never born expired.
 */
import type { EventType } from './constants.js';
import type { AssetType, EventPayloadMap } from './events.js';
import { EVENT_REQUIRED_FIELDS } from './events.js';

export interface SampleOptions {
  /** Asset variant of the item-level blocks. Default `TICKET`. */
  assetType?: AssetType;
  /** The moment the sample's times are relative to (epoch ms or Date). Default: now. */
  now?: number | Date;
  /** `conversation_id` to use (keep one per simulated deal). Default: fixed id, or random with `randomIds`. */
  conversationId?: string;
  /** Mint fresh UUIDs for the ids (bid, payment, transfer, …) instead of the fixed sample ones. */
  randomIds?: boolean;
  /** Field overrides merged (shallowly) into the payload last; a value of `undefined` deletes the key. */
  fields?: Record<string, unknown>;
  /**
   * Any other key is also treated as a payload field override, so
   * `samplePayload('BID_OUTBID', { bid_amount_cents: 12_500 })` works.
   */
  [field: string]: unknown;
}

const OPTION_KEYS = new Set(['assetType', 'now', 'conversationId', 'randomIds', 'fields']);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** ISO-8601 UTC to the second: `2025-06-15T19:30:00Z`. */
function isoUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The ticketed event: 30 days ahead at 23:30 UTC, i.e. 19:30 at the venue (US Eastern, summer time). */
function eventDates(now: number): { utc: string; local: string } {
  const at = Math.floor(now / DAY) * DAY + 30 * DAY + 23.5 * HOUR;
  return { utc: isoUtc(at), local: isoUtc(at - 4 * HOUR).slice(0, -1) };
}

function nowMs(now: number | Date | undefined): number {
  if (now === undefined) return Date.now();
  return typeof now === 'number' ? now : now.getTime();
}

const FIXED = {
  conversation_id: '550e8400-e29b-41d4-a716-446655440000',
  reference_id: 'ico_456',
  bid_id: 'bid_7f3c2a91',
  conditional_bid_id: 'cb_1',
  transfer_id: 'tr_5d1e0b44',
  payment_id: 'pay_9a8b7c6d',
  key_id: 'a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d',
};

function uuid(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  // Fallback for exotic runtimes: RFC 4122 v4 shape from Math.random (samples only, not security).
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (ch) => {
    const r = (Math.random() * 16) | 0;
    return (ch === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });
}

function ids(opts: SampleOptions) {
  const rnd = opts.randomIds === true;
  const keyId = rnd ? uuid() : FIXED.key_id;
  return {
    conversation_id: opts.conversationId ?? (rnd ? uuid() : FIXED.conversation_id),
    reference_id: rnd ? `ico_${uuid().slice(0, 8)}` : FIXED.reference_id,
    bid_id: rnd ? uuid() : FIXED.bid_id,
    conditional_bid_id: rnd ? uuid() : FIXED.conditional_bid_id,
    transfer_id: rnd ? uuid() : FIXED.transfer_id,
    payment_id: rnd ? uuid() : FIXED.payment_id,
    key_id: keyId,
  };
}

/** The five asset-block keys (`asset_type`, `external_ids`, `asset_details`, `config_details`, `item_details`). */
export function sampleAssetBlock(assetType: AssetType = 'TICKET', keyId: string = FIXED.key_id, quantity = 2, now: number | Date = Date.now()) {
  if (assetType === 'SEALED_TCG') {
    return {
      asset_type: 'SEALED_TCG' as const,
      external_ids: { TCGPLAYER: '541181' },
      asset_details: {
        id: '9f0c4c1e-2b7a-4d6e-8f3a-1c5b7d9e0a2f',
        name: 'Scarlet & Violet: 151 Booster Box',
        set_name: 'Scarlet & Violet: 151',
        game: 'Pokemon',
      },
      config_details: {
        id: 'd2e4f6a8-0b1c-4d3e-9f5a-7b9c1d3e5f70',
        name: 'Booster Box (36 packs)',
        product_type: 'BOOSTER_BOX',
      },
      item_details: {
        key_id: keyId,
        key_ids: [keyId],
        fair_values: [],
        condition: 'UNOPENED' as const,
        quantity,
      },
    };
  }
  const date = eventDates(nowMs(now));
  return {
    asset_type: 'TICKET' as const,
    external_ids: { SEATGEEK: '17346315', TICKETMASTER: 'vvG1YZ4bJalaRJ' },
    asset_details: {
      id: '3b9a0f8e-b6c8-4f79-89a5-2ed522bf9740',
      event_name: 'Taylor Swift - The Eras Tour',
      venue_name: 'MetLife Stadium',
      venue_city: 'East Rutherford',
      venue_state: 'NJ',
      venue_country: 'US',
      event_date_utc: date.utc,
      event_date_local: date.local,
      subject_names: ['Taylor Swift'],
      primary_category: 'Concerts',
      categories: ['Concerts', 'Pop'],
    },
    config_details: {
      id: '741335d5-c78c-414c-9f46-5b3577beea5f',
      event_type: 'PRIMARY' as const,
      event_name: 'Taylor Swift - The Eras Tour',
      event_date_utc: date.utc,
      event_date_local: date.local,
    },
    item_details: {
      key_id: keyId,
      key_ids: [keyId],
      fair_values: [],
      section: 'Floor 2',
      row: '12',
      seat_numbers: ['1', '2'],
      quantity,
      ticket_type: 'MOBILE',
    },
  };
}

function build(type: EventType, opts: SampleOptions): Record<string, unknown> {
  const i = ids(opts);
  const now = nowMs(opts.now);
  const asset = sampleAssetBlock(opts.assetType ?? 'TICKET', i.key_id, 2, now);
  const assetType = asset.asset_type;
  switch (type) {
    case 'BID_REQUEST':
      return {
        conversation_id: i.conversation_id,
        reference_type: 'INSTANT_CASH_OFFER',
        reference_id: i.reference_id,
        ...asset,
        expires_at: isoUtc(now + 5 * MINUTE),
      };
    case 'BID_OUTBID':
      return {
        conversation_id: i.conversation_id,
        bid_id: i.bid_id,
        ...asset,
        conditional_bid_id: null,
        bid_amount_cents: 41_500,
        external_reference_id: 'partner-ref-1001',
      };
    case 'AUCTION_RESULT':
      return {
        conversation_id: i.conversation_id,
        is_winner: true,
        ...asset,
        bid_id: i.bid_id,
        conditional_bid_id: null,
        bid_amount_cents: 43_000,
        quantity: 2,
        external_reference_id: 'partner-ref-1001',
      };
    case 'CONDITIONAL_BID_APPLIED':
      return {
        conditional_bid_id: i.conditional_bid_id,
        conversation_id: i.conversation_id,
        bid_id: i.bid_id,
        bid_amount_cents: 40_000,
        quantity: 2,
        ...asset,
        all_in_price_cents: 46_800,
        key_id: i.key_id,
        external_reference_id: 'partner-ref-cb-1',
        current_filled_quantity: 2,
        max_filled_quantity: 10,
      };
    case 'CONDITIONAL_BID_STATUS_CHANGE':
      return {
        conditional_bid_id: i.conditional_bid_id,
        status: 'PARTIALLY_FILLED',
        previous_status: 'NOT_FILLED',
        is_active: true,
        current_filled_quantity: 2,
        max_filled_quantity: 10,
        external_reference_id: 'partner-ref-cb-1',
        asset_type: assetType,
        reason: 'Filled 2 of 10 via auction',
      };
    case 'CONDITIONAL_BID_EXPIRING_SOON':
      return {
        conditional_bid_id: i.conditional_bid_id,
        expires_at: isoUtc(now + DAY),
        status: 'PARTIALLY_FILLED',
        current_filled_quantity: 2,
        max_filled_quantity: 10,
        external_reference_id: 'partner-ref-cb-1',
        asset_type: assetType,
      };
    case 'INSTANT_CASH_OFFER_STATUS_CHANGE':
      return {
        conversation_id: i.conversation_id,
        reference_type: 'INSTANT_CASH_OFFER',
        reference_id: i.reference_id,
        status: 'ACCEPTED',
        ...asset,
        previous_status: 'PENDING',
        external_reference_id: 'partner-ref-1001',
        bid_id: i.bid_id,
        bid_amount_cents: 43_000,
        quantity: 2,
      };
    case 'TRANSFER_CONFIRMATION_RECEIVED':
      return {
        conversation_id: i.conversation_id,
        transfer_id: i.transfer_id,
        ...asset,
        transfer_method: assetType === 'SEALED_TCG' ? 'PHYSICAL' : 'DIGITAL',
        quantity: 2,
        confirmed_at: isoUtc(now - 2 * MINUTE),
      };
    case 'PAYMENT_CHARGED':
      return {
        conversation_id: i.conversation_id,
        payment_id: i.payment_id,
        amount_cents: 46_800,
        ...asset,
        payment_rail: 'ACH',
        payment_strategy: 'ON_CONFIRMATION',
        charged_at: isoUtc(now),
      };
    case 'PAYMENT_FAILED':
      return {
        conversation_id: i.conversation_id,
        payment_id: i.payment_id,
        failure_code: 'INSUFFICIENT_FUNDS',
        failure_reason: 'The ACH debit was returned: insufficient funds (R01)',
        amount_cents: 46_800,
        payment_rail: 'ACH',
        ...asset,
      };
    case 'PAYMENT_SETTLED':
      return {
        conversation_id: i.conversation_id,
        payment_id: i.payment_id,
        total_charged_cents: 46_800,
        bid_amount_cents: 43_000,
        platform_fee_cents: 2_580,
        processing_fee_cents: 1_220,
        seller_payout_cents: 43_000,
        settled_at: isoUtc(now),
        ...asset,
      };
    default: {
      const never: never = type;
      throw new Error(`unknown event type: ${String(never)}`);
    }
  }
}

/**
 * A realistic valid payload of `type`. Fresh object on every call (safe to mutate).
 * `samplePayload(type, { assetType: 'SEALED_TCG' })` gives the sealed-TCG variant.
 */
export function samplePayload<T extends EventType>(type: T, overrides: SampleOptions = {}): EventPayloadMap[T] {
  const payload = build(type, overrides);
  const apply = (fields: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) delete payload[key];
      else payload[key] = value;
    }
  };
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(overrides)) if (!OPTION_KEYS.has(key)) extra[key] = value;
  apply(extra);
  if (overrides.fields) apply(overrides.fields);
  return payload as EventPayloadMap[T];
}

/** Top-level required fields of `type` (EVENTS.md), in declaration order. Fresh array. */
export function requiredFields(type: EventType): string[] {
  return [...EVENT_REQUIRED_FIELDS[type]];
}
