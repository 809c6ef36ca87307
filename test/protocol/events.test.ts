import { describe, expect, it } from 'vitest';
import {
  EVENT_PAYLOAD_SCHEMAS,
  EVENT_TYPES,
  type EventType,
  ISO_DATETIME_OFFSET_RE,
  isValidEventPayload,
  loose,
  requiredFields,
  samplePayload,
  validateEventPayload,
} from '@tpx-realtime/protocol';

const ASSET_BLOCK = ['asset_type', 'external_ids', 'asset_details', 'config_details', 'item_details'];
const VARIANTS = ['TICKET', 'SEALED_TCG'] as const;

function fieldsOf(result: ReturnType<typeof validateEventPayload>): string[] {
  return result.ok ? [] : result.errors.map((e) => e.field);
}

describe('samples', () => {
  for (const type of EVENT_TYPES) {
    for (const assetType of VARIANTS) {
      it(`${type} ${assetType} sample validates`, () => {
        const payload = samplePayload(type, { assetType });
        const result = validateEventPayload(type, payload);
        expect(result).toEqual({ ok: true, payload });
      });
    }
  }

  it('the SEALED_TCG variant really is sealed TCG', () => {
    const p = samplePayload('BID_REQUEST', { assetType: 'SEALED_TCG' });
    expect(p.asset_type).toBe('SEALED_TCG');
    expect(p.item_details.condition).toBe('UNOPENED');
    expect(samplePayload('BID_REQUEST').asset_type).toBe('TICKET');
  });

  it('applies field overrides, conversationId and randomIds', () => {
    const a = samplePayload('BID_OUTBID', { bid_amount_cents: 12_345, conversationId: 'conv-1' });
    expect(a.bid_amount_cents).toBe(12_345);
    expect(a.conversation_id).toBe('conv-1');
    const b = samplePayload('BID_OUTBID', { fields: { extra: 1, external_reference_id: undefined } });
    expect(loose(b).extra).toBe(1);
    expect('external_reference_id' in b).toBe(false);
    const r1 = samplePayload('PAYMENT_CHARGED', { randomIds: true });
    const r2 = samplePayload('PAYMENT_CHARGED', { randomIds: true });
    expect(r1.payment_id).not.toBe(r2.payment_id);
    expect(validateEventPayload('PAYMENT_CHARGED', r1).ok).toBe(true);
  });

  it('times are relative to now: a BID_REQUEST sample expires 5 minutes ahead, never in the past', () => {
    const before = Date.now();
    const p = samplePayload('BID_REQUEST');
    const expires = Date.parse(p.expires_at!);
    expect(expires).toBeGreaterThan(before + 4 * 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 5 * 60_000);
    expect(Date.parse(p.asset_details.event_date_utc!)).toBeGreaterThan(before + 29 * 86_400_000);
    expect(Date.parse(samplePayload('CONDITIONAL_BID_EXPIRING_SOON').expires_at)).toBeGreaterThan(before);
  });

  it('with a fixed now, sample times are deterministic and consistent', () => {
    const now = Date.parse('2030-01-10T08:00:00.500Z');
    const p = samplePayload('BID_REQUEST', { now });
    expect(p.expires_at).toBe('2030-01-10T08:05:00Z');
    expect(p.asset_details.event_date_utc).toBe('2030-02-09T23:30:00Z');
    expect(p.asset_details.event_date_local).toBe('2030-02-09T19:30:00');
    expect(p.config_details.event_date_utc).toBe(p.asset_details.event_date_utc);
    expect(samplePayload('PAYMENT_SETTLED', { now: new Date(now) }).settled_at).toBe('2030-01-10T08:00:00Z');
    expect(samplePayload('BID_REQUEST', { now })).toEqual(p);
  });

  it('returns a fresh object every call', () => {
    const a = samplePayload('BID_REQUEST');
    a.item_details.quantity = 99;
    expect(samplePayload('BID_REQUEST').item_details.quantity).toBe(2);
  });

  it('EVENTS.md examples validate', () => {
    expect(validateEventPayload('CONDITIONAL_BID_STATUS_CHANGE', { conditional_bid_id: 'cb_1', status: 'FILLED' }).ok).toBe(true);
  });
});

