/**
 * SPEC §7 with real processes: three `tpx serve` nodes on one private PostgreSQL and one Redis,
 * started at the same time on an empty database.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, publishBatch, sleep, waitFor, type TestServer } from '../helpers/server.js';
import { closeAllClients, WsTestClient } from '../helpers/ws-client.js';
import { eventBody } from '../helpers/payloads.js';
import { eventFrames, startCluster, type Cluster } from './cluster.js';

let cluster: Cluster;
let A: TestServer;
let B: TestServer;
let C: TestServer;

beforeAll(async () => {
  cluster = await startCluster(['node-a', 'node-b', 'node-c'], { TPX_WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s' });
  [A, B, C] = cluster.nodes;
}, 120_000);

afterAll(async () => {
  await closeAllClients();
  await cluster?.stop();
});

async function listen(node: TestServer, token: string, rooms = ['ALL'], afterSeq?: number): Promise<WsTestClient> {
  const c = await WsTestClient.connect(node.wsUrl);
  await c.authenticate(token);
  await c.subscribe(rooms, afterSeq);
  return c;
}

describe('scale-out: three nodes, PostgreSQL + Redis', () => {
  it('all nodes came up on the shared store and the Redis bus', async () => {
    for (const node of [A, B, C]) {
      const ready = await api(node, 'GET', '/readyz', undefined, { token: null });
      expect(ready.status).toBe(200);
      const listening = node.logs().find((l) => l.msg === 'listening');
      expect(listening).toMatchObject({ store: 'postgres', bus: 'redis' });
    }
    // An account created through one node is visible through the others (one store).
    const { accountId } = await createAccountWithKey(A);
    expect((await api(C, 'GET', `/admin/accounts/${accountId}`)).status).toBe(200);
  });

  it('an event published through A reaches subscribers on B and C exactly once and in seq order', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onB = await listen(B, token);
    const onB2 = await listen(B, token);
    const onC = await listen(C, token);
    await cluster.waitSubscribers(accountId, 2);

    const N = 40;
    const accepted: string[] = [];
    for (let i = 0; i < N; i++) accepted.push((await publish(A, eventBody('BID_REQUEST', [accountId]))).msg_id);
    for (const c of [onB, onB2, onC]) await waitFor(() => eventFrames(c.history).length >= N, 10_000, `${N} events`);
    await sleep(300); // anything extra (a duplicate) would have arrived by now
    for (const c of [onB, onB2, onC]) {
      const frames = eventFrames(c.history);
      expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      expect(frames.map((f) => f.msg_id)).toEqual(accepted);
    }
  });

  it('seq is strictly increasing per account under concurrent publishes through different nodes', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onA = await listen(A, token);
    const onC = await listen(C, token);
    await cluster.waitSubscribers(accountId, 2);

    const nodes = [A, B, C];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const node = nodes[i % 3];
      if (i % 5 === 0) jobs.push(publishBatch(node, [eventBody('BID_OUTBID', [accountId]), eventBody('BID_REQUEST', [accountId])]));
      else jobs.push(publish(node, eventBody('BID_REQUEST', [accountId])));
    }
    await Promise.all(jobs);
    const total = 36;
    for (const c of [onA, onC]) await waitFor(() => eventFrames(c.history).length >= total, 10_000, `${total} events`);
    await sleep(300);
    for (const c of [onA, onC]) {
      const frames = eventFrames(c.history);
      expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(new Set(frames.map((f) => f.msg_id)).size).toBe(total);
    }
    // The log read through any node agrees.
    const read = await api(B, 'GET', '/v1/events?after_seq=0&limit=1000', undefined, { token: null, headers: { 'x-api-key': (await createKey(A, accountId)).token } });
    expect(read.status).toBe(200);
    expect(read.body.events.map((e: { seq: number }) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('a key deactivated through A disconnects its connections on B and C with 4001; other keys keep receiving', async () => {
    const { accountId, token, key } = await createAccountWithKey(A);
    const other = await createKey(A, accountId);
    const victims = [await listen(B, token), await listen(C, token)];
    const survivor = await listen(B, other.token);
    await cluster.waitSubscribers(accountId, 2);

    const res = await api(A, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(res.status).toBe(200);
    // Published after the deactivating call returned: must not reach the victims.
    const after = await publish(A, eventBody('BID_REQUEST', [accountId]));
    for (const v of victims) {
      const closed = await v.waitClosed(2000);
      expect(closed.code).toBe(4001);
      expect(v.history.find((f) => f.msg_type === 'error')?.payload).toMatchObject({ code: 'AUTH_API_KEY_INACTIVE' });
      expect(eventFrames(v.history).map((f) => f.msg_id)).not.toContain(after.msg_id);
    }
    await waitFor(() => eventFrames(survivor.history).some((f) => f.msg_id === after.msg_id), 5000, 'survivor receives');
  });

  it('a key revoked (deleted) through C disconnects its connections on A with 4001', async () => {
    const { accountId, token, key } = await createAccountWithKey(B);
    const victim = await listen(A, token);
    await cluster.waitSubscribers(accountId, 1);
    expect((await api(C, 'DELETE', `/admin/api-keys/${key.key_id}`)).status).toBe(204);
    const closed = await victim.waitClosed(2000);
    expect(closed.code).toBe(4001);
  });

  it('resume (after_seq) works on another node than the one the client was connected to', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const first = await listen(A, token);
    await cluster.waitSubscribers(accountId, 1);
    for (let i = 0; i < 10; i++) await publish(C, eventBody('BID_REQUEST', [accountId]));
    await waitFor(() => eventFrames(first.history).length >= 10, 10_000, 'first 10');
    const lastSeen = eventFrames(first.history)[5].seq!;
    first.terminate();
    // Published while the client is away, through yet another node.
    for (let i = 0; i < 5; i++) await publish(B, eventBody('BID_REQUEST', [accountId]));

    const resumed = await WsTestClient.connect(B.wsUrl);
    await resumed.authenticate(token);
    const sub = await resumed.subscribe(['ALL'], lastSeen);
    expect(sub.payload).toMatchObject({ resumed_from: lastSeen });
    await waitFor(() => eventFrames(resumed.history).length >= 15 - lastSeen, 10_000, 'replay');
    await cluster.waitSubscribers(accountId, 1);
    await publish(C, eventBody('BID_REQUEST', [accountId]));
    await waitFor(() => eventFrames(resumed.history).length >= 16 - lastSeen, 10_000, 'live after replay');
    await sleep(200);
    expect(eventFrames(resumed.history).map((f) => f.seq)).toEqual(Array.from({ length: 16 - lastSeen }, (_, i) => lastSeen + 1 + i));
  });

  it('webhook deliveries are attempted by one node at a time: each event POSTed exactly once', async () => {
    const hits = new Map<string, number>();
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const id = String(req.headers['webhook-id']);
        hits.set(id, (hits.get(id) ?? 0) + 1);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const port = (receiver.address() as AddressInfo).port;
      const { accountId } = await createAccountWithKey(A);
      const wh = await api(B, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `http://127.0.0.1:${port}/hook` });
      expect(wh.status).toBe(201);
      const ids: string[] = [];
      const nodes = [A, B, C];
      const jobs = Array.from({ length: 45 }, (_, i) => publish(nodes[i % 3], eventBody('PAYMENT_SETTLED', [accountId])).then((r) => ids.push(r.msg_id)));
      await Promise.all(jobs);
      await waitFor(() => ids.every((id) => hits.has(id)), 20_000, 'all 45 webhooks delivered');
      await sleep(1500); // a second (duplicate) attempt by another node would show up now
      for (const id of ids) expect(hits.get(id)).toBe(1);
      expect(hits.size).toBe(45);
      const succeeded = await api(A, 'GET', `/admin/deliveries?account_id=${accountId}&status=succeeded&limit=100`);
      expect(succeeded.status).toBe(200);
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});
