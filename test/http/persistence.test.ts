/**
 * Restart persistence (embedded SQLite store): accounts, keys and the event log survive a
 * restart, and seq keeps increasing afterwards.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, startTestServer, stopAll } from '../helpers/server.js';
import { EVENT_TYPES, eventBody } from '../helpers/payloads.js';
import { barrier } from '../helpers/expect.js';
import { closeAllClients, connectAuthed, isEventFrame, WsTestClient } from '../helpers/ws-client.js';

afterEach(() => closeAllClients());
afterAll(() => stopAll());

describe('restart persistence', () => {
  it('accounts, keys (incl. status) and the event log survive a restart; seq continues increasing', async () => {
    const server = await startTestServer();
    const { accountId, token, account } = await createAccountWithKey(server, { name: 'durable', partner_id: 'partner_durable', rooms: ['BID_REQUEST', 'PAYMENT_SETTLED', 'PAYMENT_FAILED'] });
    const inactive = await createKey(server, accountId, { name: 'inactive' });
    await api(server, 'POST', `/admin/api-keys/${inactive.key_id}/deactivate`);

    const c = await connectAuthed(server.wsUrl, token, ['ALL']);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await publish(server, eventBody(i % 2 ? 'BID_REQUEST' : 'PAYMENT_SETTLED', [accountId]))).msg_id);
    const seqsBefore: number[] = [];
    for (const id of ids) seqsBefore.push((await c.next((f) => f.msg_id === id)).seq!);
    await c.close();

    const oldPort = server.port;
    await server.restart();
    expect(server.port).toBeGreaterThan(0);
    void oldPort;

    // account
    const got = await api(server, 'GET', `/admin/accounts/${accountId}`);
    expect(got.status, got.text).toBe(200);
    expect(got.body).toMatchObject({ account_id: accountId, name: 'durable', partner_id: 'partner_durable', created_at: account.created_at });
    expect([...got.body.rooms].sort()).toEqual(['BID_REQUEST', 'PAYMENT_FAILED', 'PAYMENT_SETTLED']);

    // keys: list survives, the active token still authenticates, the inactive one is still inactive
    const keys = await api(server, 'GET', `/admin/accounts/${accountId}/api-keys`);
    expect(keys.status).toBe(200);
    expect(keys.text).toContain(inactive.key_id);
    const d = await WsTestClient.connect(server.wsUrl);
    const auth = await d.authenticate(token);
    expect(auth.payload.account_id).toBe(accountId);
    const e = await WsTestClient.connect(server.wsUrl);
    const bad = await e.authenticateRaw(inactive.token);
    expect(bad.payload?.code).toBe('AUTH_API_KEY_INACTIVE');

    // the event log: resume from 0 replays the pre-restart events in order
    const sub = await d.subscribe(['ALL'], 0);
    expect(sub.payload.resumed_from).toBe(0);
    const replayed = [];
    for (const id of ids) replayed.push(await d.next((f) => f.msg_id === id));
    expect(replayed.map((f) => f.seq)).toEqual(seqsBefore);

    // seq continues after the restart
    const after = await publish(server, eventBody('PAYMENT_FAILED', [accountId]));
    const live = await d.next((f) => f.msg_id === after.msg_id);
    expect(live.seq!).toBeGreaterThan(Math.max(...seqsBefore));
    const all = d.history.filter(isEventFrame).map((f) => f.seq!);
    for (let i = 1; i < all.length; i++) expect(all[i]!).toBeGreaterThan(all[i - 1]!);
  });

  it('the admin token and the data dir are reused across restart; a SIGKILLed server restarts with its data', async () => {
    const server = await startTestServer();
    const { accountId, token } = await createAccountWithKey(server);
    const r1 = await publish(server, eventBody(EVENT_TYPES[0], [accountId]));
    await server.kill9();
    await server.restart();
    const list = await api(server, 'GET', '/admin/accounts');
    expect(list.status).toBe(200);
    expect(list.text).toContain(accountId);
    const c = await connectAuthed(server.wsUrl, token);
    await c.subscribe(['ALL'], 0);
    const f = await c.next((x) => x.msg_id === r1.msg_id);
    expect(f.msg_type).toBe(EVENT_TYPES[0]);
    // the idempotency record survives too: re-posting the same msg_id delivers nothing new
    const again = await api(server, 'POST', '/v1/events', eventBody(EVENT_TYPES[0], [accountId], { msg_id: r1.msg_id }));
    expect(again.status, again.text).toBe(202);
    expect(again.body.msg_id).toBe(r1.msg_id);
    const [before] = await barrier(server, accountId, [c]);
    expect(before).toEqual([]);
  });
});
