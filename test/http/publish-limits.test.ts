/**
 * SPEC §3.1 input limits of the publish API: `TPX_MAX_EVENT_BYTES` (413 `PAYLOAD_TOO_LARGE`, per
 * event, single and batch) and the route body limits (413 with the usual `{error, code}`, never a
 * 500). Issue 9 defect 7 (one oversized event
 * poisoned the account's stream: every subscriber closed with 4009 on every resume).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { api, createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { barrier, msgIds } from '../helpers/expect.js';
import { eventBody, samplePayload } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed } from '../helpers/ws-client.js';

const DEFAULT_MAX = 262_144;

let server: TestServer;
let accountId: string;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  ({ accountId, token } = await createAccountWithKey(server, { name: 'limits' }));
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

/** A valid payload whose JSON.stringify is exactly `bytes` long (an extra field pads it). */
function payloadOfSize(bytes: number): Record<string, unknown> {
  const base = samplePayload('PAYMENT_SETTLED');
  const empty = Buffer.byteLength(JSON.stringify({ ...base, pad: '' }));
  if (bytes < empty) throw new Error(`payload cannot be smaller than ${empty} bytes`);
  return { ...base, pad: 'x'.repeat(bytes - empty) };
}

function expectErrorBody(res: { status: number; body: any; text: string }, status: number, code: string): void {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  expect(res.body?.code, res.text.slice(0, 500)).toBe(code);
  expect(typeof res.body?.error).toBe('string');
}

describe('TPX_MAX_EVENT_BYTES (default 262144)', () => {
  it('a payload of exactly the limit is accepted; one byte more is refused with 413 PAYLOAD_TOO_LARGE', async () => {
    const ok = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: payloadOfSize(DEFAULT_MAX) });
    expect(ok.status, ok.text).toBe(202);
    const tooBig = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: payloadOfSize(DEFAULT_MAX + 1) });
    expectErrorBody(tooBig, 413, 'PAYLOAD_TOO_LARGE');
    expect(tooBig.body.max_event_bytes).toBe(DEFAULT_MAX);
  });

  it('the limit counts serialized UTF-8 bytes, not characters', async () => {
    // 'é' is 2 bytes in UTF-8: 140,000 of them are 280,000 bytes, over the limit in fewer characters.
    const payload = { ...samplePayload('PAYMENT_SETTLED'), pad: 'é'.repeat(140_000) };
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload });
    expectErrorBody(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a batch holding one 5 MiB event is refused whole (413, naming its index); nothing is stored and subscribers stay open', async () => {
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const small = [0, 1, 2].map(() => eventBody('PAYMENT_SETTLED', [accountId], { msg_id: randomUUID() }));
    const huge = { ...eventBody('PAYMENT_SETTLED', [accountId], { msg_id: randomUUID() }), payload: payloadOfSize(5 * 1024 * 1024) };
    const res = await api(server, 'POST', '/v1/events/batch', { events: [small[0], small[1], huge, small[2]] });
    expectErrorBody(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.body.error).toContain('events[2]');
    expect(res.body.fields).toEqual([{ field: 'events[2].payload', message: expect.stringContaining(String(DEFAULT_MAX)) }]);
    // All or nothing: none of the batch was stored or delivered, and the subscriber is still served.
    const [before] = await barrier(server, accountId, [c]);
    expect(msgIds(before!)).toEqual([]);
    expect(c.isOpen).toBe(true);
    for (const e of [...small, huge]) {
      const again = await api(server, 'POST', '/v1/events', { ...e, payload: samplePayload('PAYMENT_SETTLED') });
      expect(again.status, again.text).toBe(202);
      expect(again.body.msg_id).toBe((e as Record<string, unknown>).msg_id); // a fresh id: it was never stored
    }
    // A resume from 0 replays the account's stream without being closed for a slow consumer.
    const resumed = await connectAuthed(server.wsUrl, token);
    const sub = await resumed.subscribe(['ALL'], 0);
    expect(sub.payload.resumed_from).toBe(0);
    await barrier(server, accountId, [resumed]);
    expect(resumed.isOpen).toBe(true);
  });

  it('a single-event body over the route limit answers 413 PAYLOAD_TOO_LARGE with {error, code}', async () => {
    const body = JSON.stringify({ msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: payloadOfSize(2 * 1024 * 1024) });
    const res = await api(server, 'POST', '/v1/events', undefined, { rawBody: body });
    expectErrorBody(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a batch body over the batch limit (16 MiB) answers 413 PAYLOAD_TOO_LARGE with {error, code}, seen by the sender every time', async () => {
    const events = Array.from({ length: 80 }, () => ({ ...eventBody('PAYMENT_SETTLED', [accountId]), payload: payloadOfSize(DEFAULT_MAX - 10) }));
    const rawBody = JSON.stringify({ events });
    // Answered before the body was read, the sender was often reset mid-write (EPIPE) and never saw the 413.
    for (let i = 0; i < 5; i++) {
      const res = await api(server, 'POST', '/v1/events/batch', undefined, { rawBody });
      expectErrorBody(res, 413, 'PAYLOAD_TOO_LARGE');
    }
  });

  it('the single-event body limit leaves room for a maximal payload addressed to 1,000 accounts', async () => {
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    const res = await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: ids, payload: payloadOfSize(DEFAULT_MAX) });
    // The body (≈ 300 KB) is read and validated: the answer is about the unknown accounts, not the size.
    expectErrorBody(res, 400, 'UNKNOWN_ACCOUNT');
  });
});

describe('TPX_MAX_EVENT_BYTES configured', () => {
  it('a lower limit applies to single and batch publishes', async () => {
    const small = await startTestServer({ env: { TPX_MAX_EVENT_BYTES: '4096' } });
    const { accountId: acct } = await createAccountWithKey(small);
    const ok = await api(small, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [acct], payload: payloadOfSize(4096) });
    expect(ok.status, ok.text).toBe(202);
    const single = await api(small, 'POST', '/v1/events', { msg_type: 'PAYMENT_SETTLED', account_ids: [acct], payload: payloadOfSize(4097) });
    expectErrorBody(single, 413, 'PAYLOAD_TOO_LARGE');
    const batch = await api(small, 'POST', '/v1/events/batch', {
      events: [eventBody('PAYMENT_SETTLED', [acct]), { msg_type: 'PAYMENT_SETTLED', account_ids: [acct], payload: payloadOfSize(5000) }],
    });
    expectErrorBody(batch, 413, 'PAYLOAD_TOO_LARGE');
    expect(batch.body.fields.map((f: { field: string }) => f.field)).toEqual(['events[1].payload']);
    await small.stop();
  });

  it('is parsed and validated by the configuration', () => {
    expect(loadConfig({}).maxEventBytes).toBe(DEFAULT_MAX);
    expect(loadConfig({ TPX_MAX_EVENT_BYTES: '1024' }).maxEventBytes).toBe(1024);
    expect(() => loadConfig({ TPX_MAX_EVENT_BYTES: 'big' })).toThrow(/TPX_MAX_EVENT_BYTES/);
    expect(() => loadConfig({ TPX_MAX_EVENT_BYTES: '10' })).toThrow(/TPX_MAX_EVENT_BYTES/);
  });

  it('an event never exceeds the outbound limit: the effective limit is capped below TPX_MAX_OUTBOUND_BYTES', () => {
    const c = loadConfig({ TPX_MAX_OUTBOUND_BYTES: '65536' });
    expect(c.maxEventBytes).toBeLessThan(65_536);
    expect(c.maxEventBytes).toBeGreaterThan(60_000);
  });
});