describe('required fields', () => {
  const expected: Record<EventType, string[]> = {
    BID_REQUEST: ['conversation_id', 'reference_type', 'reference_id', ...ASSET_BLOCK],
    BID_OUTBID: ['conversation_id', 'bid_id', ...ASSET_BLOCK],
    AUCTION_RESULT: ['conversation_id', 'is_winner', ...ASSET_BLOCK],
    CONDITIONAL_BID_APPLIED: ['conditional_bid_id', 'conversation_id', 'bid_id', 'bid_amount_cents', 'quantity', ...ASSET_BLOCK],
    CONDITIONAL_BID_STATUS_CHANGE: ['conditional_bid_id', 'status'],
    CONDITIONAL_BID_EXPIRING_SOON: ['conditional_bid_id', 'expires_at'],
    INSTANT_CASH_OFFER_STATUS_CHANGE: ['conversation_id', 'reference_type', 'reference_id', 'status', ...ASSET_BLOCK],
    TRANSFER_CONFIRMATION_RECEIVED: ['conversation_id', 'transfer_id', ...ASSET_BLOCK],
    PAYMENT_CHARGED: ['conversation_id', 'payment_id', 'amount_cents', ...ASSET_BLOCK],
    PAYMENT_FAILED: ['conversation_id', 'payment_id', 'failure_code', 'failure_reason'],
    PAYMENT_SETTLED: ['conversation_id', 'payment_id', 'total_charged_cents'],
  };

  for (const type of EVENT_TYPES) {
    it(`${type}: requiredFields matches EVENTS.md`, () => {
      expect(requiredFields(type).sort()).toEqual([...expected[type]].sort());
    });

    it(`${type}: removing each required field fails naming exactly that field`, () => {
      for (const field of requiredFields(type)) {
        const payload: Record<string, unknown> = samplePayload(type);
        delete payload[field];
        const result = validateEventPayload(type, payload);
        expect(result.ok, field).toBe(false);
        expect(fieldsOf(result), field).toEqual([`payload.${field}`]);
        if (!result.ok) expect(result.errors[0]!.message).toBe('is required');
      }
    });

    it(`${type}: a payload with only the required fields validates`, () => {
      const full: Record<string, unknown> = samplePayload(type);
      const minimal = Object.fromEntries(requiredFields(type).map((f) => [f, full[f]]));
      expect(validateEventPayload(type, minimal).ok).toBe(true);
    });
  }

  it('BID_REQUEST requires item_details.quantity (int >= 1)', () => {
    const p = samplePayload('BID_REQUEST');
    delete (p.item_details as Record<string, unknown>).quantity;
    expect(fieldsOf(validateEventPayload('BID_REQUEST', p))).toEqual(['payload.item_details.quantity']);
    for (const bad of [0, -1, 1.5, '2']) {
      const q = samplePayload('BID_REQUEST');
      (q.item_details as Record<string, unknown>).quantity = bad;
      expect(fieldsOf(validateEventPayload('BID_REQUEST', q)), String(bad)).toEqual(['payload.item_details.quantity']);
    }
  });

  it('item_details.quantity is optional for other item-level events', () => {
    const p = samplePayload('BID_OUTBID');
    delete (p.item_details as Record<string, unknown>).quantity;
    expect(validateEventPayload('BID_OUTBID', p).ok).toBe(true);
  });

  it('asset_details.id and config_details.id are required strings', () => {
    const p = samplePayload('PAYMENT_CHARGED');
    delete (p.asset_details as Record<string, unknown>).id;
    (p.config_details as Record<string, unknown>).id = 42;
    expect(fieldsOf(validateEventPayload('PAYMENT_CHARGED', p))).toEqual(['payload.asset_details.id', 'payload.config_details.id']);
  });

  it('optional asset block, when present, is typed', () => {
    const p = samplePayload('PAYMENT_FAILED');
    for (const k of ASSET_BLOCK) delete (p as Record<string, unknown>)[k];
    expect(validateEventPayload('PAYMENT_FAILED', p).ok).toBe(true);
    expect(fieldsOf(validateEventPayload('PAYMENT_SETTLED', { ...samplePayload('PAYMENT_SETTLED'), asset_type: 'CAR' }))).toEqual([
      'payload.asset_type',
    ]);
  });
});

