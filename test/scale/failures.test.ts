/**
 * SPEC §7 failure behaviour with real processes: Redis lost and restarted empty, and a node
 * killed in the middle of a webhook attempt.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, sleep, waitFor, type TestServer } from '../helpers/server.js';
import { closeAllClients, WsTestClient } from '../helpers/ws-client.js';
import { eventBody } from '../helpers/payloads.js';
import { eventFrames, startCluster, type Cluster } from './cluster.js';

let cluster: Cluster;
let A: TestServer;
let B: TestServer;

beforeAll(async () => {
  cluster = await startCluster(['node-a', 'node-b'], { TPX_WEBHOOK_TIMEOUT_MS: '4000', TPX_WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s' });
  [A, B] = cluster.nodes;
}, 120_000);

afterAll(async () => {
  await closeAllClients();
  await cluster?.stop();
});

async function listen(node: TestServer, token: string): Promise<WsTestClient> {
  const c = await WsTestClient.connect(node.wsUrl);
  await c.authenticate(token);
  await c.subscribe(['ALL']);
  return c;
}

describe('scale-out failures', () => {
  it('Redis down: publishing keeps answering 202; Redis back EMPTY: connections stay open and catch up', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const onA = await listen(A, token);
    const onB = await listen(B, token);
    await cluster.waitSubscribers(accountId, 2);
    await publish(A, eventBody('BID_REQUEST', [accountId]));
    for (const c of [onA, onB]) await waitFor(() => eventFrames(c.history).length >= 1, 5000, 'first event');

    await cluster.redis.down();
    const during: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await api(i % 2 ? A : B, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId]));
      expect(res.status).toBe(202);
      during.push(res.body.msg_id);
    }
    const ready = await api(A, 'GET', '/readyz', undefined, { token: null });
    expect(ready.status).not.toBe(200); // the bus is down and /readyz says so

    await cluster.redis.up(); // same port, nothing in it
    for (const c of [onA, onB]) {
      await waitFor(() => eventFrames(c.history).length >= 6, 15_000, 'catch-up after Redis returned');
      expect(c.isOpen).toBe(true);
    }
    // Live fan-out works again (nodes re-subscribed to the empty Redis).
    await cluster.waitSubscribers(accountId, 2);
    const after = await publish(B, eventBody('BID_REQUEST', [accountId]));
    for (const c of [onA, onB]) await waitFor(() => eventFrames(c.history).some((f) => f.msg_id === after.msg_id), 10_000, 'live after outage');
    await sleep(300);
    for (const c of [onA, onB]) {
      const frames = eventFrames(c.history);
      expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(frames.slice(1, 6).map((f) => f.msg_id)).toEqual(during);
    }
    await waitFor(async () => (await api(A, 'GET', '/readyz', undefined, { token: null })).status === 200, 10_000, 'readyz again');
  });

  it('a key deactivated while Redis is down is disconnected on every node once the bus returns, and gets nothing after', async () => {
    const { accountId, token, key } = await createAccountWithKey(A);
    const other = await createKey(A, accountId);
    const onB = await listen(B, token);
    const keep = await listen(B, other.token);
    await cluster.waitSubscribers(accountId, 1);

    await cluster.redis.down();
    const off = await api(A, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(off.status).toBe(200);
    const published = await api(A, 'POST', '/v1/events', eventBody('BID_REQUEST', [accountId]));
    expect(published.status).toBe(202);
    await cluster.redis.up();

    const closed = await onB.waitClosed(15_000);
    expect(closed.code).toBe(4001);
    const err = onB.history.find((f) => f.msg_type === 'error');
    expect(err?.payload).toMatchObject({ code: 'AUTH_API_KEY_INACTIVE' });
    expect(eventFrames(onB.history).map((f) => f.msg_id)).not.toContain(published.body.msg_id);
    // The other key of the same account catches up on the event published during the outage.
    await waitFor(() => eventFrames(keep.history).some((f) => f.msg_id === published.body.msg_id), 15_000, 'catch-up for the active key');
    expect(keep.isOpen).toBe(true);
  });

  it('/admin/connections on any node lists the connections of every node', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    await listen(A, token);
    await listen(B, token);
    await listen(B, token);
    // Node ids come from each process's own start line (the cluster starts nodes concurrently).
    const idOf = (node: TestServer) => String(node.logs().find((l) => l.msg === 'listening')?.node);
    const [a, b] = [idOf(A), idOf(B)];
    expect(a).not.toBe(b);
    for (const node of [A, B]) {
      const res = await api(node, 'GET', `/admin/connections?account_id=${accountId}`);
      expect(res.status).toBe(200);
      const byNode = res.body.connections.map((c: { node: string }) => c.node).sort();
      expect(byNode).toEqual([a, b, b].sort());
      expect([...res.body.nodes].sort()).toEqual([a, b].sort());
    }
  });

  it('a webhook attempt interrupted by a node dying is taken over by another node', async () => {
    // Only one node runs while the event is published, so we know who holds the lease.
    const requests: Array<{ id: string; at: number }> = [];
    const hung: ServerResponse[] = [];
    const receiver: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        requests.push({ id: String(req.headers['webhook-id']), at: Date.now() });
        if (requests.length === 1) hung.push(res); // first attempt never answers
        else res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      await B.stop();
      const { accountId } = await createAccountWithKey(A);
      const port = (receiver.address() as AddressInfo).port;
      expect((await api(A, 'POST', `/admin/accounts/${accountId}/webhooks`, { url: `http://127.0.0.1:${port}/hook` })).status).toBe(201);
      const { msg_id } = await publish(A, eventBody('PAYMENT_CHARGED', [accountId]));
      await waitFor(() => requests.length >= 1, 10_000, 'first attempt (node A)');
      await A.kill9(); // dies mid-attempt, holding the lease

      await B.restart();
      await waitFor(() => requests.length >= 2, 30_000, 'attempt taken over by node B');
      expect(requests.map((r) => r.id)).toEqual([msg_id, msg_id]);
      const deliveries = await api(B, 'GET', `/admin/deliveries?account_id=${accountId}`);
      expect(deliveries.status).toBe(200);
      await waitFor(
        async () => {
          const d = await api(B, 'GET', `/admin/deliveries?account_id=${accountId}`);
          const list = (d.body.deliveries ?? d.body) as Array<{ status: string }>;
          return Array.isArray(list) && list.length === 1 && list[0].status === 'succeeded';
        },
        10_000,
        'delivery recorded as succeeded by node B',
      );
    } finally {
      for (const res of hung) res.destroy();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});
