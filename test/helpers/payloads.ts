/**
 * Valid sample payloads for the 11 event types, following /work/shared/EVENTS.md.
 * Local to the tests so the black-box suite does not depend on server internals.
 */
export const EVENT_TYPES = [
  'BID_REQUEST',
  'BID_OUTBID',
  'AUCTION_RESULT',
  'CONDITIONAL_BID_APPLIED',
  'CONDITIONAL_BID_STATUS_CHANGE',
  'CONDITIONAL_BID_EXPIRING_SOON',
  'INSTANT_CASH_OFFER_STATUS_CHANGE',
  'TRANSFER_CONFIRMATION_RECEIVED',
  'PAYMENT_CHARGED',
  'PAYMENT_FAILED',
  'PAYMENT_SETTLED',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const ASSET_BLOCK_KEYS = ['asset_type', 'external_ids', 'asset_details', 'config_details', 'item_details'] as const;

function assetBlock(): Record<string, unknown> {
  return {
    asset_type: 'TICKET',
    external_ids: { SEATGEEK: '17346315', TICKETMASTER: 'vvG1YZ4bJalaRJ' },
    asset_details: {
      id: '3b9a0f8e-b6c8-4f79-89a5-2ed522bf9740',
      event_name: 'Taylor Swift - The Eras Tour',
      venue_name: 'MetLife Stadium',
      event_date_utc: '2025-06-15T19:30:00Z',
      event_date_local: '2025-06-15T15:30:00',
    },
    config_details: { id: '741335d5-c78c-414c-9f46-5b3577beea5f', event_type: 'PRIMARY' },
    item_details: {
      key_id: 'a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d',
      key_ids: ['a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d'],
      fair_values: [],
      section: 'Floor 2',
      row: '12',
      seat_numbers: ['1', '2'],
      quantity: 2,
      ticket_type: 'MOBILE',
    },
  };
}

const CONV = '550e8400-e29b-41d4-a716-446655440000';

/** Top-level required fields of each type (EVENTS.md "required" column; asset block expanded). */
export const REQUIRED_FIELDS: Record<EventType, readonly string[]> = {
  BID_REQUEST: ['conversation_id', 'reference_type', 'reference_id', ...ASSET_BLOCK_KEYS],
  BID_OUTBID: ['conversation_id', 'bid_id', ...ASSET_BLOCK_KEYS],
  AUCTION_RESULT: ['conversation_id', 'is_winner', ...ASSET_BLOCK_KEYS],
  CONDITIONAL_BID_APPLIED: ['conditional_bid_id', 'conversation_id', 'bid_id', 'bid_amount_cents', 'quantity', ...ASSET_BLOCK_KEYS],
  CONDITIONAL_BID_STATUS_CHANGE: ['conditional_bid_id', 'status'],
  CONDITIONAL_BID_EXPIRING_SOON: ['conditional_bid_id', 'expires_at'],
  INSTANT_CASH_OFFER_STATUS_CHANGE: ['conversation_id', 'reference_type', 'reference_id', 'status', ...ASSET_BLOCK_KEYS],
  TRANSFER_CONFIRMATION_RECEIVED: ['conversation_id', 'transfer_id', ...ASSET_BLOCK_KEYS],
  PAYMENT_CHARGED: ['conversation_id', 'payment_id', 'amount_cents', ...ASSET_BLOCK_KEYS],
  PAYMENT_FAILED: ['conversation_id', 'payment_id', 'failure_code', 'failure_reason'],
  PAYMENT_SETTLED: ['conversation_id', 'payment_id', 'total_charged_cents'],
};

export function requiredFields(type: EventType): readonly string[] {
  return REQUIRED_FIELDS[type];
}

/** A fresh, valid payload for `type` (a new object each call; safe to mutate). */
export function samplePayload(type: EventType): Record<string, unknown> {
  switch (type) {
    case 'BID_REQUEST':
      return {
        conversation_id: CONV,
        reference_type: 'INSTANT_CASH_OFFER',
        reference_id: 'ico_456',
        expires_at: '2025-06-15T19:35:00Z',
        ...assetBlock(),
      };
    case 'BID_OUTBID':
      return { conversation_id: CONV, bid_id: 'bid_1', conditional_bid_id: null, bid_amount_cents: 12500, ...assetBlock() };
    case 'AUCTION_RESULT':
      return { conversation_id: CONV, is_winner: true, bid_id: 'bid_1', bid_amount_cents: 12500, quantity: 2, ...assetBlock() };
    case 'CONDITIONAL_BID_APPLIED':
      return {
        conditional_bid_id: 'cb_1',
        conversation_id: CONV,
        bid_id: 'bid_2',
        bid_amount_cents: 9900,
        quantity: 1,
        current_filled_quantity: 1,
        max_filled_quantity: 4,
        ...assetBlock(),
      };
    case 'CONDITIONAL_BID_STATUS_CHANGE':
      return { conditional_bid_id: 'cb_1', status: 'FILLED', previous_status: 'PARTIALLY_FILLED', is_active: false };
    case 'CONDITIONAL_BID_EXPIRING_SOON':
      return { conditional_bid_id: 'cb_1', expires_at: '2025-06-16T00:00:00Z', status: 'NOT_FILLED' };
    case 'INSTANT_CASH_OFFER_STATUS_CHANGE':
      return {
        conversation_id: CONV,
        reference_type: 'INSTANT_CASH_OFFER',
        reference_id: 'ico_456',
        status: 'ACCEPTED',
        previous_status: 'PENDING',
        ...assetBlock(),
      };
    case 'TRANSFER_CONFIRMATION_RECEIVED':
      return { conversation_id: CONV, transfer_id: 'tr_1', transfer_method: 'DIGITAL', quantity: 2, ...assetBlock() };
    case 'PAYMENT_CHARGED':
      return { conversation_id: CONV, payment_id: 'pay_1', amount_cents: 25000, payment_rail: 'CARD', payment_strategy: 'ON_ACCEPTANCE', ...assetBlock() };
    case 'PAYMENT_FAILED':
      return { conversation_id: CONV, payment_id: 'pay_1', failure_code: 'card_declined', failure_reason: 'Card declined', amount_cents: 25000 };
    case 'PAYMENT_SETTLED':
      return {
        conversation_id: CONV,
        payment_id: 'pay_1',
        total_charged_cents: 25000,
        bid_amount_cents: 24000,
        platform_fee_cents: 500,
        processing_fee_cents: 500,
        seller_payout_cents: 23000,
      };
  }
}

/** A publish body for `type` addressed to `accountIds` (or broadcast when `accountIds` is 'broadcast'). */
export function eventBody(
  type: EventType,
  accountIds: string[] | 'broadcast',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const base: Record<string, unknown> = { msg_type: type, payload: samplePayload(type), ...extra };
  if (accountIds === 'broadcast') base.broadcast = true;
  else base.account_ids = accountIds;
  return base;
}
