/**
 * The OpenAPI 3.1 document (docs/openapi.json) is generated from the route schemas, so it must
 * (1) be exactly what the server generates now (it cannot drift from the code), (2) be a valid
 * OpenAPI 3.1 document, and (3) be true: real answers of a running server, for every documented
 * operation, have a documented status and validate against the documented schema.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOpenApiDocument } from '../../scripts/openapi-document.js';
import { api, REPO_ROOT, startTestServer, stopAll, waitFor, type ApiResponse, type TestServer } from '../helpers/server.js';
import { EVENT_TYPES, samplePayload } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed } from '../helpers/ws-client.js';
import { closeAllSse, SseTestClient } from '../helpers/sse-client.js';

type Json = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

const committed = async () => readFile(path.join(REPO_ROOT, 'docs/openapi.json'), 'utf8');

describe('docs/openapi.json', () => {
  it('is exactly what the server generates from its route schemas (run `npm run openapi` after changing a route)', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tpx-openapi-test-'));
    try {
      const generated = await fetchOpenApiDocument(dataDir);
      const file = await committed();
      if (generated !== file) {
        const a = file.split('\n');
        const b = generated.split('\n');
        const line = a.findIndex((l, i) => l !== b[i]);
        expect.fail(`docs/openapi.json is stale (first difference at line ${line + 1}: ${JSON.stringify(a[line])} vs generated ${JSON.stringify(b[line])}): run npm run openapi`);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('is a valid OpenAPI 3.1 document, and the validator does see a broken one', async () => {
    const doc = JSON.parse(await committed()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);

    const broken = structuredClone(doc);
    broken.paths['/v1/events'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nope' };
    expect((await validate(broken as Parameters<typeof validate>[0])).valid).toBe(false);
  });

  it('documents the partner, publish and admin APIs, each operation with its replies and its credentials', async () => {
    const doc = JSON.parse(await committed()) as Json;
    for (const p of ['/v1/events', '/v1/events/batch', '/v1/events/stream', '/admin/accounts', '/admin/accounts/{account_id}/api-keys', '/admin/deliveries']) {
      expect(doc.paths[p], p).toBeDefined();
    }
    expect(Object.keys(doc.paths['/v1/events/stream'].get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(Object.keys(doc.paths['/v1/events/stream'].get.responses).sort()).toEqual(['200', '400', '401', '403', '503']);
    // The publish body references the payload schemas of the 11 events; the log's frames too.
    const refs = JSON.stringify(doc.components.schemas.PublishRequest);
    for (const type of EVENT_TYPES) expect(refs).toContain(`"#/components/schemas/${type}"`);
    for (const [route, item] of Object.entries<Json>(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const what = `${method.toUpperCase()} ${route}`;
        expect(Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)), `${what}: a success reply`).toBe(true);
        for (const [status, reply] of Object.entries<Json>(op.responses)) expect(reply.description, `${what} ${status}`).not.toBe('Default Response');
        if (route.startsWith('/admin/') || (route.startsWith('/v1/events') && method === 'post')) {
          expect(op.security, what).toEqual([{ adminToken: [] }]);
          expect(op.responses['401'], what).toBeDefined();
        }
        if (route === '/v1/events' && method === 'get') expect(op.security).toEqual([{ apiKey: [] }]);
      }
    }
  });
});

// ------------------------------------------------------------------ real answers against the document

/** Every JSON answer is checked against the schema documented for its operation, status and media type. */
class DocumentedApi {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly templates: Array<{ template: string; re: RegExp }>;
  readonly exercised = new Set<string>();

