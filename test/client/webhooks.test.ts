import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Deduplicator } from '../../packages/client/src/dedup.js';
import { WebhookVerificationError } from '../../packages/client/src/errors.js';
import {
  createNodeWebhookHandler,
  expressWebhookHandler,
  handleWebhook,
  parseWebhookEvent,
  signWebhook,
  verifyWebhook,
} from '@tpx-realtime/client/webhooks';
import type { TpxEvent } from '../../packages/client/src/types.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const otherSecret = `whsec_${randomBytes(32).toString('base64')}`;

function body(msgId: string, sentAtSec: number, type = 'BID_OUTBID', seq: number | null = 41): string {
  return JSON.stringify({
    msg_type: type,
    msg_id: msgId,
    ...(seq === null ? {} : { seq }),
    sent_at: sentAtSec,
    source_id: 'tradepost_realtime',
    destination_id: 'partner_acme',
    payload: { conversation_id: 'c1', bid_id: 'b1' },
  });
}

/** Headers signed by the reference `standardwebhooks` library. */
function libSigned(msgId: string, raw: string, at = new Date(), key = secret): Record<string, string> {
  const wh = new Webhook(key);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': wh.sign(msgId, at, raw),
  };
}

describe('webhook verification (Standard Webhooks)', () => {
  it('returns the seq of the body (SPEC §4); a body without one (older server) has none; a malformed one is refused', async () => {
    const id = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const withSeq = body(id, now, 'BID_OUTBID', 7);
    expect((await verifyWebhook({ headers: libSigned(id, withSeq), body: withSeq }, { secret })).seq).toBe(7);
    const withoutSeq = body(id, now, 'BID_OUTBID', null);
    const event = await verifyWebhook({ headers: libSigned(id, withoutSeq), body: withoutSeq }, { secret });
    expect('seq' in event).toBe(false);
    for (const bad of [0, -1, 1.5, '7', null]) {
      const raw = JSON.stringify({ ...JSON.parse(withSeq), seq: bad });
      await expect(verifyWebhook({ headers: libSigned(id, raw), body: raw }, { secret }), String(bad)).rejects.toMatchObject({ code: 'WEBHOOK_BAD_BODY' });
    }
  });

  it('accepts what the standardwebhooks library signs and parses to the WebSocket event shape', async () => {
    const id = randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const raw = body(id, now);
    const event = await verifyWebhook({ headers: libSigned(id, raw), body: raw }, { secret });
    expect(event).toEqual({
      msg_type: 'BID_OUTBID',
      msg_id: id,
      seq: 41,
      sent_at: now * 1000,
      payload: { conversation_id: 'c1', bid_id: 'b1' },
      via: 'webhook',
      source_id: 'tradepost_realtime',
      destination_id: 'partner_acme',
    });
    // Bytes body works too, and a Headers object.
    const h = new Headers(libSigned(id, raw));
    await expect(verifyWebhook({ headers: h, body: new TextEncoder().encode(raw) }, { secret })).resolves.toMatchObject({ msg_id: id });
  });

  it('our signWebhook is byte-identical to the library and verifies with it', async () => {
    const id = randomUUID();
    const ts = Math.floor(Date.now() / 1000);
    const raw = body(id, ts);
    const ours = await signWebhook(secret, id, ts, raw);
    expect(ours).toBe(new Webhook(secret).sign(id, new Date(ts * 1000), raw));
    expect(() =>
      new Webhook(secret).verify(raw, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': ours }),
    ).not.toThrow();
  });

  it('accepts any of several space-separated v1 signatures (rotation), ignores other versions', async () => {
    const id = randomUUID();
    const raw = body(id, Math.floor(Date.now() / 1000));
    const good = libSigned(id, raw);
    const bad = libSigned(id, raw, new Date(), otherSecret);
    const headers = { ...good, 'webhook-signature': `v2,abc ${bad['webhook-signature']} ${good['webhook-signature']}` };
    await expect(verifyWebhook({ headers, body: raw }, { secret })).resolves.toMatchObject({ msg_id: id });
    // Verifier holding both secrets during a rotation.
    await expect(verifyWebhook({ headers: bad, body: raw }, { secret: [secret, otherSecret] })).resolves.toMatchObject({ msg_id: id });
  });

  it('rejects a wrong secret, a tampered body, missing headers', async () => {
    const id = randomUUID();
    const raw = body(id, Math.floor(Date.now() / 1000));
    const headers = libSigned(id, raw);
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'ok';
      } catch (err) {
        expect(err).toBeInstanceOf(WebhookVerificationError);
        return (err as WebhookVerificationError).code;
      }
    };
    expect(await codeOf(verifyWebhook({ headers, body: raw }, { secret: otherSecret }))).toBe('WEBHOOK_BAD_SIGNATURE');
    expect(await codeOf(verifyWebhook({ headers, body: raw.replace('b1', 'b2') }, { secret }))).toBe('WEBHOOK_BAD_SIGNATURE');
    expect(await codeOf(verifyWebhook({ headers: { ...headers, 'webhook-id': randomUUID() }, body: raw }, { secret }))).toBe(
      'WEBHOOK_BAD_SIGNATURE',
    );
    expect(await codeOf(verifyWebhook({ headers: { 'webhook-id': id }, body: raw }, { secret }))).toBe('WEBHOOK_MISSING_HEADERS');
    expect(await codeOf(verifyWebhook({ headers: { ...headers, 'webhook-signature': 'v1,' }, body: raw }, { secret }))).toBe(
      'WEBHOOK_BAD_SIGNATURE',
    );
  });

  it('enforces the timestamp tolerance (default 5 min, both directions)', async () => {
    const id = randomUUID();
    const raw = body(id, 1);
    const t0 = new Date('2025-01-01T00:00:00Z');
    const headers = libSigned(id, raw, t0);
    const at = (deltaSec: number) => () => t0.getTime() + deltaSec * 1000;
    await expect(verifyWebhook({ headers, body: raw }, { secret, now: at(299) })).resolves.toBeTruthy();
    await expect(verifyWebhook({ headers, body: raw }, { secret, now: at(-299) })).resolves.toBeTruthy();
    await expect(verifyWebhook({ headers, body: raw }, { secret, now: at(301) })).rejects.toMatchObject({ code: 'WEBHOOK_BAD_TIMESTAMP' });
    await expect(verifyWebhook({ headers, body: raw }, { secret, now: at(-301) })).rejects.toMatchObject({ code: 'WEBHOOK_BAD_TIMESTAMP' });
    await expect(verifyWebhook({ headers, body: raw }, { secret, now: at(1000), toleranceSec: 1200 })).resolves.toBeTruthy();
    await expect(
      verifyWebhook({ headers: { ...headers, 'webhook-timestamp': 'soon' }, body: raw }, { secret, now: at(0) }),
    ).rejects.toMatchObject({ code: 'WEBHOOK_BAD_TIMESTAMP' });
  });

  it('rejects bodies that are not TPX events; body msg_id must match webhook-id', async () => {
    expect(() => parseWebhookEvent('nope')).toThrow(WebhookVerificationError);
    expect(() => parseWebhookEvent('{"msg_type":"NOPE","msg_id":"x","payload":{}}')).toThrow(/msg_type/);
    expect(() => parseWebhookEvent('{"msg_type":"BID_OUTBID","payload":{}}')).toThrow(/msg_id/);
    const id = randomUUID();
    const raw = body(randomUUID(), Math.floor(Date.now() / 1000));
    await expect(verifyWebhook({ headers: libSigned(id, raw), body: raw }, { secret })).rejects.toMatchObject({ code: 'WEBHOOK_BAD_BODY' });
  });
});

