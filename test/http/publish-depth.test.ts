/**
 * SPEC §3.1: JSON nested too deeply in a publish answers 400, never 500 (issue 9, defect 9: about
 * 10,000 levels made JSON.stringify overflow the stack and the route answer 500). The payload may
 * nest 64 levels (the payload object is level 1); the check runs before anything recursive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';

let server: TestServer;
let accountId: string;

beforeAll(async () => {
  server = await startTestServer();
  ({ accountId } = await createAccountWithKey(server, { name: 'depth' }));
});
afterAll(() => stopAll());

/** `depth` nested objects: {"a":{"a":…{}…}}, built as text (JSON.stringify itself would overflow). */
function deepJson(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

function expectErrorBody(res: { status: number; body: any; text: string }, status: number, code: string): void {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  expect(res.body?.code, res.text.slice(0, 500)).toBe(code);
  expect(typeof res.body?.error).toBe('string');
}

describe('JSON nested too deeply (≈10,000 levels) answers 400, never 500', () => {
  const envelope = (payloadJson: string) =>
    `{"msg_type":"PAYMENT_SETTLED","account_ids":["${'0'.repeat(8)}-0000-0000-0000-000000000000"],"payload":${payloadJson}}`;

  it('inside the payload of a single publish', async () => {
    const deep = deepJson(10_000).replace(/^\{/, '{"conversation_id":"c","payment_id":"p","total_charged_cents":1,');
    const res = await api(server, 'POST', '/v1/events', undefined, { rawBody: envelope(deep) });
    expectErrorBody(res, 400, 'VALIDATION_FAILED');
    expect(res.body.fields).toEqual([{ field: 'payload', message: expect.stringMatching(/deeper than 64/) }]);
  });

  it('in any other field of the publish body (msg_type, account_ids, source_id)', async () => {
    const fields: Record<string, string> = { msg_type: '"PAYMENT_SETTLED"', account_ids: `["${accountId}"]`, payload: '{}' };
    for (const field of ['msg_type', 'account_ids', 'source_id', 'msg_id', 'extra']) {
      const members = { ...fields, [field]: deepJson(10_000) };
      const body = '{' + Object.entries(members).map(([k, v]) => `"${k}":${v}`).join(',') + '}';
      const res = await api(server, 'POST', '/v1/events', undefined, { rawBody: body });
      expectErrorBody(res, 400, 'VALIDATION_FAILED');
    }
  });

  it('a deeply nested array as the payload, and as the whole body', async () => {
    const arr = '['.repeat(10_000) + ']'.repeat(10_000);
    for (const raw of [envelope(arr), arr]) {
      const res = await api(server, 'POST', '/v1/events', undefined, { rawBody: raw });
      expectErrorBody(res, 400, 'VALIDATION_FAILED');
    }
  });

  it('inside one event of a batch, naming it', async () => {
    const ok = JSON.stringify(eventBody('PAYMENT_SETTLED', [accountId]));
    const res = await api(server, 'POST', '/v1/events/batch', undefined, { rawBody: `{"events":[${ok},${envelope(deepJson(10_000))}]}` });
    expectErrorBody(res, 400, 'VALIDATION_FAILED');
    expect(res.body.fields).toEqual([{ field: 'events[1].payload', message: expect.stringMatching(/deeper than 64/) }]);
  });

  it('a payload 64 levels deep is accepted; 65 is refused', async () => {
    // The payload object itself is level 1.
    const at = (depth: number) => deepJson(depth).replace(/^\{/, '{"conversation_id":"c","payment_id":"p","total_charged_cents":1,');
    const ok = await api(server, 'POST', '/v1/events', undefined, { rawBody: envelope(at(64)).replace(/"0{8}-[0-9-]+"/, `"${accountId}"`) });
    expect(ok.status, ok.text).toBe(202);
    const tooDeep = await api(server, 'POST', '/v1/events', undefined, { rawBody: envelope(at(65)).replace(/"0{8}-[0-9-]+"/, `"${accountId}"`) });
    expectErrorBody(tooDeep, 400, 'VALIDATION_FAILED');
  });

  it('deep JSON on an admin route is a 400 too, and the server keeps serving', async () => {
    const res = await api(server, 'POST', '/admin/accounts', undefined, { rawBody: `{"name":${deepJson(10_000)}}` });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(typeof res.body.code).toBe('string');
    await publish(server, eventBody('PAYMENT_SETTLED', [accountId]));
  });
});
