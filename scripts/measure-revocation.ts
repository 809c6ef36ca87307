/**
 * How long a key deactivation takes to land on every node (not a test; bounded: ≈ 1 minute).
 *
 *   node --conditions=tpx-source --import tsx scripts/measure-revocation.ts [--rounds 5]
 *
 * Three `tpx serve` nodes on a private PostgreSQL and Redis; node C reaches Redis through a TCP
 * proxy that can cut it off. Each round creates a key with one WebSocket connection on every node,
 * deactivates it through one node and records how long the admin call took and, for each node,
 * how long after the call began its connection was closed (4001). Scenarios:
 *   - bus up: deactivated through A;
 *   - bus down: Redis SIGSTOPped, deactivated through A;
 *   - deactivating node cut off: only C loses Redis, deactivated through C.
 */
import net from 'node:net';
import { api, createAccountWithKey, sleep } from '../test/helpers/server.js';
import { closeAllClients, connectAuthed, type WsTestClient } from '../test/helpers/ws-client.js';
import { startCluster } from '../test/scale/cluster.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 5;

/** A TCP proxy that can cut every connection through it and refuse new ones. */
async function cuttableProxy(targetPort: number) {
  let cut = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    partition: () => {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    heal: () => (cut = false),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmt = (xs: number[]) => `median ${pct(xs, 50)} ms, max ${Math.max(...xs)} ms`;

async function main(): Promise<void> {
  const cluster = await startCluster(['node-a', 'node-b']);
  const proxy = await cuttableProxy(cluster.redis.port);
  const [A, B] = cluster.nodes;
  const C = await cluster.addNode('node-c', { TPX_REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
  const nodes = { A, B, C };
  try {
    const scenario = async (name: string, via: keyof typeof nodes, fault: { before(): void; after(): void } | null) => {
      const calls: number[] = [];
      const closes: Record<string, number[]> = { A: [], B: [], C: [] };
      for (let r = 0; r < rounds; r++) {
        const { accountId, key, token } = await createAccountWithKey(A);
        const clients: Record<string, WsTestClient> = {};
        for (const [n, node] of Object.entries(nodes)) clients[n] = await connectAuthed(node.wsUrl, token, ['ALL']);
        await cluster.waitSubscribers(accountId, 2); // A and B (C's subscription goes through the proxy)
        fault?.before();
        await sleep(600); // deafness detected (heartbeat deadline 500 ms)
        const started = Date.now();
        const closedAt: Record<string, Promise<number>> = {};
        for (const [n, c] of Object.entries(clients)) closedAt[n] = c.waitClosed(10_000).then(() => Date.now() - started, () => NaN);
        const res = await api(nodes[via], 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
        calls.push(Date.now() - started);
        if (res.status !== 200) throw new Error(`deactivate answered ${res.status}: ${res.text}`);
        for (const n of Object.keys(clients)) closes[n].push(await closedAt[n]);
        fault?.after();
        await sleep(1500); // hearing back before the next round
      }
      console.log(`${name} (via ${via}, ${rounds} rounds): call ${fmt(calls)}; closed on A: ${fmt(closes.A)}; B: ${fmt(closes.B)}; C: ${fmt(closes.C)}`);
    };
    await scenario('bus up', 'A', null);
    await scenario('bus down (Redis SIGSTOPped)', 'A', { before: () => cluster.redis.pause(), after: () => cluster.redis.resume() });
    await scenario('deactivating node cut off from Redis', 'C', { before: () => proxy.partition(), after: () => proxy.heal() });
  } finally {
    await closeAllClients();
    cluster.redis.resume();
    proxy.heal();
    await cluster.stop();
    await proxy.close();
  }
}

await main();