describe('types and enums', () => {
  const wrongType: [EventType, string, unknown][] = [
    ['BID_REQUEST', 'conversation_id', 123],
    ['BID_REQUEST', 'external_ids', 'SEATGEEK'],
    ['BID_REQUEST', 'asset_details', null],
    ['BID_REQUEST', 'expires_at', 1718479800],
    ['AUCTION_RESULT', 'is_winner', 'true'],
    ['AUCTION_RESULT', 'quantity', 2.5],
    ['BID_OUTBID', 'bid_amount_cents', '41500'],
    ['BID_OUTBID', 'bid_amount_cents', -1],
    ['BID_OUTBID', 'bid_amount_cents', 415.5],
    ['CONDITIONAL_BID_APPLIED', 'quantity', -2],
    ['CONDITIONAL_BID_STATUS_CHANGE', 'is_active', 1],
    ['CONDITIONAL_BID_EXPIRING_SOON', 'expires_at', 'tomorrow'],
    ['CONDITIONAL_BID_EXPIRING_SOON', 'expires_at', '2025-06-15T19:30:00'],
    ['PAYMENT_CHARGED', 'amount_cents', null],
    ['PAYMENT_FAILED', 'failure_reason', 7],
    ['PAYMENT_SETTLED', 'settled_at', '2025-06-15'],
    ['PAYMENT_SETTLED', 'seller_payout_cents', Number.MAX_SAFE_INTEGER + 2],
    ['BID_OUTBID', 'external_reference_id', null],
  ];
  for (const [type, field, value] of wrongType) {
    it(`${type}.${field} = ${JSON.stringify(value)} is rejected naming the field`, () => {
      const result = validateEventPayload(type, { ...samplePayload(type), [field]: value });
      expect(fieldsOf(result)).toEqual([`payload.${field}`]);
    });
  }

  const unknownEnum: [EventType, string][] = [
    ['BID_REQUEST', 'reference_type'],
    ['BID_REQUEST', 'asset_type'],
    ['CONDITIONAL_BID_STATUS_CHANGE', 'status'],
    ['CONDITIONAL_BID_STATUS_CHANGE', 'previous_status'],
    ['CONDITIONAL_BID_EXPIRING_SOON', 'status'],
    ['INSTANT_CASH_OFFER_STATUS_CHANGE', 'status'],
    ['INSTANT_CASH_OFFER_STATUS_CHANGE', 'previous_status'],
    ['TRANSFER_CONFIRMATION_RECEIVED', 'transfer_method'],
    ['PAYMENT_CHARGED', 'payment_rail'],
    ['PAYMENT_CHARGED', 'payment_strategy'],
    ['PAYMENT_FAILED', 'payment_rail'],
  ];
  for (const [type, field] of unknownEnum) {
    it(`${type}.${field}: unknown enum value is rejected naming the field`, () => {
      const result = validateEventPayload(type, { ...samplePayload(type), [field]: 'NOT_A_KNOWN_VALUE' });
      expect(fieldsOf(result)).toEqual([`payload.${field}`]);
      if (!result.ok) expect(result.errors[0]!.message).toMatch(/must be one of/);
    });
  }

  it('status enums are not interchangeable', () => {
    expect(fieldsOf(validateEventPayload('CONDITIONAL_BID_STATUS_CHANGE', { conditional_bid_id: 'x', status: 'ACCEPTED' }))).toEqual([
      'payload.status',
    ]);
    expect(validateEventPayload('INSTANT_CASH_OFFER_STATUS_CHANGE', { ...samplePayload('INSTANT_CASH_OFFER_STATUS_CHANGE'), status: 'FILLED' }).ok).toBe(false);
  });

  it('nested enums: config_details.event_type and item_details.condition', () => {
    const t = samplePayload('BID_REQUEST');
    (t.config_details as Record<string, unknown>).event_type = 'CONCERT';
    expect(fieldsOf(validateEventPayload('BID_REQUEST', t))).toEqual(['payload.config_details.event_type']);
    const s = samplePayload('BID_REQUEST', { assetType: 'SEALED_TCG' });
    (s.item_details as Record<string, unknown>).condition = 'USED';
    expect(fieldsOf(validateEventPayload('BID_REQUEST', s))).toEqual(['payload.item_details.condition']);
  });

  it('all enum values listed in EVENTS.md are accepted', () => {
    for (const status of ['NOT_FILLED', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'EXPIRED', 'ON_HOLD', 'DELETED']) {
      expect(validateEventPayload('CONDITIONAL_BID_STATUS_CHANGE', { conditional_bid_id: 'c', status, previous_status: status }).ok).toBe(true);
    }
    for (const status of ['PENDING', 'ACCEPTED', 'DECLINED', 'EXPIRED', 'CANCELLED', 'COMPLETED']) {
      expect(validateEventPayload('INSTANT_CASH_OFFER_STATUS_CHANGE', { ...samplePayload('INSTANT_CASH_OFFER_STATUS_CHANGE'), status }).ok).toBe(true);
    }
    for (const payment_rail of ['CARD', 'ACH', 'WIRE', 'TRADEPOST_BALANCE', 'CRYPTO']) {
      for (const payment_strategy of ['ON_ACCEPTANCE', 'IN_TRANSIT', 'ON_CONFIRMATION']) {
        expect(validateEventPayload('PAYMENT_CHARGED', { ...samplePayload('PAYMENT_CHARGED'), payment_rail, payment_strategy }).ok).toBe(true);
      }
    }
    for (const transfer_method of ['DIGITAL', 'PHYSICAL', 'IN_PERSON']) {
      expect(validateEventPayload('TRANSFER_CONFIRMATION_RECEIVED', { ...samplePayload('TRANSFER_CONFIRMATION_RECEIVED'), transfer_method }).ok).toBe(true);
    }
    for (const event_type of ['PRIMARY', 'PARKING', 'SUITE', 'CLUB_PASSES']) {
      const p = samplePayload('BID_REQUEST');
      (p.config_details as Record<string, unknown>).event_type = event_type;
      expect(validateEventPayload('BID_REQUEST', p).ok).toBe(true);
    }
  });

  it('conditional_bid_id may be a string or null', () => {
    for (const v of ['cb_1', null]) {
      expect(validateEventPayload('BID_OUTBID', { ...samplePayload('BID_OUTBID'), conditional_bid_id: v }).ok).toBe(true);
    }
    expect(fieldsOf(validateEventPayload('BID_OUTBID', { ...samplePayload('BID_OUTBID'), conditional_bid_id: 5 }))).toEqual([
      'payload.conditional_bid_id',
    ]);
  });

  it('time fields accept ISO-8601 with Z or an offset; event_date_local has none', () => {
    for (const t of ['2025-06-15T19:30:00Z', '2025-06-15T19:30:00.123Z', '2025-06-15T15:30:00-04:00', '2025-06-15T21:30:00+0200', '2025-06-15T19:30Z']) {
      expect(ISO_DATETIME_OFFSET_RE.test(t), t).toBe(true);
      expect(validateEventPayload('CONDITIONAL_BID_EXPIRING_SOON', { conditional_bid_id: 'c', expires_at: t }).ok, t).toBe(true);
    }
    for (const t of ['2025-06-15T19:30:00', '2025-13-15T19:30:00Z', '2025-06-15 19:30:00Z', 'yesterday', '']) {
      expect(ISO_DATETIME_OFFSET_RE.test(t), t).toBe(false);
    }
    const p = samplePayload('BID_REQUEST');
    expect(p.asset_details.event_date_local).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    expect(validateEventPayload('BID_REQUEST', p).ok).toBe(true);
    (p.asset_details as Record<string, unknown>).event_date_utc = '2025-06-15T19:30:00';
    expect(fieldsOf(validateEventPayload('BID_REQUEST', p))).toEqual(['payload.asset_details.event_date_utc']);
  });

  it('external_ids values must be strings', () => {
    const p = samplePayload('BID_REQUEST');
    p.external_ids = { SEATGEEK: 17346315 as unknown as string };
    expect(fieldsOf(validateEventPayload('BID_REQUEST', p))).toEqual(['payload.external_ids.SEATGEEK']);
  });

  it('a non-object payload is rejected as a whole', () => {
    for (const bad of [null, [], 'x', 3, undefined]) {
      expect(fieldsOf(validateEventPayload('BID_REQUEST', bad))).toEqual(['payload']);
    }
  });
});

