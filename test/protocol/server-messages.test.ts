/**
 * The server-frame schemas of the protocol package (SPEC §2.2, §2.8, §4): `subscribed` always
 * carries `last_seq`, the `gap` frame, and `seq` in the webhook body.
 */
import { describe, expect, it } from 'vitest';
import {
  ErrorFrameSchema,
  GapFrameSchema,
  SERVER_CONTROL_MSG_TYPES,
  SubscribedFrameSchema,
  WebhookBodySchema,
  samplePayload,
} from '@tpx-realtime/protocol';

const sent_at = 1_704_067_200_000;

describe('server frame schemas', () => {
  it('subscribed: last_seq is required, resumed_from and gap optional', () => {
    expect(SubscribedFrameSchema.safeParse({ msg_type: 'subscribed', sent_at, payload: { rooms: ['ALL'], last_seq: 0 } }).success).toBe(true);
    expect(
      SubscribedFrameSchema.safeParse({
        msg_type: 'subscribed',
        sent_at,
        payload: { rooms: ['BID_REQUEST'], last_seq: 90, resumed_from: 3, gap: { from_seq: 4, to_seq: 41 } },
      }).success,
    ).toBe(true);
    const missing = SubscribedFrameSchema.safeParse({ msg_type: 'subscribed', sent_at, payload: { rooms: ['ALL'] } });
    expect(missing.success).toBe(false);
    expect(missing.error!.issues[0]!.path).toEqual(['payload', 'last_seq']);
    for (const bad of [-1, 1.5, '7', null]) {
      expect(SubscribedFrameSchema.safeParse({ msg_type: 'subscribed', sent_at, payload: { rooms: ['ALL'], last_seq: bad } }).success, String(bad)).toBe(false);
    }
    expect(SubscribedFrameSchema.safeParse({ msg_type: 'subscribed', sent_at, payload: { rooms: ['bid_request'], last_seq: 1 } }).success).toBe(false);
  });

  it('gap frame: from_seq and to_seq, positive integers', () => {
    expect(SERVER_CONTROL_MSG_TYPES).toContain('gap');
    expect(GapFrameSchema.safeParse({ msg_type: 'gap', sent_at, payload: { from_seq: 5, to_seq: 9 } }).success).toBe(true);
    expect(GapFrameSchema.safeParse({ msg_type: 'gap', sent_at, payload: { from_seq: 5 } }).success).toBe(false);
    expect(GapFrameSchema.safeParse({ msg_type: 'gap', sent_at, payload: { from_seq: 0, to_seq: 9 } }).success).toBe(false);
  });

  it('error frame: extra fields allowed (rooms)', () => {
    const r = ErrorFrameSchema.safeParse({ msg_type: 'error', sent_at, payload: { error: 'x', code: 'INVALID_ROOM', rooms: ['NOPE'], hint: 'y' } });
    expect(r.success).toBe(true);
  });

  it('webhook body: seq is required (SPEC §4), sent_at is seconds', () => {
    const body = {
      msg_type: 'BID_REQUEST',
      msg_id: '0b8c2a5e-6f1d-4c3b-9a7e-1d2c3b4a5f60',
      seq: 41,
      sent_at: 1_704_067_200,
      source_id: 'tradepost_realtime',
      destination_id: 'partner_acme',
      payload: samplePayload('BID_REQUEST'),
    };
    expect(WebhookBodySchema.safeParse(body).success).toBe(true);
    const { seq: _seq, ...withoutSeq } = body;
    expect(WebhookBodySchema.safeParse(withoutSeq).success).toBe(false);
    expect(WebhookBodySchema.safeParse({ ...body, seq: 0 }).success).toBe(false);
  });
});
