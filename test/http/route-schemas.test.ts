/**
 * The route schemas (src/http/schema.ts) validate what the hand-written checks used to: their
 * answers are the same, to the text. Authentication still comes before validation, an absent
 * body is still an empty object, and repeated query parameters no longer reach a handler as a
 * list it cannot read (they answered 500 before the schemas).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { api, createAccount, createKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

let server: TestServer;
let accountId: string;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  accountId = (await createAccount(server, { name: 'schemas' })).account_id;
  token = (await createKey(server, accountId)).token;
  await api(server, 'POST', '/v1/events', { msg_type: 'PAYMENT_FAILED', account_ids: [accountId], payload: samplePayload('PAYMENT_FAILED') });
});
afterAll(() => stopAll());

const partner = () => ({ token: null, headers: { 'x-api-key': token } });

describe('invalid parts answer as the hand checks did', () => {
  it('a path id that cannot exist: 404 "<Thing> not found", as an unknown one', async () => {
    for (const [url, text] of [
      ['/admin/accounts/bad!id', 'Account not found'],
      [`/admin/accounts/${'a'.repeat(65)}`, 'Account not found'],
      ['/admin/accounts/bad!id/api-keys', 'Account not found'],
      ['/admin/api-keys/bad!id', 'API key not found'],
      ['/admin/webhooks/bad!id', 'Webhook not found'],
      // Under an account, a malformed account id is a webhook not found in it.
      ['/admin/accounts/bad!id/webhooks/w1', 'Webhook not found'],
      ['/admin/deliveries/bad!id', 'Delivery not found'],
    ]) {
      const res = await api(server, 'GET', url);
      expect([res.status, res.body], url).toEqual([404, { error: text, code: 'NOT_FOUND' }]);
    }
    const res = await api(server, 'POST', '/admin/connections/bad!id/disconnect');
    expect([res.status, res.body]).toEqual([404, { error: 'Connection not found', code: 'NOT_FOUND' }]);
  });

  it('a bad body: 400 "Invalid request: field: message; …" with one fields entry per failing field', async () => {
    const res = await api(server, 'POST', '/admin/accounts', { name: '', rooms: 'ALL', extra: 1 });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'Invalid request: name: Too small: expected string to have >=1 characters; rooms: Invalid input: expected array, received string; body: Unrecognized key: "extra"',
      code: 'VALIDATION_FAILED',
      fields: [
        { field: 'name', message: 'Too small: expected string to have >=1 characters' },
        { field: 'rooms', message: 'Invalid input: expected array, received string' },
        { field: 'body', message: 'Unrecognized key: "extra"' },
      ],
    });
    const nested = await api(server, 'POST', '/admin/events/tail', { types: ['BID_REQUEST', 'NOPE'] });
    expect(nested.body.fields.map((f: { field: string }) => f.field)).toEqual(['types[1]']);
  });

  it('an absent body, or JSON null, is an empty object (POST /admin/accounts creates with defaults)', async () => {
    for (const rawBody of [undefined, 'null']) {
      const res = await api(server, 'POST', '/admin/accounts', undefined, rawBody ? { rawBody } : {});
      expect(res.status, res.text).toBe(201);
      expect(res.body.rooms).toHaveLength(11);
    }
  });

  it('a bad query: 400 "Invalid query: …" on the admin API, "Invalid event: …" on GET /v1/events, as before', async () => {
    const deliveries = await api(server, 'GET', '/admin/deliveries?limit=0');
    expect(deliveries.body).toEqual({
      error: 'Invalid query: limit: Too small: expected number to be >=1',
      code: 'VALIDATION_FAILED',
      fields: [{ field: 'limit', message: 'Too small: expected number to be >=1' }],
    });
    for (const q of ['after_seq=-1', 'after_seq=abc', 'after_seq=1.5', 'after_seq=99999999999999999', 'after_seq=1&after_seq=2']) {
      const res = await api(server, 'GET', `/v1/events?${q}`, undefined, partner());
      expect([res.status, res.body], q).toEqual([
        400,
        { error: 'Invalid event: after_seq: must be an integer ≥ 0', code: 'VALIDATION_FAILED', fields: [{ field: 'after_seq', message: 'must be an integer ≥ 0' }] },
      ]);
    }
    const both = await api(server, 'GET', '/v1/events?after_seq=-1&limit=0', undefined, partner());
    expect(both.body).toEqual({
      error: 'Invalid event: after_seq: must be an integer ≥ 0; limit: must be an integer between 1 and 1000',
      code: 'VALIDATION_FAILED',
      fields: [
        { field: 'after_seq', message: 'must be an integer ≥ 0' },
        { field: 'limit', message: 'must be an integer between 1 and 1000' },
      ],
    });
    // Number() semantics are kept: an empty value is 0, hexadecimal and exponents are numbers.
    for (const q of ['after_seq=', 'after_seq=0x0', 'after_seq=0e5', 'limit=1e1']) {
      expect((await api(server, 'GET', `/v1/events?${q}`, undefined, partner())).status, q).toBe(200);
    }
  });

  it('unknown rooms answer INVALID_ROOM with the names, before any other query error', async () => {
    const res = await api(server, 'GET', '/v1/events?after_seq=-1&rooms=BID_REQUEST,NOPE,X', undefined, partner());
    expect([res.status, res.body]).toEqual([400, { error: 'Unknown room(s): NOPE, X', code: 'INVALID_ROOM', rooms: ['NOPE', 'X'] }]);
  });

  it('repeated rooms= add up on GET /v1/events, as on the SSE stream (they answered 500 before)', async () => {
    const ok = await api(server, 'GET', '/v1/events?rooms=BID_REQUEST&rooms=PAYMENT_FAILED', undefined, partner());
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.events.map((e: { msg_type: string }) => e.msg_type)).toEqual(['PAYMENT_FAILED']);
    const bad = await api(server, 'GET', '/v1/events?rooms=A&rooms=B', undefined, partner());
    expect([bad.status, bad.body.code, bad.body.rooms]).toEqual([400, 'INVALID_ROOM', ['A', 'B']]);
  });

  it('a repeated scalar query parameter is a 400 naming it, never a 500', async () => {
    const res = await api(server, 'GET', '/admin/accounts?after=a&after=b');
    expect([res.status, res.body.code, res.body.fields?.[0]?.field]).toEqual([400, 'VALIDATION_FAILED', 'after']);
  });
});

describe('authentication comes before validation', () => {
  it('GET /v1/events without a key (or with an unknown one) and a bad query: 401, the query unread', async () => {
    const missing = await api(server, 'GET', '/v1/events?after_seq=-1&rooms=NOPE', undefined, { token: null });
    expect([missing.status, missing.body]).toEqual([401, { error: 'Missing X-API-Key header', code: 'AUTH_INVALID_API_KEY' }]);
    const unknown = await api(server, 'GET', '/v1/events?limit=0', undefined, { token: null, headers: { 'x-api-key': 'tp_live_unknown' } });
    expect([unknown.status, unknown.body.code]).toEqual([401, 'AUTH_INVALID_API_KEY']);
  });

  it('publish and admin routes without the admin token and a bad body: 401', async () => {
    for (const [method, url] of [
      ['POST', '/v1/events'],
      ['POST', '/v1/events/batch'],
      ['POST', '/admin/accounts'],
      ['PATCH', '/admin/accounts/bad!id'],
      ['GET', '/admin/deliveries?limit=0'],
    ]) {
      const res = await api(server, method, url, method === 'GET' ? undefined : { unknown_field: true }, { token: null });
      expect([res.status, res.body.code], `${method} ${url}`).toEqual([401, 'UNAUTHORIZED']);
    }
  });

  it('a body that is not JSON is still answered INVALID_JSON first, as before (it is parsed before any hook)', async () => {
    const res = await api(server, 'POST', '/v1/events', undefined, { token: null, rawBody: '{nope' });
    expect([res.status, res.body]).toEqual([400, { error: 'Request body is not valid JSON', code: 'INVALID_JSON' }]);
  });
});

describe('every route declares its schema', () => {
  it('a route with neither replies nor hide: true is refused when it is added', async () => {
    const app = createApp({ logger: pino({ level: 'silent' }), metrics: createMetrics() });
    try {
      expect(() => app.get('/undocumented', async () => ({ ok: true }))).toThrow(/declares no schema/);
      expect(() => app.get('/hidden', { schema: { hide: true } }, async () => ({ ok: true }))).not.toThrow();
    } finally {
      await app.close();
    }
  });
});
