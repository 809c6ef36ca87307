/**
 * SPEC §3.2–3.3: admin API (accounts, keys, connections), health and metrics.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccount, createAccountWithKey, createKey, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { UUID_RE } from '../helpers/expect.js';
import { EVENT_TYPES } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed } from '../helpers/ws-client.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

/** Lists may come bare or wrapped ({ accounts: [...] }, { items: [...] }, …): find the array. */
function listOf(body: any): any[] {
  if (Array.isArray(body)) return body;
  if (body && typeof body === 'object') {
    for (const v of Object.values(body)) if (Array.isArray(v)) return v;
  }
  throw new Error(`expected a list, got ${JSON.stringify(body).slice(0, 300)}`);
}

describe('accounts', () => {
  it('POST /admin/accounts → 201 { account_id, name, partner_id, rooms, created_at }; default rooms are all 11', async () => {
    const res = await api(server, 'POST', '/admin/accounts', { name: 'Acme', partner_id: 'partner_acme' });
    expect(res.status, res.text).toBe(201);
    const a = res.body;
    expect(a.account_id).toMatch(UUID_RE);
    expect(a.name).toBe('Acme');
    expect(a.partner_id).toBe('partner_acme');
    expect([...a.rooms].sort()).toEqual([...EVENT_TYPES].sort());
    expect(Number.isNaN(Date.parse(a.created_at))).toBe(false);
  });

  it('POST with no body fields works; explicit rooms are kept', async () => {
    const a = await createAccount(server);
    expect(a.account_id).toMatch(UUID_RE);
    const b = await createAccount(server, { rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });
    expect([...b.rooms].sort()).toEqual(['BID_REQUEST', 'PAYMENT_SETTLED']);
  });

  it('POST with an invalid room → 400', async () => {
    const res = await api(server, 'POST', '/admin/accounts', { rooms: ['BID_REQUEST', 'NOPE'] });
    expect(res.status, res.text).toBe(400);
    expect(typeof res.body.code).toBe('string');
  });

  it('GET list / GET one / PATCH / DELETE', async () => {
    const a = await createAccount(server, { name: 'crud' });
    const list = await api(server, 'GET', '/admin/accounts');
    expect(list.status).toBe(200);
    expect(listOf(list.body).some((x) => x.account_id === a.account_id)).toBe(true);

    const one = await api(server, 'GET', `/admin/accounts/${a.account_id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ account_id: a.account_id, name: 'crud', created_at: a.created_at });

    const patched = await api(server, 'PATCH', `/admin/accounts/${a.account_id}`, { rooms: ['PAYMENT_FAILED'], name: 'crud2', partner_id: 'partner_x' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ account_id: a.account_id, name: 'crud2', partner_id: 'partner_x', rooms: ['PAYMENT_FAILED'] });
    const again = await api(server, 'GET', `/admin/accounts/${a.account_id}`);
    expect(again.body.rooms).toEqual(['PAYMENT_FAILED']);

    const del = await api(server, 'DELETE', `/admin/accounts/${a.account_id}`);
    expect([200, 204], del.text).toContain(del.status);
    const gone = await api(server, 'GET', `/admin/accounts/${a.account_id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('NOT_FOUND');
  });

  it('PATCH rooms takes effect for new subscriptions', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const r = await api(server, 'PATCH', `/admin/accounts/${accountId}`, { rooms: ['BID_REQUEST'] });
    expect(r.status, r.text).toBe(200);
    const c = await connectAuthed(server.wsUrl, token);
    const f = await c.subscribeRaw(['PAYMENT_FAILED']);
    expect(f.payload?.code).toBe('NO_VALID_ROOMS');
    const ok = await c.subscribeRaw(['BID_REQUEST', 'PAYMENT_FAILED']);
    expect(ok.payload.rooms).toEqual(['BID_REQUEST']);
  });

  it('deleting an account closes its connections and its keys stop working', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const del = await api(server, 'DELETE', `/admin/accounts/${accountId}`);
    expect([200, 204], del.text).toContain(del.status);
    expect((await c.waitClosed(5000)).code).toBe(4001);
  });

  it('404 for unknown account ids', async () => {
    const id = randomUUID();
    for (const [m, p, b] of [
      ['GET', `/admin/accounts/${id}`, undefined],
      ['PATCH', `/admin/accounts/${id}`, { name: 'x' }],
      ['DELETE', `/admin/accounts/${id}`, undefined],
      ['POST', `/admin/accounts/${id}/api-keys`, {}],
      ['GET', `/admin/accounts/${id}/api-keys`, undefined],
    ] as const) {
      const res = await api(server, m, p, b);
      expect(res.status, `${m} ${p}: ${res.text}`).toBe(404);
      expect(res.body?.code).toBe('NOT_FOUND');
    }
  });
});

