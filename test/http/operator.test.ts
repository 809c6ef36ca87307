/**
 * The console's admin endpoints against a real `tpx serve`: /admin/stats (this node's counters,
 * moving with real traffic), /admin/events/tail (history, long-poll, filters, cursor, and a
 * publish through another node sharing the store), /admin/samples.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES, validateEventPayload } from '@tpx-realtime/protocol';
import { samplePayload } from '../helpers/payloads.js';
import { api, createAccount, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';

let server: TestServer;
let receiver: Server;
let hits = 0;

beforeAll(async () => {
  server = await startTestServer();
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => (hits++, res.writeHead(204).end()));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
});

afterAll(async () => {
  await new Promise((r) => receiver.close(r));
  await stopAll();
});

const tail = (body: Record<string, unknown>, srv = server) => api(srv, 'POST', '/admin/events/tail', body);

describe('GET /admin/stats', () => {
  it('needs the admin token', async () => {
    expect((await api(server, 'GET', '/admin/stats', undefined, { token: null })).status).toBe(401);
  });

  it('reports this node, and its counters follow real publishes and webhook attempts', async () => {
    const before = (await api(server, 'GET', '/admin/stats')).body;
    expect(before).toMatchObject({ scope: 'node', node: expect.any(String), connections: 0 });
    expect(before.webhook_delivery_latency_seconds.buckets.at(-1)[0]).toBe('+Inf');

    const account = await createAccount(server, { name: 'stats' });
    const hook = await api(server, 'POST', `/admin/accounts/${account.account_id}/webhooks`, {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    });
    expect(hook.status).toBe(201);
    for (let i = 0; i < 3; i++) await publish(server, { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
    await waitFor(() => hits >= 3, 10_000, 'three webhook hits');

    const after = await waitFor(async () => {
      const s = (await api(server, 'GET', '/admin/stats')).body;
      return s.webhook_attempts_total.succeeded >= before.webhook_attempts_total.succeeded + 3 ? s : null;
    }, 5000, 'attempts counted');
    expect(after.events_published_total - before.events_published_total).toBe(3);
    expect(after.webhook_delivery_latency_seconds.count - before.webhook_delivery_latency_seconds.count).toBe(3);
    // The backlog gauges come from the store (cached for 500 ms per scrape): settled, nothing left.
    await waitFor(async () => {
      const s = (await api(server, 'GET', '/admin/stats')).body;
      return s.webhook_deliveries.pending === 0 && s.webhook_deliveries.failed === 0;
    }, 5000, 'no pending or failed delivery');
  });
});

describe('GET /admin/samples', () => {
  it('gives a valid sample of every event type', async () => {
    const { status, body } = await api(server, 'GET', '/admin/samples');
    expect(status).toBe(200);
    expect(Object.keys(body.samples)).toEqual([...EVENT_TYPES]);
    for (const type of EVENT_TYPES) expect(validateEventPayload(type, body.samples[type]).ok, type).toBe(true);
  });
});

describe('POST /admin/events/tail', () => {
  it('starts with recent history, then long-polls and wakes on a publish', async () => {
    const account = await createAccount(server, { name: 'tail-a' });
    const first = await publish(server, { msg_type: 'BID_OUTBID', account_ids: [account.account_id], payload: samplePayload('BID_OUTBID') });
    const history = await tail({ account_id: account.account_id });
    expect(history.status).toBe(200);
    expect(history.body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([first.msg_id]);
    expect(history.body.events[0]).toMatchObject({ account_id: account.account_id, seq: 1, msg_type: 'BID_OUTBID', payload: expect.any(Object) });

    const started = Date.now();
    const waiting = tail({ account_id: account.account_id, cursor: history.body.cursor, wait_ms: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const second = await publish(server, { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
    const woke = await waiting;
    expect(woke.body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([second.msg_id]);
    expect(Date.now() - started).toBeLessThan(10_000);

    // Nothing new: the poll ends empty at wait_ms, with a cursor that still works.
    const idle = await tail({ account_id: account.account_id, cursor: woke.body.cursor, wait_ms: 200 });
    expect(idle.body.events).toEqual([]);
    const third = await publish(server, { msg_type: 'BID_REQUEST', account_ids: [account.account_id], payload: samplePayload('BID_REQUEST') });
    expect((await tail({ account_id: account.account_id, cursor: idle.body.cursor, wait_ms: 0 })).body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([third.msg_id]);
  });

  it('filters by type and by account; without an account it covers every account, in time order, nothing twice', async () => {
    const a = await createAccount(server, { name: 'tail-b' });
    const b = await createAccount(server, { name: 'tail-c' });
    const start = await tail({ types: ['PAYMENT_FAILED', 'PAYMENT_SETTLED'], wait_ms: 0 });
    let cursor = start.body.cursor as string;
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const type = i % 2 ? 'PAYMENT_FAILED' : 'BID_REQUEST';
      sent.push((await publish(server, { msg_type: type, account_ids: [i % 3 ? a.account_id : b.account_id], payload: samplePayload(type) })).msg_id);
    }
    const seen: Array<{ msg_id: string; msg_type: string; created_at: string }> = [];
    for (let i = 0; i < 5 && seen.length < 3; i++) {
      const r = await tail({ types: ['PAYMENT_FAILED', 'PAYMENT_SETTLED'], cursor, wait_ms: 2000, limit: 2 });
      expect(r.status).toBe(200);
      seen.push(...r.body.events);
      cursor = r.body.cursor;
    }
    expect(seen.map((e) => e.msg_id)).toEqual([sent[1], sent[3], sent[5]]);
    expect(seen.every((e) => e.msg_type === 'PAYMENT_FAILED')).toBe(true);

    const onlyB = await tail({ account_id: b.account_id, wait_ms: 0 });
    expect(onlyB.body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([sent[0], sent[3]]);
    expect(onlyB.body.events.every((e: { account_id: string }) => e.account_id === b.account_id)).toBe(true);
  });

  it('refuses bad input clearly', async () => {
    expect((await tail({ cursor: 'not-a-cursor' })).body).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await tail({ types: ['NOPE'] })).status).toBe(400);
    expect((await tail({ wait_ms: 60_000 })).status).toBe(400);
    expect((await tail({ account_id: '00000000-0000-0000-0000-000000000000' })).status).toBe(404);
    expect((await api(server, 'POST', '/admin/events/tail', {}, { token: null })).status).toBe(401);
  });

  it('sees what another node sharing the store accepted (the store is the truth)', async () => {
    const other = await startTestServer({ dataDir: server.dataDir, adminToken: server.adminToken });
    const account = await createAccount(server, { name: 'tail-nodes' });
    const start = await tail({ account_id: account.account_id, wait_ms: 0 });
    const waiting = tail({ account_id: account.account_id, cursor: start.body.cursor, wait_ms: 10_000 });
    const sent = await publish(other, { msg_type: 'AUCTION_RESULT', account_ids: [account.account_id], payload: samplePayload('AUCTION_RESULT') });
    expect((await waiting).body.events.map((e: { msg_id: string }) => e.msg_id)).toEqual([sent.msg_id]);
    await other.stop();
  });
});
