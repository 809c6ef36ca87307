/**
 * SPEC §2.5: keys deactivated, revoked or expiring while connections use them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { barrier, expectError, msgIds } from '../helpers/expect.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, WsTestClient } from '../helpers/ws-client.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_AUTH_TIMEOUT_MS: '20000' } });
});
afterEach(() => closeAllClients());
afterAll(() => stopAll());

describe('deactivate / activate', () => {
  it('deactivating a key closes its connections (AUTH_API_KEY_INACTIVE, 4001 within 2 s); an event published right after is not received', async () => {
    const { accountId, key } = await createAccountWithKey(server);
    const c1 = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    const c2 = await connectAuthed(server.wsUrl, key.token, ['BID_REQUEST']);
    const r = await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(r.status, r.text).toBeLessThan(300);
    const after = await publish(server, eventBody('BID_REQUEST', [accountId]));
    for (const c of [c1, c2]) {
      await expectError(c, 'AUTH_API_KEY_INACTIVE', 5000);
      expect((await c.waitClosed(5000)).code).toBe(4001);
      expect(c.history.some((f) => f.msg_id === after.msg_id), 'event published after deactivate was delivered').toBe(false);
    }
  });

  it('only the deactivated key is affected: another key of the same account keeps receiving', async () => {
    const { accountId, key } = await createAccountWithKey(server);
    const other = await createKey(server, accountId, { name: 'second' });
    const victim = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    const survivor = await connectAuthed(server.wsUrl, other.token, ['ALL']);
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const ev = await publish(server, eventBody('BID_OUTBID', [accountId]));
    expect((await victim.waitClosed(5000)).code).toBe(4001);
    const [before] = await barrier(server, accountId, [survivor]);
    expect(msgIds(before!)).toEqual([ev.msg_id]);
    expect(survivor.isOpen).toBe(true);
  });

  it('after activate the key can authenticate again', async () => {
    const { key } = await createAccountWithKey(server);
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const c = await WsTestClient.connect(server.wsUrl);
    const f = await c.authenticateRaw(key.token);
    expect(f.payload?.code).toBe('AUTH_API_KEY_INACTIVE');
    expect((await c.waitClosed()).code).toBe(4001);
    const r = await api(server, 'POST', `/admin/api-keys/${key.key_id}/activate`);
    expect(r.status, r.text).toBeLessThan(300);
    const d = await WsTestClient.connect(server.wsUrl);
    await d.authenticate(key.token);
  });
});

describe('revoke', () => {
  it('DELETE closes the key’s connections with 4001 and the token is then rejected', async () => {
    const { accountId, key } = await createAccountWithKey(server);
    const c = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    const r = await api(server, 'DELETE', `/admin/api-keys/${key.key_id}`);
    expect(r.status, r.text).toBeLessThan(300);
    const after = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const closed = await c.waitClosed(5000);
    expect(closed.code).toBe(4001);
    const err = c.history.find((f) => f.msg_type === 'error');
    expect(err?.payload?.code, 'an AUTH_… error frame precedes the close').toMatch(/^AUTH_/);
    expect(c.history.some((f) => f.msg_id === after.msg_id)).toBe(false);

    const d = await WsTestClient.connect(server.wsUrl);
    const f = await d.authenticateRaw(key.token);
    expect(f.msg_type).toBe('error');
    expect(['AUTH_INVALID_API_KEY', 'AUTH_API_KEY_INACTIVE']).toContain(f.payload.code);
    expect((await d.waitClosed()).code).toBe(4001);
  });

  it('a revoked key cannot be re-activated into a working token', async () => {
    const { key } = await createAccountWithKey(server);
    await api(server, 'DELETE', `/admin/api-keys/${key.key_id}`);
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/activate`);
    const d = await WsTestClient.connect(server.wsUrl);
    const f = await d.authenticateRaw(key.token);
    expect(f.msg_type).toBe('error');
  });
});

describe('expiry', () => {
  it('a key expiring while connected → AUTH_API_KEY_EXPIRED and close 4001', async () => {
    const { accountId } = await createAccountWithKey(server);
    const expiresAt = Date.now() + 2500;
    const key = await createKey(server, accountId, { expires_at: new Date(expiresAt).toISOString() });
    const c = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    await expectError(c, 'AUTH_API_KEY_EXPIRED', 10_000);
    expect((await c.waitClosed(5000)).code).toBe(4001);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt - 50);
  });

  it('expires_at is returned on creation and in the key list', async () => {
    const { accountId } = await createAccountWithKey(server);
    const iso = new Date(Math.ceil((Date.now() + 3_600_000) / 1000) * 1000).toISOString();
    const key = await createKey(server, accountId, { expires_at: iso });
    expect(Date.parse(key.expires_at!)).toBe(Date.parse(iso));
    expect(key.status).toBe('active');
  });
});
