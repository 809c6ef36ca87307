/**
 * Schemas of the 11 event payloads (EVENTS.md) and the validator the publish API runs on
 * every published event. Pure (zod only, no I/O): shared with the browser SDK.
 *
 * Rules (EVENTS.md "Validation by the publish API"):
 * - required fields must be present with the stated types;
 * - optional fields are typed when present (`null` only where EVENTS.md says "string or null");
 * - enumerations listed as "known values" are checked, an unknown value is rejected;
 * - fields not listed pass through unchanged (every object schema is a `looseObject`, and
 *   `validateEventPayload` returns the caller's own object, never a re-built copy);
 * - money (`*_cents`) and quantities are non-negative integers (`item_details.quantity` ≥ 1);
 * - time fields are ISO-8601 date-times with an offset (`Z`, `+02:00` or `+0200`), seconds
 *   optional; `asset_details.event_date_local` is a local wall-clock time, so no offset is
 *   enforced there.
 *
 * Decisions where EVENTS.md is silent (documented here on purpose):
 * - required id strings must be non-empty;
 * - `conditional_bid_id` accepts `null` wherever it is optional (BID_OUTBID says so; on
 *   AUCTION_RESULT a non-conditional win carries no conditional bid either);
 * - `reference_type` of INSTANT_CASH_OFFER_STATUS_CHANGE uses the same known values as
 *   BID_REQUEST's (`INSTANT_CASH_OFFER`);
 * - the asset sub-objects accept the union of the TICKET and SEALED_TCG fields, each typed when
 *   present, regardless of `asset_type` (a mismatch is not an error: the platform owns it).
 */
import { z } from 'zod';
import type { EventType } from './constants.js';
import { EVENT_TYPES } from './constants.js';

// ---------------------------------------------------------------------------------------------
// Known values
// ---------------------------------------------------------------------------------------------

export const ASSET_TYPES = ['TICKET', 'SEALED_TCG'] as const;
export type AssetType = (typeof ASSET_TYPES)[number];
export const REFERENCE_TYPES = ['INSTANT_CASH_OFFER'] as const;
export type ReferenceType = (typeof REFERENCE_TYPES)[number];
export const TICKET_EVENT_TYPES = ['PRIMARY', 'PARKING', 'SUITE', 'CLUB_PASSES'] as const;
export type TicketEventType = (typeof TICKET_EVENT_TYPES)[number];
export const ITEM_CONDITIONS = ['UNOPENED', 'OPENED'] as const;
export type ItemCondition = (typeof ITEM_CONDITIONS)[number];
export const CONDITIONAL_BID_STATUSES = [
  'NOT_FILLED',
  'PARTIALLY_FILLED',
  'FILLED',
  'CANCELLED',
  'EXPIRED',
  'ON_HOLD',
  'DELETED',
] as const;
export type ConditionalBidStatus = (typeof CONDITIONAL_BID_STATUSES)[number];
export const INSTANT_CASH_OFFER_STATUSES = ['PENDING', 'ACCEPTED', 'DECLINED', 'EXPIRED', 'CANCELLED', 'COMPLETED'] as const;
export type InstantCashOfferStatus = (typeof INSTANT_CASH_OFFER_STATUSES)[number];
export const TRANSFER_METHODS = ['DIGITAL', 'PHYSICAL', 'IN_PERSON'] as const;
export type TransferMethod = (typeof TRANSFER_METHODS)[number];
export const PAYMENT_RAILS = ['CARD', 'ACH', 'WIRE', 'TRADEPOST_BALANCE', 'CRYPTO'] as const;
export type PaymentRail = (typeof PAYMENT_RAILS)[number];
export const PAYMENT_STRATEGIES = ['ON_ACCEPTANCE', 'IN_TRANSIT', 'ON_CONFIRMATION'] as const;
export type PaymentStrategy = (typeof PAYMENT_STRATEGIES)[number];

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/** ISO-8601 date-time with offset; seconds and fraction optional; offset `Z`, `±hh:mm`, `±hhmm`, `±hh`. */
export const ISO_DATETIME_OFFSET_RE =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?(?:Z|z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)$/;

