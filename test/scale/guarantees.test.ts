/**
 * Issue 9 guarantees across nodes, with real processes: a private PostgreSQL, a private Redis,
 * node A talking to Redis directly and node B through a TCP proxy that can hold everything Redis
 * sends to B (B's subscriber then hears nothing while its TCP connections stay open, like a
 * slow or partitioned subscriber).
 *
 * Defect 1: two first connections racing on a node while its SUBSCRIBE is unanswered.
 * Defect 2: a key deactivated while a connection on another node is still authenticating.
 * Defect 3: revocation while Redis is stopped (SIGSTOP) or killed: closed within 2 s everywhere.
 * Defect 4: nothing published after the deactivating call returned reaches the key, including
 *           through the publishing node's local path.
 * Defect 8: a hole the node's sequencer finds pruned is announced as a gap frame.
 * Revocation latencies are printed (bus up, subscriber held, Redis stopped, Redis killed).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, sleep, waitFor, type TestServer } from '../helpers/server.js';
import { closeAllClients, WsTestClient, type Frame } from '../helpers/ws-client.js';
import { eventBody } from '../helpers/payloads.js';
import { eventFrames, startCluster, type Cluster } from './cluster.js';

/** Forwards loopback TCP to Redis; hold() keeps back everything Redis sends to the client. */
class HoldingProxy {
  private held = false;
  private partitioned = false;
  private readonly flows = new Set<{ client: net.Socket; queue: Buffer[] }>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<HoldingProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const proxy = new HoldingProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => {
      if (proxy.partitioned) {
        client.destroy();
        return;
      }
      const upstream = net.connect(targetPort, '127.0.0.1');
      const flow = { client, queue: [] as Buffer[] };
      proxy.flows.add(flow);
      const teardown = () => {
        proxy.flows.delete(flow);
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        s.on('error', teardown);
        s.on('close', teardown);
      }
      client.pipe(upstream);
      upstream.on('data', (d: Buffer) => (proxy.held ? flow.queue.push(d) : client.write(d)));
    });
    return proxy;
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    for (const flow of this.flows) for (const d of flow.queue.splice(0)) flow.client.write(d);
  }

  /** Cut every connection and refuse new ones until heal(): what Redis sends meanwhile is lost. */
  partition(): void {
    this.partitioned = true;
    for (const flow of this.flows) flow.client.destroy();
  }

  heal(): void {
    this.partitioned = false;
  }

  async close(): Promise<void> {
    for (const flow of this.flows) flow.client.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let cluster: Cluster;
let proxy: HoldingProxy;
let A: TestServer;
let B: TestServer;
const latencies: string[] = [];

beforeAll(async () => {
  cluster = await startCluster(['node-a']);
  A = cluster.nodes[0];
  proxy = await HoldingProxy.start(cluster.redis.port);
  B = await cluster.addNode('node-b', { TPX_REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
}, 120_000);

afterAll(async () => {
  // The lead needs these figures (issue 9 closing note).
  if (latencies.length) console.log(`[revocation latency]\n${latencies.join('\n')}`);
  await closeAllClients();
  proxy?.release();
  proxy?.heal();
  cluster?.redis.resume();
  await cluster?.stop();
  await proxy?.close();
});

async function listen(node: TestServer, token: string): Promise<WsTestClient> {
  const c = await WsTestClient.connect(node.wsUrl);
  await c.authenticate(token);
  await c.subscribe(['ALL']);
  return c;
}

/** Time at which the client saw its connection close. */
function closedAt(c: WsTestClient): Promise<number> {
  return c.closed.then(() => Date.now());
}

/** Deactivate through `node`; returns when the call started and returned. */
async function deactivate(node: TestServer, keyId: string): Promise<{ started: number; returned: number }> {
  const started = Date.now();
  const res = await api(node, 'POST', `/admin/api-keys/${keyId}/deactivate`);
  expect(res.status, res.text).toBe(200);
  return { started, returned: Date.now() };
}

describe('scale-out guarantees under races and faults', () => {
  it('two first connections racing on B while its SUBSCRIBE is unanswered: the first closes, the second still hears events from A (defect 1)', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const first = await WsTestClient.connect(B.wsUrl);
    const second = await WsTestClient.connect(B.wsUrl);
    proxy.hold(); // B's SUBSCRIBE reaches Redis, its answer does not reach B: the preparation waits
    try {
      first.send({ msg_type: 'authenticate', payload: { token } });
      second.send({ msg_type: 'authenticate', payload: { token } });
      await sleep(400); // both key lookups (PostgreSQL) are done; both wait for the account's preparation
      first.terminate();
      await sleep(300);
    } finally {
      proxy.release();
    }
    await second.nextOfType('authenticated', 10_000);
    await second.subscribe(['ALL']);
    await sleep(500);
    const ev = await publish(A, eventBody('BID_REQUEST', [accountId]));
    const got = await second.next((f) => f.msg_id === ev.msg_id, 5000);
    expect(got.seq).toBe(1);
  });

  it('a key deactivated through A while its connection on B is still authenticating is closed, and gets nothing after (defect 2)', async () => {
    const { accountId, token, key } = await createAccountWithKey(A);
    const c = await WsTestClient.connect(B.wsUrl);
    const closed = closedAt(c);
    proxy.hold();
    let call: { started: number; returned: number };
    try {
      c.send({ msg_type: 'authenticate', payload: { token } });
      await sleep(400); // the lookup is done, the account's preparation on B waits
      call = await deactivate(A, key.key_id);
    } finally {
      proxy.release();
    }
    const after = await publish(A, eventBody('BID_REQUEST', [accountId]));
    const at = await Promise.race([closed, sleep(4000).then(() => -1)]);
    expect(at, 'the connection was attached and stayed open').toBeGreaterThan(0);
    expect(c.closeInfo?.code).toBe(4001);
    expect(c.history.some((f) => f.msg_id === after.msg_id)).toBe(false);
    latencies.push(`authenticating on B (subscriber held), deactivated via A: closed ${at - call.started} ms after the call started (call took ${call.returned - call.started} ms)`);
  });

  it('revocation racing authentication with the bus up: every racing connection ends closed with 4001 and gets nothing published after the call returned', async () => {
    for (let i = 0; i < 6; i++) {
      const { accountId, token, key } = await createAccountWithKey(A);
      const c = await WsTestClient.connect(B.wsUrl);
      c.send({ msg_type: 'authenticate', payload: { token } });
      await sleep(i); // 0-5 ms: inside the lookup, between lookup and preparation, or after
      await deactivate(A, key.key_id);
      const after = await publish(B, eventBody('BID_REQUEST', [accountId]));
      const closed = await c.waitClosed(3000);
      expect(closed.code).toBe(4001);
      expect(c.history.some((f) => f.msg_id === after.msg_id)).toBe(false);
    }
  });

  it('bus up: a deactivation through A closes the key on B before it returns; an event published through B right after is not delivered (defect 4)', async () => {
    for (let i = 0; i < 5; i++) {
      const { accountId, token, key } = await createAccountWithKey(A);
      const c = await listen(B, token);
      await cluster.waitSubscribers(accountId, 1);
      const closed = closedAt(c);
      const call = await deactivate(A, key.key_id);
      const after = await publish(B, eventBody('BID_REQUEST', [accountId])); // B's local path
      const at = await closed;
      expect(c.closeInfo?.code).toBe(4001);
      expect(c.history.some((f) => f.msg_id === after.msg_id)).toBe(false);
      latencies.push(`bus up, connection on B, deactivated via A: closed ${at - call.started} ms after the call started (call took ${call.returned - call.started} ms)`);
    }
  });

  it('B cannot hear Redis (held): the deactivation through A still lands on B before an event published through B after the call (defect 4, deterministic)', async () => {
    const { accountId, token, key } = await createAccountWithKey(A);
    const c = await listen(B, token);
    await cluster.waitSubscribers(accountId, 1);
    const closed = closedAt(c);
    proxy.hold();
    try {
      await sleep(1000); // B notices it hears nothing (heartbeat) and re-checks keys from the store
      const call = await deactivate(A, key.key_id);
      const after = await publish(B, eventBody('BID_REQUEST', [accountId]));
      const at = await Promise.race([closed, sleep(3000).then(() => -1)]);
      expect(at, 'still open').toBeGreaterThan(0);
      expect(c.closeInfo?.code).toBe(4001);
      expect(c.history.some((f) => f.msg_id === after.msg_id)).toBe(false);
      latencies.push(`subscriber of B held, deactivated via A: closed ${at - call.started} ms after the call started (call took ${call.returned - call.started} ms)`);
    } finally {
      proxy.release();
    }
  });

  for (const fault of ['SIGSTOP', 'SIGKILL'] as const) {
    it(`Redis ${fault === 'SIGSTOP' ? 'stopped (SIGSTOP)' : 'killed (SIGKILL)'}: a deactivation through A closes the key on A and B within 2 s (defect 3)`, async () => {
      const { accountId, token, key } = await createAccountWithKey(A);
      const onA = await listen(A, token);
      const onB = await listen(B, token);
      await cluster.waitSubscribers(accountId, 2);
      const closed = [closedAt(onA), closedAt(onB)];
      if (fault === 'SIGSTOP') cluster.redis.pause();
      else await cluster.redis.down();
      try {
        const call = await deactivate(A, key.key_id);
        const [atA, atB] = await Promise.all(closed.map((p) => Promise.race([p, sleep(5000).then(() => -1)])));
        expect(atA).toBeGreaterThan(0);
        expect(atB, 'B never closed the key’s connection').toBeGreaterThan(0);
        expect(atB - call.started, 'closed on B within 2 s of the call').toBeLessThanOrEqual(2000);
        for (const c of [onA, onB]) expect(c.closeInfo?.code).toBe(4001);
        latencies.push(`Redis ${fault}: closed on A ${atA - call.started} ms, on B ${atB - call.started} ms after the call started (call took ${call.returned - call.started} ms)`);
      } finally {
        if (fault === 'SIGSTOP') cluster.redis.resume();
        else await cluster.redis.up();
      }
      // The bus comes back: live fan-out works again on both nodes.
      const { accountId: acct2, token: t2 } = await createAccountWithKey(A);
      const c2 = await listen(B, t2);
      await cluster.waitSubscribers(acct2, 1);
      const ev = await publish(A, eventBody('BID_OUTBID', [acct2]));
      await c2.next((f) => f.msg_id === ev.msg_id, 10_000);
    }, 40_000);
  }

  it('disconnect through A closes a connection held by B (1000), 404 for an unknown id', async () => {
    const { accountId, token } = await createAccountWithKey(A);
    const c = await listen(B, token);
    const list = await api(A, 'GET', `/admin/connections?account_id=${accountId}`);
    expect(list.body.connections).toHaveLength(1);
    const id = list.body.connections[0].connection_id;
    const res = await api(A, 'POST', `/admin/connections/${id}/disconnect`);
    expect(res.status, res.text).toBe(200);
    expect(await c.waitClosed(3000)).toEqual({ code: 1000, reason: 'disconnected by operator' });
    expect((await api(A, 'POST', `/admin/connections/${id}/disconnect`)).status).toBe(404);
  });

  it('a hole B finds pruned when it catches up is announced with a gap frame before the next event (defect 8)', async () => {
    // A third node prunes aggressively (retention is a property of the shared store's pruning).
    const C = await cluster.addNode('node-c', { TPX_EVENT_RETENTION: '2s' });
    const { accountId, token } = await createAccountWithKey(A);
    const c = await listen(B, token);
    await cluster.waitSubscribers(accountId, 1);
    proxy.partition(); // B loses its Redis connections: what A publishes now never reaches it
    try {
      for (let i = 0; i < 3; i++) await publish(A, eventBody('BID_REQUEST', [accountId]));
      await waitFor(async () => {
        const res = await api(A, 'GET', '/v1/events?after_seq=0&limit=5', undefined, { token: null, headers: { 'x-api-key': token } });
        return res.status === 200 && res.body.events.length === 0;
      }, 15_000, 'the three events pruned');
    } finally {
      proxy.heal();
    }
    await cluster.waitSubscribers(accountId, 1); // B is back and listens again
    await sleep(500);
    const next = await publish(A, eventBody('BID_OUTBID', [accountId]));
    await c.next((f) => f.msg_id === next.msg_id, 10_000);
    const stream = c.history.filter((f: Frame) => f.msg_type === 'gap' || eventFrames([f]).length === 1);
    expect(stream.map((f) => (f.msg_type === 'gap' ? `gap ${f.payload.from_seq}-${f.payload.to_seq}` : f.seq))).toEqual(['gap 1-3', 4]);
    await C.stop();
  });
});
