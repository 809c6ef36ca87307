/**
 * End-to-end webhook tests: the real server (child process, embedded store) delivering to a real
 * node:http receiver on 127.0.0.1, verified with the `standardwebhooks` library as a partner would.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { api, createAccount, createKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed } from '../helpers/ws-client.js';
import { startReceiver, type Receiver } from './helpers.js';

const receivers: Receiver[] = [];
afterAll(async () => {
  await closeAllClients();
  await stopAll();
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
}

async function addWebhook(server: TestServer, accountId: string, url: string, body: Record<string, unknown> = {}) {
  const res = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url, ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as { webhook_id: string; url: string; secret: string; enabled: boolean };
}

async function deliveriesOf(server: TestServer, query: string) {
  const res = await api(server, 'GET', `/admin/deliveries?${query}`);
  expect(res.status, res.text).toBe(200);
  return res.body.deliveries as Array<{ delivery_id: string; msg_id: string; status: string; attempt_count: number }>;
}

const acked = (rx: Receiver) => rx.received.filter((r) => r.status >= 200 && r.status < 300);

describe('webhooks end to end', () => {
  let server: TestServer;

  it('starts a server', async () => {
    server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,300ms', TPX_WEBHOOK_TIMEOUT_MS: '2000', TPX_SOURCE_ID: 'tpx_it' } });
  });

  it('delivers the envelope, signed, with the msg_id of the WebSocket frame', async () => {
    const rx = await receiver();
    const account = await createAccount(server, { partner_id: `partner_${Date.now()}` });
    const key = await createKey(server, account.account_id);
    const hook = await addWebhook(server, account.account_id, `${rx.url}/tpx`);
    expect(hook.secret).toMatch(/^whsec_/);
    expect(hook.enabled).toBe(true);
    const ws = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    const res = await publish(server, eventBody('BID_REQUEST', [account.account_id]));
    const frame = await ws.nextOfType('BID_REQUEST');
    await waitFor(() => rx.received.length === 1, 10_000, 'webhook');
    const got = rx.received[0];
    expect(frame.msg_id).toBe(res.msg_id);
    expect(got.json.msg_id).toBe(frame.msg_id);
    expect(got.headers['webhook-id']).toBe(frame.msg_id);
    expect(new Webhook(hook.secret).verify(got.body, got.headers as Record<string, string>)).toEqual(got.json);
    expect(got.json).toMatchObject({ msg_type: 'BID_REQUEST', source_id: 'tpx_it', destination_id: account.partner_id });
    expect(got.json.payload).toEqual(frame.payload);
    expect(Number.isInteger(got.json.sent_at)).toBe(true);
    expect(got.json.sent_at).toBeLessThan(1e11); // seconds, not milliseconds
    expect(Object.keys(got.json).sort()).toEqual(['destination_id', 'msg_id', 'msg_type', 'payload', 'sent_at', 'seq', 'source_id']);
    // SPEC §4: seq is the event's seq in the account's stream, the same number the frame carries.
    expect(got.json.seq).toBe(frame.seq);
    expect(got.json.seq).toBe(1);
    expect(Object.keys(got.json)).toEqual(['msg_type', 'msg_id', 'seq', 'sent_at', 'source_id', 'destination_id', 'payload']);

    // The publisher's source_id wins; an account without partner_id is addressed by account_id.
    const plain = await createAccount(server);
    const rx2 = await receiver();
    await addWebhook(server, plain.account_id, rx2.url);
    await publish(server, eventBody('PAYMENT_SETTLED', [plain.account_id], { source_id: 'billing' }));
    await publish(server, eventBody('PAYMENT_SETTLED', [plain.account_id]));
    await waitFor(() => rx2.received.length === 2, 10_000, 'second and third webhooks');
    expect(rx2.received.map((r) => r.json.seq).sort()).toEqual([1, 2]); // per account: this one's stream starts at 1 too
    expect(rx2.received.find((r) => r.json.seq === 1)!.json).toMatchObject({ source_id: 'billing', destination_id: plain.account_id });
  });

  it('500 → 500 → 200 gives exactly one acknowledged delivery, attempts visible', async () => {
    const rx = await receiver((_req, _b, n) => (n < 2 ? 500 : 200));
    const account = await createAccount(server);
    await addWebhook(server, account.account_id, rx.url);
    const { msg_id } = await publish(server, eventBody('AUCTION_RESULT', [account.account_id]));
    await waitFor(async () => (await deliveriesOf(server, `account_id=${account.account_id}`))[0]?.status === 'succeeded', 10_000, 'success');
    await sleep(500);
    expect(rx.received.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(acked(rx)).toHaveLength(1);
    expect(rx.received.every((r) => r.headers['webhook-id'] === msg_id)).toBe(true);
    const [d] = await deliveriesOf(server, `account_id=${account.account_id}`);
    const detail = await api(server, 'GET', `/admin/deliveries/${d.delivery_id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.attempts.map((a: { status_code: number }) => a.status_code)).toEqual([500, 500, 200]);
    expect(detail.body.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['retry', 'retry', 'succeeded']);
    for (const a of detail.body.attempts) {
      expect(typeof a.attempted_at).toBe('string');
      expect(a.latency_ms).toBeGreaterThanOrEqual(0);
    }
  });

  it('dead-letters after the schedule, then a manual retry (single and by range) delivers', async () => {
    let fail = true;
    const rx = await receiver(() => (fail ? 500 : 200));
    const account = await createAccount(server);
    await addWebhook(server, account.account_id, rx.url);
    await publish(server, eventBody('PAYMENT_FAILED', [account.account_id]));
    await publish(server, eventBody('PAYMENT_CHARGED', [account.account_id]));
    await waitFor(async () => {
      const ds = await deliveriesOf(server, `account_id=${account.account_id}&status=failed`);
      return ds.length === 2;
    }, 15_000, 'two dead letters');
    expect(rx.received).toHaveLength(8); // 2 × (1 + 3 retries)
    const failed = await deliveriesOf(server, `account_id=${account.account_id}&status=failed`);
    const detail = await api(server, 'GET', `/admin/deliveries/${failed[0].delivery_id}`);
    expect(detail.body.attempts).toHaveLength(4);
    expect(detail.body.attempts[3].outcome).toBe('failed');
    expect(detail.body.attempts[3].error).toMatch(/500/);

    fail = false;
    const one = await api(server, 'POST', `/admin/deliveries/${failed[0].delivery_id}/retry`);
    expect(one.status, one.text).toBe(202);
    await waitFor(() => acked(rx).length === 1, 10_000, 'manual retry');
    expect(acked(rx)[0].json.msg_id).toBe(failed[0].msg_id);

    const range = await api(server, 'POST', `/admin/accounts/${account.account_id}/deliveries/retry`, {
      since: new Date(Date.now() - 3_600_000).toISOString(),
      until: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(range.status, range.text).toBe(202);
    expect(range.body).toEqual({ retried: 1 });
    await waitFor(() => acked(rx).length === 2, 10_000, 'range retry');
    await sleep(300);
    expect(new Set(acked(rx).map((r) => r.json.msg_id)).size).toBe(2);
    expect(await deliveriesOf(server, `account_id=${account.account_id}&status=succeeded`)).toHaveLength(2);

    expect((await api(server, 'POST', `/admin/deliveries/nope/retry`)).status).toBe(404);
  });

  it('410 disables the endpoint with a visible reason; enabling clears it', async () => {
    let gone = true;
    const rx = await receiver(() => (gone ? 410 : 200));
    const account = await createAccount(server);
    const hook = await addWebhook(server, account.account_id, rx.url);
    await publish(server, eventBody('BID_OUTBID', [account.account_id]));
    await waitFor(async () => (await api(server, 'GET', `/admin/webhooks/${hook.webhook_id}`)).body.enabled === false, 10_000, 'disabled');
    const disabled = (await api(server, 'GET', `/admin/webhooks/${hook.webhook_id}`)).body;
    expect(disabled.disabled_reason).toMatch(/410/);
    expect(rx.received).toHaveLength(1);
    const [d] = await deliveriesOf(server, `account_id=${account.account_id}`);
    expect(d.status).toBe('failed');

    // While disabled nothing is sent (SPEC §4: deliveries are created for enabled endpoints only).
    await publish(server, eventBody('BID_OUTBID', [account.account_id]));
    await sleep(300);
    expect(rx.received).toHaveLength(1);
    gone = false;
    const en = await api(server, 'PATCH', `/admin/webhooks/${hook.webhook_id}`, { enabled: true });
    expect(en.status, en.text).toBe(200);
    expect(en.body).toMatchObject({ enabled: true, disabled_reason: null, failing_since: null });
    await publish(server, eventBody('BID_OUTBID', [account.account_id]));
    await waitFor(() => acked(rx).length === 1, 10_000, 'delivery after re-enable');
  });

  it('rotation: both secrets sign during the grace period; each verifies alone', async () => {
    const rx = await receiver();
    const account = await createAccount(server);
    const hook = await addWebhook(server, account.account_id, rx.url);
    const rot = await api(server, 'POST', `/admin/webhooks/${hook.webhook_id}/rotate-secret`, { grace_period: '1h' });
    expect(rot.status, rot.text).toBe(200);
    const newSecret = rot.body.secret as string;
    expect(newSecret).not.toBe(hook.secret);
    expect(Date.parse(rot.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(3_500_000);
    await publish(server, eventBody('PAYMENT_SETTLED', [account.account_id]));
    await waitFor(() => rx.received.length === 1, 10_000, 'delivery');
    const got = rx.received[0];
    expect(String(got.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(new Webhook(newSecret).verify(got.body, got.headers as Record<string, string>)).toBeTruthy();
    expect(new Webhook(hook.secret).verify(got.body, got.headers as Record<string, string>)).toBeTruthy();

    // grace_period 0: the old secret stops signing at once.
    const rot2 = await api(server, 'POST', `/admin/webhooks/${hook.webhook_id}/rotate-secret`, { grace_period: '0' });
    expect(rot2.status).toBe(200);
    await publish(server, eventBody('PAYMENT_SETTLED', [account.account_id]));
    await waitFor(() => rx.received.length === 2, 10_000, 'delivery 2');
    const got2 = rx.received[1];
    expect(String(got2.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(new Webhook(rot2.body.secret).verify(got2.body, got2.headers as Record<string, string>)).toBeTruthy();
    expect(() => new Webhook(newSecret).verify(got2.body, got2.headers as Record<string, string>)).toThrow();
  });

  it('admin API: validation, listing, get, patch, delete, 404s', async () => {
    const account = await createAccount(server);
    const bad = await api(server, 'POST', `/admin/accounts/${account.account_id}/webhooks`, { url: 'http://127.0.0.1:9/', secret: 'whsec_c2hvcnQ=' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
    const ftp = await api(server, 'POST', `/admin/accounts/${account.account_id}/webhooks`, { url: 'ftp://example.com/' });
    expect(ftp.status).toBe(400);
    expect(ftp.body.code).toBe('UNSAFE_WEBHOOK_URL');
    const secret = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
    const hook = await addWebhook(server, account.account_id, 'http://127.0.0.1:9/x', { secret, description: 'primary' });
    expect(hook.secret).toBe(secret);
    const list = await api(server, 'GET', `/admin/accounts/${account.account_id}/webhooks`);
    expect(list.status).toBe(200);
    expect(list.body.webhooks).toHaveLength(1);
    expect(list.body.webhooks[0]).toMatchObject({ webhook_id: hook.webhook_id, description: 'primary', secret });
    const patched = await api(server, 'PATCH', `/admin/webhooks/${hook.webhook_id}`, { enabled: false, url: 'http://127.0.0.1:10/y' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ enabled: false, url: 'http://127.0.0.1:10/y', disabled_reason: 'disabled by an operator' });
    expect((await api(server, 'PATCH', `/admin/webhooks/${hook.webhook_id}`, { bogus: 1 })).status).toBe(400);
    expect((await api(server, 'GET', `/admin/accounts/${account.account_id}/webhooks/${hook.webhook_id}`)).status).toBe(200);
    expect((await api(server, 'DELETE', `/admin/webhooks/${hook.webhook_id}`)).status).toBe(204);
    expect((await api(server, 'GET', `/admin/webhooks/${hook.webhook_id}`)).status).toBe(404);
    expect((await api(server, 'POST', `/admin/accounts/00000000-0000-4000-8000-000000000000/webhooks`, { url: 'http://127.0.0.1:9/' })).status).toBe(404);
    expect((await api(server, 'GET', `/admin/deliveries?status=weird`)).status).toBe(400);
    expect((await api(server, 'GET', `/admin/webhooks/${hook.webhook_id}`, undefined, { token: null })).status).toBe(401);
  });

  it('PATCH and DELETE also live under /admin/accounts/{account_id}/webhooks/{webhook_id} (404 for another account)', async () => {
    const owner = await createAccount(server);
    const other = await createAccount(server);
    const hook = await addWebhook(server, owner.account_id, 'http://127.0.0.1:9/a', { description: 'scoped' });
    const path = `/admin/accounts/${owner.account_id}/webhooks/${hook.webhook_id}`;
    const foreign = `/admin/accounts/${other.account_id}/webhooks/${hook.webhook_id}`;

    // Another account's path: 404, and nothing changes.
    const wrongPatch = await api(server, 'PATCH', foreign, { description: 'hijacked' });
    expect(wrongPatch.status).toBe(404);
    expect(wrongPatch.body.code).toBe('NOT_FOUND');
    expect((await api(server, 'DELETE', foreign)).status).toBe(404);
    expect((await api(server, 'PATCH', `/admin/accounts/00000000-0000-4000-8000-000000000000/webhooks/${hook.webhook_id}`, { enabled: false })).status).toBe(404);
    expect((await api(server, 'GET', path)).body).toMatchObject({ description: 'scoped', enabled: true });

    // Same behaviour as PATCH /admin/webhooks/{id}: validation, operator disable, re-enable clears the reason.
    expect((await api(server, 'PATCH', path, { bogus: 1 })).status).toBe(400);
    const disabled = await api(server, 'PATCH', path, { enabled: false, description: 'paused' });
    expect(disabled.status, disabled.text).toBe(200);
    expect(disabled.body).toMatchObject({ webhook_id: hook.webhook_id, account_id: owner.account_id, enabled: false, description: 'paused', disabled_reason: 'disabled by an operator' });
    const enabled = await api(server, 'PATCH', path, { enabled: true, url: 'http://127.0.0.1:10/b' });
    expect(enabled.body).toMatchObject({ enabled: true, disabled_reason: null, url: 'http://127.0.0.1:10/b' });
    expect((await api(server, 'GET', `/admin/webhooks/${hook.webhook_id}`)).body).toMatchObject({ enabled: true, url: 'http://127.0.0.1:10/b', description: 'paused' });

    expect((await api(server, 'DELETE', path)).status).toBe(204);
    expect((await api(server, 'GET', path)).status).toBe(404);
    expect((await api(server, 'DELETE', path)).status).toBe(404);
    expect((await api(server, 'PATCH', path, { enabled: true })).status).toBe(404);
    expect((await api(server, 'DELETE', path, undefined, { token: null })).status).toBe(401);
  });

  it('exposes webhook metrics', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/tpx_webhook_attempts_total\{outcome="succeeded",reason="2xx"\} \d+/);
    expect(text).toMatch(/tpx_webhook_attempts_total\{outcome="failed",reason="410"\} 1/);
    expect(text).toContain('tpx_webhook_delivery_latency_seconds_bucket');
    expect(text).toMatch(/tpx_webhook_deliveries_pending \d+/);
    expect(text).toMatch(/tpx_webhook_deliveries_failed \d+/);
  });
});

describe('SSRF guard', () => {
  it('refuses loopback/private endpoints with UNSAFE_WEBHOOK_URL when ALLOW_PRIVATE=false', async () => {
    const server = await startTestServer({ env: { TPX_WEBHOOK_ALLOW_PRIVATE: 'false' } });
    const account = await createAccount(server);
    for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/', 'http://10.0.0.8/', 'http://169.254.169.254/latest', 'http://[::ffff:127.0.0.1]/', 'http://2130706433/']) {
      const res = await api(server, 'POST', `/admin/accounts/${account.account_id}/webhooks`, { url });
      expect(res.status, `${url}: ${res.text}`).toBe(400);
      expect(res.body.code).toBe('UNSAFE_WEBHOOK_URL');
    }
    const creds = await api(server, 'POST', `/admin/accounts/${account.account_id}/webhooks`, { url: 'https://user:pw@example.com/' });
    expect(creds.body.code).toBe('UNSAFE_WEBHOOK_URL');
    await server.stop();
  });
});

describe('durability across kill -9', () => {
  it('kill -9 mid-schedule then restart: every event acknowledged exactly once', async () => {
    let mode: 'fail' | 'ok' = 'fail';
    const rx = await receiver(() => (mode === 'fail' ? 503 : 200));
    const server = await startTestServer({ env: { TPX_WEBHOOK_RETRY_SCHEDULE: '200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms', TPX_WEBHOOK_TIMEOUT_MS: '1000' } });
    const accounts = [await createAccount(server), await createAccount(server)];
    for (const a of accounts) await addWebhook(server, a.account_id, rx.url);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await publish(server, eventBody('BID_REQUEST', [accounts[i % 2].account_id]));
      ids.push(r.msg_id);
    }
    // Every delivery has been tried at least once and is now mid-schedule.
    await waitFor(() => new Set(rx.received.map((r) => r.json?.msg_id)).size === 20, 10_000, 'first attempts');
    await server.kill9();
    mode = 'ok';
    await server.restart();
    await waitFor(() => new Set(acked(rx).map((r) => r.json.msg_id)).size === 20, 20_000, 'all acknowledged after restart');
    await sleep(1500);
    const ackCounts = new Map<string, number>();
    for (const r of acked(rx)) ackCounts.set(r.json.msg_id, (ackCounts.get(r.json.msg_id) ?? 0) + 1);
    expect([...ackCounts.keys()].sort()).toEqual([...ids].sort());
    expect([...ackCounts.values()].every((n) => n === 1)).toBe(true);
    for (const a of accounts) {
      const ds = await deliveriesOf(server, `account_id=${a.account_id}`);
      expect(ds).toHaveLength(10);
      expect(ds.every((d) => d.status === 'succeeded')).toBe(true);
    }
    // A clean restart afterwards sends nothing again.
    const before = rx.received.length;
    await server.restart();
    await sleep(1000);
    expect(rx.received.length).toBe(before);
  }, 90_000); // three server starts: slow on a loaded machine
});