describe('API keys', () => {
  it('create → 201 { key_id, token (tp_live_…), status: active, expires_at }; list never shows tokens', async () => {
    const a = await createAccount(server);
    const res = await api(server, 'POST', `/admin/accounts/${a.account_id}/api-keys`, { name: 'k1' });
    expect(res.status, res.text).toBe(201);
    expect(typeof res.body.key_id).toBe('string');
    expect(res.body.token).toMatch(/^tp_live_/);
    expect(res.body.status).toBe('active');
    expect('expires_at' in res.body).toBe(true);
    expect(res.body.expires_at).toBeNull();
    await createKey(server, a.account_id, { name: 'k2' });

    const list = await api(server, 'GET', `/admin/accounts/${a.account_id}/api-keys`);
    expect(list.status).toBe(200);
    const keys = listOf(list.body);
    expect(keys.length).toBe(2);
    expect(keys.some((k) => k.key_id === res.body.key_id)).toBe(true);
    for (const k of keys) expect(k.token).toBeUndefined();
    expect(list.text).not.toContain(res.body.token);
    expect(list.text).not.toContain(res.body.token.slice(8)); // not even the secret part
  });

  it('two keys never share a token', async () => {
    const a = await createAccount(server);
    const k1 = await createKey(server, a.account_id);
    const k2 = await createKey(server, a.account_id);
    expect(k1.token).not.toBe(k2.token);
    expect(k1.key_id).not.toBe(k2.key_id);
  });

  it('deactivate / activate are reflected in the list; DELETE removes or revokes the key', async () => {
    const a = await createAccount(server);
    const k = await createKey(server, a.account_id);
    const find = async () => listOf((await api(server, 'GET', `/admin/accounts/${a.account_id}/api-keys`)).body).find((x) => x.key_id === k.key_id);
    const d = await api(server, 'POST', `/admin/api-keys/${k.key_id}/deactivate`);
    expect(d.status, d.text).toBeLessThan(300);
    expect((await find())?.status).toBe('inactive');
    const act = await api(server, 'POST', `/admin/api-keys/${k.key_id}/activate`);
    expect(act.status, act.text).toBeLessThan(300);
    expect((await find())?.status).toBe('active');
    const del = await api(server, 'DELETE', `/admin/api-keys/${k.key_id}`);
    expect([200, 204], del.text).toContain(del.status);
    const after = await find();
    expect(after === undefined || after.status === 'revoked', JSON.stringify(after)).toBe(true);
  });

  it('a past expires_at is refused (400) or yields an already-expired key', async () => {
    const a = await createAccount(server);
    const res = await api(server, 'POST', `/admin/accounts/${a.account_id}/api-keys`, { expires_at: '2020-01-01T00:00:00Z' });
    expect([201, 400], res.text).toContain(res.status);
  });

  it('an invalid expires_at → 400', async () => {
    const a = await createAccount(server);
    const res = await api(server, 'POST', `/admin/accounts/${a.account_id}/api-keys`, { expires_at: 'tomorrow' });
    expect(res.status, res.text).toBe(400);
  });

  it('404 for unknown key ids', async () => {
    const id = randomUUID();
    for (const [m, p] of [
      ['POST', `/admin/api-keys/${id}/deactivate`],
      ['POST', `/admin/api-keys/${id}/activate`],
      ['DELETE', `/admin/api-keys/${id}`],
    ] as const) {
      const res = await api(server, m, p);
      expect(res.status, `${m} ${p}: ${res.text}`).toBe(404);
      expect(res.body?.code).toBe('NOT_FOUND');
    }
  });
});

