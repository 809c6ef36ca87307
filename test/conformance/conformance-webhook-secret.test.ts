/**
 * SPEC §3.2: `POST /admin/accounts/{account_id}/webhooks` `{ "url", "secret"? }` → 201
 * `{ "webhook_id", "url", "secret", "enabled": true }`; SPEC §4: `webhook-signature: v1,<base64
 * HMAC-SHA256 over "{id}.{timestamp}.{body}" with the endpoint secret>`. The SPEC puts no format on
 * a caller-chosen secret: an operator registering the partner's own secret gets 201, and the
 * deliveries are signed with that secret.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { startReceiver, type Receiver } from '../webhooks/helpers.js';

const SECRET = 'partner-chosen-secret-123';

describe('SPEC §3.2/§4 webhook endpoint with a caller-chosen secret', () => {
  let server: TestServer;
  let receiver: Receiver;
  beforeAll(async () => {
    server = await startTestServer();
    receiver = await startReceiver(() => 200);
  });
  afterAll(async () => {
    await receiver.close();
    await stopAll();
  });

  it('201 echoing the secret, and deliveries signed with it', async () => {
    const { accountId } = await createAccountWithKey(server);
    const created = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `${receiver.url}/hook`, secret: SECRET });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ url: `${receiver.url}/hook`, secret: SECRET, enabled: true });
    expect(typeof created.body.webhook_id).toBe('string');

    const { msg_id } = await publish(server, eventBody('PAYMENT_SETTLED', [accountId]));
    const req = await waitFor(() => receiver.received.find((r) => r.json?.msg_id === msg_id), 10_000, 'webhook delivery');
    const id = String(req.headers['webhook-id']);
    const ts = String(req.headers['webhook-timestamp']);
    const expected = createHmac('sha256', SECRET).update(`${id}.${ts}.${req.body}`).digest('base64');
    const sigs = String(req.headers['webhook-signature']).split(' ');
    expect(sigs).toContain(`v1,${expected}`);
  });
});