const id = () => z.string().min(1, { error: 'must be a non-empty string' });
const str = () => z.string();
const cents = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const qty = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const isoTime = () =>
  z.string().regex(ISO_DATETIME_OFFSET_RE, { error: 'must be an ISO-8601 date-time with offset, e.g. 2025-06-15T19:30:00Z' });
const strList = () => z.array(z.string());
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

export const AssetTypeSchema = oneOf(ASSET_TYPES);
export const ReferenceTypeSchema = oneOf(REFERENCE_TYPES);
export const ConditionalBidStatusSchema = oneOf(CONDITIONAL_BID_STATUSES);
export const InstantCashOfferStatusSchema = oneOf(INSTANT_CASH_OFFER_STATUSES);
export const TransferMethodSchema = oneOf(TRANSFER_METHODS);
export const PaymentRailSchema = oneOf(PAYMENT_RAILS);
export const PaymentStrategySchema = oneOf(PAYMENT_STRATEGIES);

/** Platform ids, e.g. `{ "SEATGEEK": "17346315", "TCGPLAYER": "…" }`. */
export const ExternalIdsSchema = z.record(z.string(), z.string());

export const AssetDetailsSchema = z.looseObject({
  id: id(),
  // TICKET
  event_name: str().optional(),
  venue_name: str().optional(),
  venue_city: str().optional(),
  venue_state: str().optional(),
  venue_country: str().optional(),
  event_date_utc: isoTime().optional(),
  event_date_local: str().optional(),
  subject_names: strList().optional(),
  primary_category: str().optional(),
  categories: strList().optional(),
  // SEALED_TCG
  name: str().optional(),
  set_name: str().optional(),
  game: str().optional(),
});

export const ConfigDetailsSchema = z.looseObject({
  id: id(),
  // TICKET
  event_type: oneOf(TICKET_EVENT_TYPES).optional(),
  event_name: str().optional(),
  event_date_utc: isoTime().optional(),
  event_date_local: str().optional(),
  // SEALED_TCG
  name: str().optional(),
  product_type: str().optional(),
});

const itemDetailsShape = {
  key_id: str().optional(),
  key_ids: strList().optional(),
  fair_values: z.array(z.unknown()).optional(),
  // TICKET
  section: str().optional(),
  row: str().optional(),
  seat_numbers: strList().optional(),
  ticket_type: str().optional(),
  // SEALED_TCG
  condition: oneOf(ITEM_CONDITIONS).optional(),
};
const itemQuantity = () => z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const ItemDetailsSchema = z.looseObject({ ...itemDetailsShape, quantity: itemQuantity().optional() });
/** BID_REQUEST: `item_details.quantity` is required. */
export const ItemDetailsWithQuantitySchema = z.looseObject({ ...itemDetailsShape, quantity: itemQuantity() });

const assetBlock = {
  asset_type: AssetTypeSchema,
  external_ids: ExternalIdsSchema,
  asset_details: AssetDetailsSchema,
  config_details: ConfigDetailsSchema,
  item_details: ItemDetailsSchema,
};
const optionalAssetBlock = {
  asset_type: AssetTypeSchema.optional(),
  external_ids: ExternalIdsSchema.optional(),
  asset_details: AssetDetailsSchema.optional(),
  config_details: ConfigDetailsSchema.optional(),
  item_details: ItemDetailsSchema.optional(),
};

// ---------------------------------------------------------------------------------------------
// The 11 payloads
// ---------------------------------------------------------------------------------------------