describe('pass-through and error reporting', () => {
  it('unlisted fields pass through unchanged, top-level and nested, key order kept', () => {
    const input = {
      future_field: { deep: [1, 'two', { three: null }] },
      ...samplePayload('BID_REQUEST'),
      zeta: 1,
    } as Record<string, unknown>;
    (input.item_details as Record<string, unknown>).platform_hint = 'x';
    (input.asset_details as Record<string, unknown>).performer_rank = 3;
    const before = JSON.stringify(input);
    const result = validateEventPayload('BID_REQUEST', input);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.payload).toBe(input);
      expect(JSON.stringify(result.payload)).toBe(before);
      expect(Object.keys(result.payload)[0]).toBe('future_field');
    }
  });

  it('reports every failing field, once each', () => {
    const p: Record<string, unknown> = samplePayload('BID_REQUEST');
    delete p.conversation_id;
    p.reference_type = 'AUCTION';
    p.expires_at = 'soon';
    (p.item_details as Record<string, unknown>).quantity = 0;
    (p.asset_details as Record<string, unknown>).id = '';
    const result = validateEventPayload('BID_REQUEST', p);
    expect(result.ok).toBe(false);
    expect(fieldsOf(result).sort()).toEqual(
      [
        'payload.conversation_id',
        'payload.reference_type',
        'payload.expires_at',
        'payload.item_details.quantity',
        'payload.asset_details.id',
      ].sort(),
    );
    if (!result.ok) for (const e of result.errors) expect(e.message.length).toBeGreaterThan(0);
  });

  it('an empty payload names all required fields', () => {
    for (const type of EVENT_TYPES) {
      expect(fieldsOf(validateEventPayload(type, {})).sort()).toEqual(requiredFields(type).map((f) => `payload.${f}`).sort());
    }
  });

  it('isValidEventPayload narrows', () => {
    const p: unknown = samplePayload('AUCTION_RESULT');
    expect(isValidEventPayload('AUCTION_RESULT', p)).toBe(true);
    if (isValidEventPayload('AUCTION_RESULT', p)) expect(p.is_winner).toBe(true);
    expect(isValidEventPayload('AUCTION_RESULT', {})).toBe(false);
  });

  it('EVENT_PAYLOAD_SCHEMAS has all 11 types', () => {
    expect(Object.keys(EVENT_PAYLOAD_SCHEMAS).sort()).toEqual([...EVENT_TYPES].sort());
  });
});