  constructor(readonly doc: Json) {
    addFormats(this.ajv);
    // Literal paths before templated ones (`/admin/api-keys/{key_id}/activate` is not a key id).
    this.templates = Object.keys(doc.paths)
      .map((template) => ({ template, re: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
      .sort((a, b) => a.template.split('{').length - b.template.split('{').length);
  }

  operations(): string[] {
    return Object.entries<Json>(this.doc.paths).flatMap(([p, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${p}`));
  }

  /** Asserts the answer is documented and matches its schema; returns the operation it belongs to. */
  check(method: string, url: string, status: number, contentType: string | null, body: unknown): string {
    const pathname = url.split('?')[0]!;
    const template = this.templates.find((t) => t.re.test(pathname))?.template;
    expect(template, `${method} ${pathname} is documented`).toBeDefined();
    const op = this.doc.paths[template!][method.toLowerCase()];
    const operation = `${method} ${template}`;
    expect(op, `${operation} is documented`).toBeDefined();
    const reply = op.responses[String(status)];
    expect(reply, `${operation} answered ${status}, which is not documented: ${JSON.stringify(body)?.slice(0, 300)}`).toBeDefined();
    this.exercised.add(operation);
    if (status === 204) {
      expect(reply.content, `${operation} 204 has no body`).toBeUndefined();
      expect(body).toBeUndefined();
      return operation;
    }
    const media = (contentType ?? '').split(';')[0]!.trim();
    expect(Object.keys(reply.content ?? {}), `${operation} ${status} media type`).toContain(media);
    if (media === 'application/json') {
      const key = `${operation} ${status}`;
      let check = this.compiled.get(key);
      if (!check) {
        // The schema with the document's components beside it, so `#/components/schemas/X` resolves.
        check = this.ajv.compile({ ...reply.content[media].schema, components: this.doc.components });
        this.compiled.set(key, check);
      }
      expect(check(body), `${key}: ${JSON.stringify(check.errors?.slice(0, 5))} in ${JSON.stringify(body).slice(0, 500)}`).toBe(true);
    }
    return operation;
  }
}

describe('the answer checker', () => {
  it('refuses answers the document does not describe: a wrong field type, an undocumented status, a wrong media type', async () => {
    const documented = new DocumentedApi(JSON.parse(await committed()));
    const account = { account_id: 'a', name: null, partner_id: null, rooms: ['BID_REQUEST'], created_at: '2025-01-01T00:00:00.000Z' };
    expect(documented.check('GET', '/admin/accounts', 200, 'application/json', { accounts: [account] })).toBe('GET /admin/accounts');
    expect(() => documented.check('GET', '/admin/accounts', 200, 'application/json', { accounts: [{ ...account, account_id: 1 }] })).toThrow();
    expect(() => documented.check('GET', '/admin/accounts', 200, 'application/json', { accounts: [{ ...account, rooms: ['NOPE'] }] })).toThrow();
    expect(() => documented.check('GET', '/admin/accounts', 418, 'application/json', {})).toThrow();
    expect(() => documented.check('GET', '/admin/accounts', 200, 'text/html', '<p>')).toThrow();
    expect(() => documented.check('POST', '/v1/events', 202, 'application/json', { msg_id: 'x' })).toThrow();
    const frame = { msg_type: 'BID_REQUEST', msg_id: 'm', seq: 1, sent_at: 1, payload: samplePayload('BID_REQUEST') };
    const page = { events: [frame], next_after_seq: 1, has_more: false };
    expect(documented.check('GET', '/v1/events', 200, 'application/json', page)).toBe('GET /v1/events');
    const wrongPayload = { ...frame, payload: { ...samplePayload('BID_REQUEST'), conversation_id: 5 } };
    expect(() => documented.check('GET', '/v1/events', 200, 'application/json', { ...page, events: [wrongPayload] })).toThrow();
  });
});

describe('real answers match the document', () => {
  let server: TestServer;
  let receiver: Server;
  let documented: DocumentedApi;

  beforeAll(async () => {
    // A webhook receiver that always fails: deliveries end failed (and retryable) after two attempts.
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(500, { 'content-type': 'text/plain' }).end('nope'));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    server = await startTestServer({ env: { TPX_WEBHOOK_ALLOW_PRIVATE: 'true', TPX_WEBHOOK_RETRY_SCHEDULE: '20ms', TPX_MAX_EVENT_BYTES: '8192' } });
    documented = new DocumentedApi(JSON.parse(await committed()));
  });
  afterAll(async () => {
    closeAllClients();
    closeAllSse();
    await stopAll();
    await new Promise((resolve) => receiver.close(resolve));
  });

  /** An API call whose answer is checked against the document. */
  async function call(method: string, url: string, body?: unknown, opts: Parameters<typeof api>[4] = {}): Promise<ApiResponse> {
    const res = await api(server, method, url, body, opts);
    documented.check(method, url, res.status, res.headers.get('content-type'), res.body);
    return res;
  }

  it('every documented operation answers as documented: successes and errors, including the 202 publish, a 400 VALIDATION_FAILED, GET /admin/accounts and GET /v1/events', async () => {
    const bad = { token: 'not-the-admin-token' };

    // ---- accounts
    const created = await call('POST', '/admin/accounts', { name: 'OpenAPI', partner_id: 'partner_openapi', rooms: ['ALL'] });
    expect(created.status).toBe(201);
    const A = created.body.account_id as string;
    const other = (await call('POST', '/admin/accounts', {})).body.account_id as string;
    expect((await call('POST', '/admin/accounts', { name: '', rooms: ['NOPE'], extra: 1 })).status).toBe(400);
    expect((await call('POST', '/admin/accounts', { partner_id: 'partner_openapi' })).status).toBe(409);
    expect((await call('POST', '/admin/accounts', undefined, { rawBody: '{nope' })).body.code).toBe('INVALID_JSON');
    expect((await call('POST', '/admin/accounts', undefined, { rawBody: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(400);
    expect((await call('POST', '/admin/accounts', { name: 'x'.repeat(2 * 1024 * 1024) })).status).toBe(413);
    const list = await call('GET', '/admin/accounts?limit=10');
    expect(list.status).toBe(200);
    expect(list.body.accounts.map((a: Json) => a.account_id)).toContain(A);
    expect((await call('GET', '/admin/accounts', undefined, bad)).status).toBe(401);
    expect((await call('GET', `/admin/accounts/${A}`)).status).toBe(200);
    expect((await call('GET', '/admin/accounts/not!an!id')).status).toBe(404);
    expect((await call('PATCH', `/admin/accounts/${A}`, { name: 'Renamed' })).body.name).toBe('Renamed');
    expect((await call('PATCH', `/admin/accounts/${A}`, { rooms: 'ALL' })).status).toBe(400);
    expect((await call('PATCH', '/admin/accounts/unknown-account', { name: 'x' })).status).toBe(404);

    // ---- keys
    const key = await call('POST', `/admin/accounts/${A}/api-keys`, { name: 'k', expires_at: '2099-01-01T00:00:00Z' });
    expect(key.status).toBe(201);
    const token = key.body.token as string;
    const key2 = (await call('POST', `/admin/accounts/${A}/api-keys`, {})).body;
    expect((await call('POST', `/admin/accounts/${A}/api-keys`, { expires_at: 'tomorrow' })).status).toBe(400);
    expect((await call('POST', '/admin/accounts/unknown-account/api-keys', {})).status).toBe(404);
    expect((await call('GET', `/admin/accounts/${A}/api-keys`)).body.api_keys).toHaveLength(2);
    expect((await call('GET', `/admin/api-keys/${key.body.key_id}`)).status).toBe(200);
    expect((await call('GET', '/admin/api-keys/unknown-key')).status).toBe(404);

    // ---- publish
    const published = await call('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [A], payload: samplePayload('BID_REQUEST') });
    expect(published.status).toBe(202);
    const invalid = await call('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [A], payload: { conversation_id: 7 } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe('VALIDATION_FAILED');
    expect(invalid.body.fields.map((f: Json) => f.field)).toContain('payload.conversation_id');
    expect((await call('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: ['no-such-account'], payload: samplePayload('BID_REQUEST') })).body.code).toBe(
      'UNKNOWN_ACCOUNT',
    );
    const tooLarge = await call('POST', '/v1/events', { msg_type: 'BID_REQUEST', account_ids: [A], payload: { ...samplePayload('BID_REQUEST'), pad: 'x'.repeat(9000) } });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.max_event_bytes).toBe(8192);
    expect((await call('POST', '/v1/events', {}, bad)).status).toBe(401);
    expect((await call('POST', '/v1/events', undefined, { rawBody: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(400);
    const batch = await call('POST', '/v1/events/batch', {
      events: EVENT_TYPES.map((type) => ({ msg_type: type, account_ids: [A], payload: samplePayload(type) })),
    });
    expect(batch.status).toBe(202);
    expect(batch.body.accepted).toBe(EVENT_TYPES.length);
    expect((await call('POST', '/v1/events/batch', { events: [] })).status).toBe(400);
    expect((await call('POST', '/v1/events/batch', { events: [{ msg_type: 'X' }] }, bad)).status).toBe(401);

    // ---- the partner's log: frames of every event type against the documented frame schemas
    const page = await call('GET', '/v1/events?after_seq=0&limit=1000', undefined, { token: null, headers: { 'x-api-key': token } });
    expect(page.status).toBe(200);
    expect(new Set(page.body.events.map((e: Json) => e.msg_type))).toEqual(new Set(EVENT_TYPES));
    expect((await call('GET', '/v1/events?limit=2', undefined, { token: null, headers: { 'x-api-key': token } })).body.has_more).toBe(true);
    expect((await call('GET', '/v1/events?after_seq=-1', undefined, { token: null, headers: { 'x-api-key': token } })).body.code).toBe('VALIDATION_FAILED');
    expect((await call('GET', '/v1/events?rooms=NOPE', undefined, { token: null, headers: { 'x-api-key': token } })).body.rooms).toEqual(['NOPE']);
    expect((await call('GET', '/v1/events', undefined, { token: null })).status).toBe(401);

    // ---- the SSE stream: a 200 text/event-stream whose first message is subscribed, and its refusals
    const sse = await SseTestClient.open(server, { token, rooms: ['ALL'] });
    documented.check('GET', '/v1/events/stream', sse.status, sse.headers['content-type'] ?? null, undefined);
    expect((await sse.next()).event).toBe('subscribed');
    const refusals: Array<[Parameters<typeof SseTestClient.open>[1], number]> = [
      [{}, 401],
      [{ token, rooms: ['NOPE'] }, 400],
      [{ token, lastEventId: 'x' }, 400],
    ];
    for (const [opts, status] of refusals) {
      const refused = await SseTestClient.open(server, opts);
      await refused.ended();
      expect(refused.status).toBe(status);
      documented.check('GET', '/v1/events/stream', refused.status, refused.headers['content-type'] ?? null, JSON.parse(refused.raw));
    }

    // ---- connections: one WebSocket and one SSE stream, described by every node
    const ws = await connectAuthed(server.wsUrl, token, ['ALL']);
    const connections = await call('GET', `/admin/connections?account_id=${A}`);
    expect(connections.body.connections.map((c: Json) => c.transport).sort()).toEqual(['sse', 'websocket']);
    const wsConnection = connections.body.connections.find((c: Json) => c.transport === 'websocket');
    expect((await call('POST', `/admin/connections/${wsConnection.connection_id}/disconnect`)).body.disconnected).toBe(true);
    expect((await call('POST', '/admin/connections/unknown/disconnect')).status).toBe(404);
    ws.close();

    // ---- key status (after the connections: deactivating closes the SSE stream)
    expect((await call('POST', `/admin/api-keys/${key2.key_id}/deactivate`)).body.disconnected).toBe(0);
    expect((await call('POST', `/admin/api-keys/${key2.key_id}/activate`)).body.status).toBe('active');
    expect((await call('POST', '/admin/api-keys/unknown-key/deactivate')).status).toBe(404);
    expect((await call('POST', '/admin/api-keys/unknown-key/activate')).status).toBe(404);
    expect((await call('GET', '/v1/events', undefined, { token: null, headers: { 'x-api-key': key2.token } })).status).toBe(200);
    await call('POST', `/admin/api-keys/${key2.key_id}/deactivate`);
    expect((await call('GET', '/v1/events', undefined, { token: null, headers: { 'x-api-key': key2.token } })).status).toBe(403);
    expect((await call('DELETE', `/admin/api-keys/${key2.key_id}`)).status).toBe(204);
    expect((await call('DELETE', `/admin/api-keys/${key2.key_id}`)).status).toBe(404);

    // ---- webhooks and deliveries
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const webhook = await call('POST', `/admin/accounts/${A}/webhooks`, { url: receiverUrl, description: 'failing on purpose' });
    expect(webhook.status).toBe(201);
    const W = webhook.body.webhook_id as string;
    expect((await call('POST', `/admin/accounts/${A}/webhooks`, { url: '' })).status).toBe(400);
    expect((await call('POST', '/admin/accounts/unknown-account/webhooks', { url: receiverUrl })).status).toBe(404);
    expect((await call('GET', `/admin/accounts/${A}/webhooks`)).body.webhooks).toHaveLength(1);
    expect((await call('GET', `/admin/accounts/${A}/webhooks/${W}`)).status).toBe(200);
    expect((await call('GET', `/admin/accounts/${other}/webhooks/${W}`)).status).toBe(404);
    expect((await call('GET', `/admin/webhooks/${W}`)).status).toBe(200);
    expect((await call('PATCH', `/admin/webhooks/${W}`, { description: 'still failing' })).status).toBe(200);
    expect((await call('PATCH', `/admin/accounts/${A}/webhooks/${W}`, { enabled: 'yes' })).status).toBe(400);
    expect((await call('PATCH', `/admin/accounts/${A}/webhooks/${W}`, { enabled: true })).status).toBe(200);
    expect((await call('POST', `/admin/webhooks/${W}/rotate-secret`, { grace_period: '1h' })).body.previous_secret_expires_at).not.toBeNull();
    expect((await call('POST', `/admin/webhooks/${W}/rotate-secret`, { grace_period: 'soon' })).status).toBe(400);

    await call('POST', '/v1/events', { msg_type: 'PAYMENT_FAILED', account_ids: [A], payload: samplePayload('PAYMENT_FAILED') });
    const failed = await waitFor(async () => {
      const r = await api(server, 'GET', `/admin/deliveries?account_id=${A}&status=failed`);
      return r.body.deliveries?.length ? r : null;
    }, 15_000, 'a failed delivery');
    documented.check('GET', '/admin/deliveries', failed.status, failed.headers.get('content-type'), failed.body);
    expect((await call('GET', '/admin/deliveries?status=nope')).status).toBe(400);
    const D = failed.body.deliveries[0].delivery_id as string;
    const detail = await call('GET', `/admin/deliveries/${D}`);
    expect(detail.body.attempts.length).toBeGreaterThanOrEqual(2);
    expect(detail.body.request.headers['webhook-id']).toBe(detail.body.delivery.msg_id);
    expect((await call('GET', '/admin/deliveries/unknown-delivery')).status).toBe(404);
    expect((await call('POST', `/admin/deliveries/${D}/retry`)).status).toBe(202);
    expect((await call('POST', '/admin/deliveries/unknown-delivery/retry')).status).toBe(404);
    expect((await call('POST', `/admin/accounts/${A}/deliveries/retry`, { since: '2000-01-01T00:00:00Z' })).status).toBe(202);
    expect((await call('POST', `/admin/accounts/${A}/deliveries/retry`, { since: 'then' })).status).toBe(400);
    expect((await call('DELETE', `/admin/accounts/${A}/webhooks/${W}`)).status).toBe(204);
    expect((await call('DELETE', `/admin/webhooks/${W}`)).status).toBe(404);
    expect((await call('PATCH', `/admin/accounts/${A}/webhooks/${W}`, {})).status).toBe(404);
    const W2 = (await call('POST', `/admin/accounts/${A}/webhooks`, { url: receiverUrl })).body.webhook_id;
    expect((await call('DELETE', `/admin/webhooks/${W2}`)).status).toBe(204);

    // ---- operator endpoints, health, metrics, the document itself
    expect((await call('GET', '/admin/stats')).body.node).toBeTruthy();
    expect(Object.keys((await call('GET', '/admin/samples')).body.samples).sort()).toEqual([...EVENT_TYPES].sort());
    const tail = await call('POST', '/admin/events/tail', { account_id: A, limit: 5 });
    expect(tail.body.events.length).toBe(5);
    expect((await call('POST', '/admin/events/tail', { cursor: 'not-a-cursor' })).status).toBe(400);
    expect((await call('POST', '/admin/events/tail', { account_id: 'unknown-account' })).status).toBe(404);
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).body.status).toBe('ready');
    expect((await call('GET', '/metrics')).text).toContain('tpx_');
    expect((await call('GET', '/openapi.json')).body).toEqual(documented.doc);

    // ---- deleting the account ends its life in the API
    expect((await call('DELETE', `/admin/accounts/${other}`)).status).toBe(204);
    expect((await call('DELETE', `/admin/accounts/${other}`)).status).toBe(404);

    // Nothing documented went unexercised.
    expect(documented.operations().filter((op) => !documented.exercised.has(op))).toEqual([]);
  });
});
