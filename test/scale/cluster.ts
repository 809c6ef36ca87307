/**
 * Multi-node harness for the scale-out tests: a private PostgreSQL and Redis, and N real
 * `tpx serve` processes sharing them (same admin token, distinct TPX_NODE_ID).
 */
import { Redis } from 'ioredis';
import { startTestServer, waitFor, type TestServer } from '../helpers/server.js';
import { startPostgres, type TestPostgres } from '../helpers/pg.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import type { Frame } from '../helpers/ws-client.js';

export interface Cluster {
  pg: TestPostgres;
  redis: TestRedis;
  adminToken: string;
  nodes: TestServer[];
  /** Start one more node on the same database and Redis. */
  addNode(id: string, env?: Record<string, string>): Promise<TestServer>;
  /** Resolves once `n` nodes listen on the account's Redis channel (the hub subscribes asynchronously). */
  waitSubscribers(accountId: string, n: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(nodeIds: string[], env: Record<string, string> = {}): Promise<Cluster> {
  const pg = await startPostgres();
  let redis: TestRedis;
  try {
    redis = await startRedis();
  } catch (err) {
    await pg.stop();
    throw err;
  }
  const adminToken = `adm_scale_${Math.random().toString(36).slice(2)}${Date.now()}`;
  const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: (t) => Math.min(t * 50, 500) });
  probe.on('error', () => {});
  const nodes: TestServer[] = [];
  const addNode = async (id: string, extra: Record<string, string> = {}) => {
    const node = await startTestServer({
      adminToken,
      env: { TPX_DATABASE_URL: pg.url, TPX_REDIS_URL: redis.url, TPX_NODE_ID: id, ...env, ...extra },
    });
    nodes.push(node);
    return node;
  };
  const cluster: Cluster = {
    pg,
    redis,
    adminToken,
    nodes,
    addNode,
    async waitSubscribers(accountId, n) {
      if (probe.status === 'wait') await probe.connect();
      await waitFor(
        async () => {
          const res = (await probe.pubsub('NUMSUB', `tpx:acct:${accountId}`)) as [string, number];
          return Number(res[1]) >= n;
        },
        10_000,
        `${n} Redis subscribers of account ${accountId}`,
      );
    },
    async stop() {
      await Promise.all(nodes.map((s) => s.stop().catch(() => s.kill9())));
      probe.disconnect();
      await redis.stop().catch(() => undefined);
      await pg.stop().catch(() => undefined);
    },
  };
  try {
    // All nodes at once on the empty database: migrations must serialize.
    await Promise.all(nodeIds.map((id) => addNode(id)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

export function eventFrames(history: readonly Frame[]): Frame[] {
  return history.filter((f) => typeof f.seq === 'number' && typeof f.msg_id === 'string');
}
