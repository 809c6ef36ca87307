import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createHmac } from 'node:crypto';
import { verifyWebhookSignature } from '../../packages/client/src/webhooks.js';
import { generateSecret, isValidSecret, secretKey, signPayload, webhookHeaders } from '../../src/webhooks/signing.js';

const body = JSON.stringify({ msg_type: 'BID_REQUEST', msg_id: '0d7b4c9e-2f7a-4c55-9d0e-6b9f3a1c2e11', payload: { a: 'é', n: 1 } });

function headersFor(msgId: string, ts: number, secrets: string[]) {
  return { 'webhook-id': msgId, 'webhook-timestamp': String(ts), 'webhook-signature': signPayload({ msgId, timestamp: ts, body, secrets }) };
}

describe('generateSecret', () => {
  it('is whsec_ + base64 of 32 random bytes, unique', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(secretKey(a).length).toBe(32);
    expect(a).not.toBe(b);
    expect(isValidSecret(a)).toBe(true);
  });

  it('isValidSecret: a whsec_ secret needs strict base64 of ≥ 24 bytes; any other string of 1-512 plain characters is taken as it is', () => {
    expect(isValidSecret('whsec_' + Buffer.alloc(24, 7).toString('base64'))).toBe(true);
    expect(isValidSecret('whsec_' + Buffer.alloc(23, 7).toString('base64'))).toBe(false);
    expect(isValidSecret('whsec_not base64!!')).toBe(false);
    expect(isValidSecret('whsec_')).toBe(false);
    expect(isValidSecret(Buffer.alloc(32, 7).toString('base64'))).toBe(true);
    expect(isValidSecret('partner-chosen-secret-123')).toBe(true);
    expect(isValidSecret('')).toBe(false);
    expect(isValidSecret(' padded ')).toBe(false);
    expect(isValidSecret('line\nbreak')).toBe(false);
    expect(isValidSecret('x'.repeat(513))).toBe(false);
  });

  it('a secret without the whsec_ prefix signs with its own UTF-8 bytes (createHmac(secret)), and the SDK verifies it', async () => {
    const secret = 'partner-chosen-secret-123';
    const ts = Math.floor(Date.now() / 1000);
    const header = signPayload({ msgId: 'msg_1', timestamp: ts, body, secrets: [secret] });
    expect(header).toBe('v1,' + createHmac('sha256', secret).update(`msg_1.${ts}.${body}`).digest('base64'));
    await expect(verifyWebhookSignature({ body, headers: headersFor('msg_1', ts, [secret]) }, { secret })).resolves.toEqual({ id: 'msg_1', timestamp: ts });
    await expect(verifyWebhookSignature({ body, headers: headersFor('msg_1', ts, [secret]) }, { secret: 'another-secret' })).rejects.toThrow();
  });
});

describe('signPayload', () => {
  it('is verified by the standardwebhooks library as a partner would', () => {
    const secret = generateSecret();
    const ts = Math.floor(Date.now() / 1000);
    const msgId = 'msg_2b4f';
    const parsed = new Webhook(secret).verify(body, headersFor(msgId, ts, [secret]));
    expect(parsed).toEqual(JSON.parse(body));
  });

  it('matches the library signature byte for byte', () => {
    const secret = generateSecret();
    const ts = 1_704_067_200;
    const lib = new Webhook(secret).sign('id1', new Date(ts * 1000), body);
    expect(signPayload({ msgId: 'id1', timestamp: ts, body, secrets: [secret] })).toBe(lib);
  });

  it('fails verification with a different secret, a tampered body or another id', () => {
    const secret = generateSecret();
    const ts = Math.floor(Date.now() / 1000);
    const h = headersFor('id1', ts, [secret]);
    expect(() => new Webhook(generateSecret()).verify(body, h)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace('BID_REQUEST', 'BID_OUTBID'), h)).toThrow();
    expect(() => new Webhook(secret).verify(body, { ...h, 'webhook-id': 'id2' })).toThrow();
  });

  it('rotation: two space-separated signatures, each secret alone verifies', () => {
    const oldSecret = generateSecret();
    const newSecret = generateSecret();
    const ts = Math.floor(Date.now() / 1000);
    const h = headersFor('id-rot', ts, [newSecret, oldSecret]);
    const sigs = h['webhook-signature'].split(' ');
    expect(sigs).toHaveLength(2);
    for (const s of sigs) expect(s).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(newSecret).verify(body, h)).toBeTruthy();
    expect(new Webhook(oldSecret).verify(body, h)).toBeTruthy();
    expect(() => new Webhook(generateSecret()).verify(body, h)).toThrow();
  });

  it('webhookHeaders gives the three Standard Webhooks headers', () => {
    const secret = generateSecret();
    const ts = Math.floor(Date.now() / 1000);
    const h = webhookHeaders({ msgId: 'abc', timestamp: ts + 0.7, body, secrets: [secret] });
    expect(h['webhook-id']).toBe('abc');
    expect(h['webhook-timestamp']).toBe(String(ts));
    expect(new Webhook(secret).verify(body, h)).toBeTruthy();
  });
});
