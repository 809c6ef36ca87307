/**
 * The partner docs' raw-HMAC Python verifier (examples/webhooks/verify_raw.py, shown in
 * docs/webhooks-verify.md) run by Python 3 against real deliveries of a real server: it accepts
 * them, during a secret rotation with either secret, and rejects a tampered body or a wrong
 * secret. (The library-based Python and Go versions need packages from registries this machine
 * cannot reach and are not executed.)
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

const SCRIPT = path.join(REPO_ROOT, 'examples', 'webhooks', 'verify_raw.py');

let server: TestServer;
let receiver: Server;
let receiverUrl = '';
const deliveries: Array<{ headers: IncomingHttpHeaders; body: string }> = [];

beforeAll(async () => {
  server = await startTestServer();
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  await new Promise<void>((r) => receiver.close(() => r()));
  await stopAll();
});

function python(input: unknown): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('python3', [SCRIPT], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(JSON.stringify(input));
  });
}

function headersOf(h: IncomingHttpHeaders): Record<string, string> {
  return {
    'Webhook-Id': String(h['webhook-id']),
    'Webhook-Timestamp': String(h['webhook-timestamp']),
    'Webhook-Signature': String(h['webhook-signature']),
  };
}

async function deliveryOf(accountId: string): Promise<{ msgId: string; headers: IncomingHttpHeaders; body: string }> {
  const { msg_id: msgId } = await publish(server, { msg_type: 'PAYMENT_SETTLED', account_ids: [accountId], payload: samplePayload('PAYMENT_SETTLED') });
  const d = await waitFor(() => deliveries.find((x) => x.headers['webhook-id'] === msgId), 20_000, 'the delivery');
  return { msgId, ...d };
}

describe('docs: raw-HMAC webhook verification in Python (standard library only)', () => {
  it('accepts a real delivery and reads its msg_id (and seq when the server sends it)', async () => {
    const { accountId } = await createAccountWithKey(server);
    const wh = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: receiverUrl });
    expect(wh.status).toBe(201);
    const { msgId, headers, body } = await deliveryOf(accountId);
    const ok = await python({ secret: wh.body.secret, headers: headersOf(headers), body });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const out = JSON.parse(ok.stdout) as { msg_id: string; seq: number | null; msg_type: string };
    expect(out).toMatchObject({ msg_id: msgId, msg_type: 'PAYMENT_SETTLED' });
    expect(out.seq).toBe((JSON.parse(body) as { seq?: number }).seq ?? null);

    const tampered = await python({ secret: wh.body.secret, headers: headersOf(headers), body: body.replace('"PAYMENT_SETTLED"', '"PAYMENT_FAILED"') });
    expect(tampered).toMatchObject({ code: 1, stderr: 'rejected: no matching signature\n' });
    const otherSecret = await python({ secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}`, headers: headersOf(headers), body });
    expect(otherSecret).toMatchObject({ code: 1, stderr: 'rejected: no matching signature\n' });
    const missing = await python({ secret: wh.body.secret, headers: { 'webhook-id': msgId }, body });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing webhook-id, webhook-timestamp or webhook-signature/);
  });

  it('during a secret rotation the delivery carries two signatures; either secret verifies it', async () => {
    const { accountId } = await createAccountWithKey(server);
    const wh = await api(server, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: receiverUrl });
    const rotated = await api(server, 'POST', `/admin/webhooks/${wh.body.webhook_id}/rotate-secret`, {});
    expect(rotated.status).toBeLessThan(300);
    const { headers, body } = await deliveryOf(accountId);
    expect(String(headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [wh.body.secret as string, rotated.body.secret as string]) {
      const r = await python({ secret, headers: headersOf(headers), body });
      expect(r.code, r.stderr).toBe(0);
    }
  });
});