describe('webhook handlers', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it('handleWebhook: 200 handled, 200 duplicate, 401 bad signature, 500 when onEvent fails (then retry succeeds)', async () => {
    const dedup = new Deduplicator();
    const seen: TpxEvent[] = [];
    let failNext = true;
    const opts = {
      secret,
      dedup,
      onEvent: (e: TpxEvent) => {
        if (e.msg_type === 'PAYMENT_FAILED' && failNext) {
          failNext = false;
          throw new Error('db down');
        }
        seen.push(e);
      },
    };
    const id = randomUUID();
    const raw = body(id, Math.floor(Date.now() / 1000));
    const req = { headers: libSigned(id, raw), body: raw };
    expect(await handleWebhook(req, opts)).toMatchObject({ status: 200, outcome: 'handled' });
    expect(await handleWebhook(req, opts)).toMatchObject({ status: 200, outcome: 'duplicate' });
    expect(await handleWebhook({ ...req, body: raw + ' ' }, opts)).toMatchObject({ status: 401, outcome: 'rejected' });
    const id2 = randomUUID();
    const raw2 = body(id2, Math.floor(Date.now() / 1000), 'PAYMENT_FAILED');
    const req2 = { headers: libSigned(id2, raw2), body: raw2 };
    expect(await handleWebhook(req2, opts)).toMatchObject({ status: 500, outcome: 'failed' });
    expect(await handleWebhook(req2, opts)).toMatchObject({ status: 200, outcome: 'handled' });
    expect(seen.map((e) => e.msg_id)).toEqual([id, id2]);
  });

  it('createNodeWebhookHandler over real HTTP: verifies the raw body, de-duplicates redeliveries', async () => {
    const seen: string[] = [];
    const handler = createNodeWebhookHandler({ secret, dedup: new Deduplicator(), onEvent: (e) => void seen.push(e.msg_id) });
    server = createServer(handler);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const id = randomUUID();
    const raw = body(id, Math.floor(Date.now() / 1000));
    const post = (h: Record<string, string>, b: string) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body: b });
    const r1 = await post(libSigned(id, raw), raw);
    expect(r1.status).toBe(200);
    expect(await r1.json()).toMatchObject({ ok: true, duplicate: false });
    const r2 = await post(libSigned(id, raw), raw);
    expect(await r2.json()).toMatchObject({ ok: true, duplicate: true });
    const r3 = await post(libSigned(id, raw, new Date(), otherSecret), raw);
    expect(r3.status).toBe(401);
    expect((await r3.json()).code).toBe('WEBHOOK_BAD_SIGNATURE');
    expect((await fetch(url)).status).toBe(405);
    expect(seen).toEqual([id]);
  });

  it('expressWebhookHandler: raw Buffer body (express.raw), string body, refuses an already-parsed body', async () => {
    const seen: string[] = [];
    const mw = expressWebhookHandler({ secret, onEvent: (e) => void seen.push(e.msg_id) });
    const call = (reqBody: unknown, headers: Record<string, string>) =>
      new Promise<{ status: number; body: any }>((resolve) => {
        const res = {
          statusCode: 0,
          setHeader: () => undefined,
          end: (b?: string) => resolve({ status: res.statusCode, body: JSON.parse(b ?? '{}') }),
        };
        mw({ headers, body: reqBody, method: 'POST', on: () => undefined } as any, res);
      });
    const id = randomUUID();
    const raw = body(id, Math.floor(Date.now() / 1000));
    expect((await call(Buffer.from(raw), libSigned(id, raw))).status).toBe(200);
    const id2 = randomUUID();
    const raw2 = body(id2, Math.floor(Date.now() / 1000));
    expect((await call(raw2, libSigned(id2, raw2))).status).toBe(200);
    const parsed = await call(JSON.parse(raw2), libSigned(id2, raw2));
    expect(parsed.status).toBe(500);
    expect(parsed.body.code).toBe('RAW_BODY_REQUIRED');
    expect(seen).toEqual([id, id2]);
  });
});
