/**
 * SPEC §3.2: `POST /admin/accounts/{account_id}/webhooks` `{ "url", "secret"? }`; "`GET`, `PATCH`,
 * `DELETE` alike". An operator changing the endpoint's secret with PATCH (the same fields as create)
 * must get 200 with the new secret, and the next delivery must be signed with it (SPEC §4).
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { startReceiver, type Receiver } from '../webhooks/helpers.js';

describe('review4: PATCH a webhook endpoint with a new secret', () => {
  let server: TestServer;
  let receiver: Receiver;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_WEBHOOK_ALLOW_PRIVATE: 'true' } });
    receiver = await startReceiver(() => 200);
  });
  afterAll(async () => {
    await receiver.close();
    await stopAll();
  });

  it('PATCH { secret } answers 200 and later deliveries are signed with it', async () => {
    const { accountId } = await createAccountWithKey(server);
    const created = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `${receiver.url}/hook` });
    expect(created.status, created.text).toBe(201);
    const id = created.body.webhook_id as string;
    const NEW = 'partner-rotated-secret-456';
    const patched = await api(server, 'PATCH', `/admin/accounts/${accountId}/webhooks/${id}`, { secret: NEW });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.secret).toBe(NEW);

    const { msg_id } = await publish(server, eventBody('PAYMENT_SETTLED', [accountId]));
    const req = await waitFor(() => receiver.received.find((r) => r.json?.msg_id === msg_id), 10_000, 'webhook delivery');
    const ts = String(req.headers['webhook-timestamp']);
    const expected = createHmac('sha256', NEW).update(`${msg_id}.${ts}.${req.body}`).digest('base64');
    expect(String(req.headers['webhook-signature']).split(' ')).toContain(`v1,${expected}`);
  });
});