export const BidRequestPayloadSchema = z.looseObject({
  conversation_id: id(),
  reference_type: ReferenceTypeSchema,
  reference_id: id(),
  ...assetBlock,
  item_details: ItemDetailsWithQuantitySchema,
  expires_at: isoTime().optional(),
});

export const BidOutbidPayloadSchema = z.looseObject({
  conversation_id: id(),
  bid_id: id(),
  ...assetBlock,
  conditional_bid_id: str().nullable().optional(),
  bid_amount_cents: cents().optional(),
  external_reference_id: str().optional(),
});

export const AuctionResultPayloadSchema = z.looseObject({
  conversation_id: id(),
  is_winner: z.boolean(),
  ...assetBlock,
  bid_id: str().optional(),
  conditional_bid_id: str().nullable().optional(),
  bid_amount_cents: cents().optional(),
  quantity: qty().optional(),
  external_reference_id: str().optional(),
});

export const ConditionalBidAppliedPayloadSchema = z.looseObject({
  conditional_bid_id: id(),
  conversation_id: id(),
  bid_id: id(),
  bid_amount_cents: cents(),
  quantity: qty(),
  ...assetBlock,
  all_in_price_cents: cents().optional(),
  key_id: str().optional(),
  external_reference_id: str().optional(),
  current_filled_quantity: qty().optional(),
  max_filled_quantity: qty().optional(),
});

export const ConditionalBidStatusChangePayloadSchema = z.looseObject({
  conditional_bid_id: id(),
  status: ConditionalBidStatusSchema,
  previous_status: ConditionalBidStatusSchema.optional(),
  is_active: z.boolean().optional(),
  current_filled_quantity: qty().optional(),
  max_filled_quantity: qty().optional(),
  external_reference_id: str().optional(),
  asset_type: AssetTypeSchema.optional(),
  reason: str().optional(),
});

export const ConditionalBidExpiringSoonPayloadSchema = z.looseObject({
  conditional_bid_id: id(),
  expires_at: isoTime(),
  status: ConditionalBidStatusSchema.optional(),
  current_filled_quantity: qty().optional(),
  max_filled_quantity: qty().optional(),
  external_reference_id: str().optional(),
  asset_type: AssetTypeSchema.optional(),
});

export const InstantCashOfferStatusChangePayloadSchema = z.looseObject({
  conversation_id: id(),
  reference_type: ReferenceTypeSchema,
  reference_id: id(),
  status: InstantCashOfferStatusSchema,
  ...assetBlock,
  previous_status: InstantCashOfferStatusSchema.optional(),
  external_reference_id: str().optional(),
  bid_id: str().optional(),
  bid_amount_cents: cents().optional(),
  quantity: qty().optional(),
});

export const TransferConfirmationReceivedPayloadSchema = z.looseObject({
  conversation_id: id(),
  transfer_id: id(),
  ...assetBlock,
  transfer_method: TransferMethodSchema.optional(),
  quantity: qty().optional(),
  confirmed_at: isoTime().optional(),
});

export const PaymentChargedPayloadSchema = z.looseObject({
  conversation_id: id(),
  payment_id: id(),
  amount_cents: cents(),
  ...assetBlock,
  payment_rail: PaymentRailSchema.optional(),
  payment_strategy: PaymentStrategySchema.optional(),
  charged_at: isoTime().optional(),
});

export const PaymentFailedPayloadSchema = z.looseObject({
  conversation_id: id(),
  payment_id: id(),
  failure_code: id(),
  failure_reason: str(),
  amount_cents: cents().optional(),
  payment_rail: PaymentRailSchema.optional(),
  ...optionalAssetBlock,
});

export const PaymentSettledPayloadSchema = z.looseObject({
  conversation_id: id(),
  payment_id: id(),
  total_charged_cents: cents(),
  bid_amount_cents: cents().optional(),
  platform_fee_cents: cents().optional(),
  processing_fee_cents: cents().optional(),
  seller_payout_cents: cents().optional(),
  settled_at: isoTime().optional(),
  ...optionalAssetBlock,
});