describe('admin auth', () => {
  it('401 without token or with a wrong token on every admin route', async () => {
    const a = await createAccount(server);
    const routes: Array<[string, string]> = [
      ['GET', '/admin/accounts'],
      ['POST', '/admin/accounts'],
      ['GET', `/admin/accounts/${a.account_id}`],
      ['PATCH', `/admin/accounts/${a.account_id}`],
      ['DELETE', `/admin/accounts/${a.account_id}`],
      ['POST', `/admin/accounts/${a.account_id}/api-keys`],
      ['GET', `/admin/accounts/${a.account_id}/api-keys`],
      ['POST', `/admin/api-keys/${randomUUID()}/deactivate`],
      ['GET', '/admin/connections'],
      ['GET', '/admin/deliveries'],
    ];
    for (const [m, p] of routes) {
      for (const tok of [null, 'nope']) {
        const res = await api(server, m, p, m === 'GET' || m === 'DELETE' ? undefined : {}, { token: tok });
        expect(res.status, `${m} ${p} token=${tok}: ${res.text}`).toBe(401);
        expect(res.body?.code).toBe('UNAUTHORIZED');
      }
    }
    // the account is untouched
    expect((await api(server, 'GET', `/admin/accounts/${a.account_id}`)).status).toBe(200);
  });
});

describe('GET /admin/connections', () => {
  it('lists live connections with account, rooms, connected since and node; closed ones disappear', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const before = Date.now();
    const c1 = await connectAuthed(server.wsUrl, token, ['BID_REQUEST', 'PAYMENT_FAILED']);
    const c2 = await connectAuthed(server.wsUrl, token, ['ALL']);
    const res = await api(server, 'GET', '/admin/connections');
    expect(res.status, res.text).toBe(200);
    const mine = listOf(res.body).filter((x) => x.account_id === accountId);
    expect(mine.length, res.text.slice(0, 1000)).toBe(2);
    const roomSets = mine.map((x) => [...x.rooms].sort().join(',')).sort();
    expect(roomSets).toEqual(['ALL', 'BID_REQUEST,PAYMENT_FAILED']);
    for (const x of mine) {
      const since = x.connected_at ?? x.connected_since ?? x.since;
      expect(since, `connected-since field in ${JSON.stringify(x)}`).toBeDefined();
      const t = typeof since === 'number' ? since : Date.parse(since);
      expect(t).toBeGreaterThanOrEqual(before - 2000);
      const node = x.node ?? x.node_id;
      expect(typeof node, `node field in ${JSON.stringify(x)}`).toBe('string');
    }
    await c1.close();
    await c2.close();
    await waitFor(
      async () => listOf((await api(server, 'GET', '/admin/connections')).body).filter((x) => x.account_id === accountId).length === 0,
      5000,
      'closed connections to disappear from /admin/connections',
    );
  });
});

describe('health and metrics', () => {
  it('/healthz and /readyz answer 200 without auth', async () => {
    for (const p of ['/healthz', '/readyz']) {
      const res = await api(server, 'GET', p, undefined, { token: null });
      expect(res.status, `${p}: ${res.text}`).toBe(200);
    }
  });

  it('/metrics is Prometheus text with connection and event counters', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const pub = await api(server, 'POST', '/v1/events', {
      msg_type: 'PAYMENT_SETTLED',
      account_ids: [accountId],
      payload: { conversation_id: 'c', payment_id: 'p', total_charged_cents: 1 },
    });
    expect(pub.status).toBe(202);
    await c.next((f) => f.msg_id === pub.body.msg_id);
    const res = await fetch(server.url + '/metrics', { headers: { authorization: `Bearer ${server.adminToken}` } });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
    expect(text).toMatch(/^# TYPE /m);
    const metricNames = [...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(metricNames.some((n) => /connection/.test(n)), `metrics: ${metricNames.join('; ')}`).toBe(true);
    expect(metricNames.some((n) => /event/.test(n) && /counter/.test(n)), `metrics: ${metricNames.join('; ')}`).toBe(true);
    // a connection gauge reports at least our open connection
    const connLine = text.split('\n').find((l) => /^[a-z_]*connections?[a-z_]*(\{[^}]*\})? [0-9.e+]+$/.test(l) && !/_total/.test(l));
    expect(connLine, 'a connections gauge sample line').toBeDefined();
    expect(Number(connLine!.split(' ').pop())).toBeGreaterThanOrEqual(1);
  });
});