// ---------------------------------------------------------------------------------------------
// TypeScript types: the fields EVENTS.md lists, and only those
// ---------------------------------------------------------------------------------------------

/**
 * `T` without the `[key: string]: unknown` index signatures zod adds to loose objects, at every
 * depth. The schemas let unlisted fields pass through at run time (EVENTS.md), but the types
 * declare only the listed fields, so a typo such as `payload.conversation_idd` does not compile.
 * Index signatures with a real value type (`external_ids: Record<string, string>`) are kept.
 * Read an unlisted field through the explicit escape hatch `loose(payload).field` (`unknown`).
 */
export type Known<T> = T extends readonly (infer U)[]
  ? Known<U>[]
  : T extends object
    ? { [K in keyof T as string extends K ? (unknown extends T[K] ? never : K) : number extends K ? never : K]: Known<T[K]> }
    : T;

export type ExternalIds = z.infer<typeof ExternalIdsSchema>;
export type AssetDetails = Known<z.infer<typeof AssetDetailsSchema>>;
export type ConfigDetails = Known<z.infer<typeof ConfigDetailsSchema>>;
export type ItemDetails = Known<z.infer<typeof ItemDetailsSchema>>;

export type BidRequestPayload = Known<z.infer<typeof BidRequestPayloadSchema>>;
export type BidOutbidPayload = Known<z.infer<typeof BidOutbidPayloadSchema>>;
export type AuctionResultPayload = Known<z.infer<typeof AuctionResultPayloadSchema>>;
export type ConditionalBidAppliedPayload = Known<z.infer<typeof ConditionalBidAppliedPayloadSchema>>;
export type ConditionalBidStatusChangePayload = Known<z.infer<typeof ConditionalBidStatusChangePayloadSchema>>;
export type ConditionalBidExpiringSoonPayload = Known<z.infer<typeof ConditionalBidExpiringSoonPayloadSchema>>;
export type InstantCashOfferStatusChangePayload = Known<z.infer<typeof InstantCashOfferStatusChangePayloadSchema>>;
export type TransferConfirmationReceivedPayload = Known<z.infer<typeof TransferConfirmationReceivedPayloadSchema>>;
export type PaymentChargedPayload = Known<z.infer<typeof PaymentChargedPayloadSchema>>;
export type PaymentFailedPayload = Known<z.infer<typeof PaymentFailedPayloadSchema>>;
export type PaymentSettledPayload = Known<z.infer<typeof PaymentSettledPayloadSchema>>;

/** Payload type of each event type. */
export interface EventPayloadMap {
  BID_REQUEST: BidRequestPayload;
  BID_OUTBID: BidOutbidPayload;
  AUCTION_RESULT: AuctionResultPayload;
  CONDITIONAL_BID_APPLIED: ConditionalBidAppliedPayload;
  CONDITIONAL_BID_STATUS_CHANGE: ConditionalBidStatusChangePayload;
  CONDITIONAL_BID_EXPIRING_SOON: ConditionalBidExpiringSoonPayload;
  INSTANT_CASH_OFFER_STATUS_CHANGE: InstantCashOfferStatusChangePayload;
  TRANSFER_CONFIRMATION_RECEIVED: TransferConfirmationReceivedPayload;
  PAYMENT_CHARGED: PaymentChargedPayload;
  PAYMENT_FAILED: PaymentFailedPayload;
  PAYMENT_SETTLED: PaymentSettledPayload;
}
export type AnyEventPayload = EventPayloadMap[EventType];

/** Schema of each event type's payload. */
export const EVENT_PAYLOAD_SCHEMAS = {
  BID_REQUEST: BidRequestPayloadSchema,
  BID_OUTBID: BidOutbidPayloadSchema,
  AUCTION_RESULT: AuctionResultPayloadSchema,
  CONDITIONAL_BID_APPLIED: ConditionalBidAppliedPayloadSchema,
  CONDITIONAL_BID_STATUS_CHANGE: ConditionalBidStatusChangePayloadSchema,
  CONDITIONAL_BID_EXPIRING_SOON: ConditionalBidExpiringSoonPayloadSchema,
  INSTANT_CASH_OFFER_STATUS_CHANGE: InstantCashOfferStatusChangePayloadSchema,
  TRANSFER_CONFIRMATION_RECEIVED: TransferConfirmationReceivedPayloadSchema,
  PAYMENT_CHARGED: PaymentChargedPayloadSchema,
  PAYMENT_FAILED: PaymentFailedPayloadSchema,
  PAYMENT_SETTLED: PaymentSettledPayloadSchema,
} as const satisfies Record<EventType, z.ZodType>;

/** Top-level required fields of each payload, in declaration order (derived from the schemas). */
export const EVENT_REQUIRED_FIELDS: Readonly<Record<EventType, readonly string[]>> = Object.freeze(
  Object.fromEntries(
    EVENT_TYPES.map((type) => {
      const shape = EVENT_PAYLOAD_SCHEMAS[type].shape as Record<string, z.ZodType>;
      const required = Object.keys(shape).filter((key) => shape[key]!._zod.optin !== 'optional');
      return [type, Object.freeze(required)];
    }),
  ) as Record<EventType, readonly string[]>,
);

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

export interface PayloadFieldError {
  /** Dotted path prefixed with `payload.`, e.g. `payload.item_details.quantity`. */
  field: string;
  message: string;
}
export type ValidatePayloadResult =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; errors: PayloadFieldError[] };

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && !Number.isInteger(value)) return 'non-integer number';
  return typeof value;
}

function issueMessage(issue: z.core.$ZodIssue, root: unknown): string {
  const value = valueAt(root, issue.path);
  if (value === undefined && issue.path.length > 0) return 'is required';
  if (issue.code === 'invalid_type') {
    const expected = issue.expected === 'int' ? 'integer' : issue.expected;
    return `must be ${/^[aeiou]/.test(expected) ? 'an' : 'a'} ${expected} (received ${describe(value)})`;
  }
  if (issue.code === 'too_small') {
    if (issue.origin === 'string') return 'must be a non-empty string';
    return `must be >= ${String(issue.minimum)}`;
  }
  if (issue.code === 'too_big') return `must be <= ${String(issue.maximum)}`;
  return issue.message;
}

/**
 * Validate an event payload against its type's schema. On success the caller's object is
 * returned as is (unlisted fields and key order preserved). On failure every failing field is
 * reported once, with its dotted path (`payload.item_details.quantity`).
 */
export function validateEventPayload(type: EventType, payload: unknown): ValidatePayloadResult {
  const schema = EVENT_PAYLOAD_SCHEMAS[type] as z.ZodType | undefined;
  if (!schema) return { ok: false, errors: [{ field: 'msg_type', message: `unknown event type: ${String(type).slice(0, 64)}` }] };
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, errors: [{ field: 'payload', message: `must be an object (received ${describe(payload)})` }] };
  }
  const result = schema.safeParse(payload);
  if (result.success) return { ok: true, payload: payload as Record<string, unknown> };
  const errors: PayloadFieldError[] = [];
  const seen = new Set<string>();
  for (const issue of result.error.issues) {
    const field = issue.path.length ? `payload.${issue.path.map(String).join('.')}` : 'payload';
    if (seen.has(field)) continue;
    seen.add(field);
    errors.push({ field, message: issueMessage(issue, payload) });
  }
  return { ok: false, errors };
}

/** Typed guard variant for SDK consumers: narrows `payload` to the event's payload type. */
export function isValidEventPayload<T extends EventType>(type: T, payload: unknown): payload is EventPayloadMap[T] {
  return validateEventPayload(type, payload).ok;
}
