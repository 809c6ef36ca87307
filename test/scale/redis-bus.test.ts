/**
 * RedisBus against a private redis-server: per-account channels, own-echo handling, control
 * messages, fast failure while Redis is down, resubscribe + onReconnect after a restart.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBus, createRedisBus } from '../../src/bus/redis/index.js';
import type { ControlMessage } from '../../src/bus/types.js';
import type { AccountEvent } from '../../src/store/types.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { sleep, waitFor } from '../helpers/server.js';

let redis: TestRedis;
const buses: RedisBus[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.close()));
});
afterAll(async () => {
  await redis?.stop();
});

async function bus(): Promise<RedisBus> {
  const b = await createRedisBus(redis.url);
  buses.push(b);
  return b;
}

function events(accountId: string, from: number, n: number): AccountEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    account_id: accountId,
    seq: from + i,
    msg_id: `m-${accountId}-${from + i}`,
    msg_type: 'BID_REQUEST',
    payload_json: '{"x":1}',
    source_id: null,
    created_at_ms: Date.now(),
  }));
}

function recorder(b: RedisBus) {
  const got: Array<[string, number[]]> = [];
  const control: ControlMessage[] = [];
  let reconnects = 0;
  b.onEvents((acct, evs) => got.push([acct, evs.map((e) => e.seq)]));
  b.onControl((m) => control.push(m));
  b.onReconnect(() => reconnects++);
  return { got, control, reconnects: () => reconnects };
}

describe('RedisBus', () => {
  it('delivers an account’s events only to nodes subscribed to it; the publisher gets its own exactly once', async () => {
    const [n1, n2, n3] = [await bus(), await bus(), await bus()];
    const [r1, r2, r3] = [recorder(n1), recorder(n2), recorder(n3)];
    await n1.subscribeAccount('acct-1');
    await n2.subscribeAccount('acct-1');
    await n3.subscribeAccount('acct-2');
    await n1.publishEvents('acct-1', events('acct-1', 1, 3));
    await waitFor(() => r2.got.length === 1, 5000, 'n2 receives');
    await sleep(150);
    expect(r1.got).toEqual([['acct-1', [1, 2, 3]]]); // local delivery, the Redis echo is dropped
    expect(r2.got).toEqual([['acct-1', [1, 2, 3]]]);
    expect(r3.got).toEqual([]);
  });

  it('reference counts subscriptions and stops receiving after the last unsubscribe', async () => {
    const [n1, n2] = [await bus(), await bus()];
    const r2 = recorder(n2);
    await n2.subscribeAccount('acct-r');
    await n2.subscribeAccount('acct-r');
    await n2.unsubscribeAccount('acct-r');
    await n1.publishEvents('acct-r', events('acct-r', 1, 1));
    await waitFor(() => r2.got.length === 1, 5000, 'still subscribed after one unsubscribe');
    await n2.unsubscribeAccount('acct-r');
    expect(n2.subscribedAccounts()).toEqual([]);
    await n1.publishEvents('acct-r', events('acct-r', 2, 1));
    await sleep(200);
    expect(r2.got).toHaveLength(1);
  });

  it('control messages reach every node once, including the sender (locally)', async () => {
    const [n1, n2] = [await bus(), await bus()];
    const [r1, r2] = [recorder(n1), recorder(n2)];
    const msg: ControlMessage = { kind: 'key_disabled', key_id: 'k1', account_id: 'a1', reason: 'revoked' };
    await n1.publishControl(msg);
    await waitFor(() => r2.control.length === 1, 5000, 'control on n2');
    await sleep(150);
    expect(r1.control).toEqual([msg]);
    expect(r2.control).toEqual([msg]);
  });

  it('while Redis is down publishing rejects quickly (local handlers still run); after it returns empty the bus resubscribes and calls onReconnect', async () => {
    const [n1, n2] = [await bus(), await bus()];
    const [r1, r2] = [recorder(n1), recorder(n2)];
    await n1.subscribeAccount('acct-o');
    await n2.subscribeAccount('acct-o');
    await redis.down();
    await waitFor(async () => n1.ping().then(() => false, () => true), 5000, 'ping fails');
    await expect(n1.publishEvents('acct-o', events('acct-o', 1, 1))).rejects.toThrow();
    expect(r1.got).toEqual([['acct-o', [1]]]);
    await redis.up();
    await waitFor(() => r1.reconnects() >= 1 && r2.reconnects() >= 1, 10_000, 'onReconnect on both nodes');
    await waitFor(async () => n2.ping().then(() => true, () => false), 5000, 'ping ok');
    await n1.publishEvents('acct-o', events('acct-o', 2, 1));
    await waitFor(() => r2.got.length === 1, 5000, 'n2 receives after the restart');
    expect(r2.got).toEqual([['acct-o', [2]]]);
  });

  it('start() fails when Redis cannot be reached', async () => {
    const b = new RedisBus('redis://127.0.0.1:1', { startTimeoutMs: 500 });
    await expect(b.start()).rejects.toThrow(/not reachable/);
  });

  it('broadcastControl returns once every receiving node has applied it, summing what each acted on', async () => {
    const [n1, n2, n3] = [await bus(), await bus(), await bus()];
    const applied: string[] = [];
    n1.onControl(() => 0);
    n2.onControl(async () => {
      await sleep(80);
      applied.push('n2');
      return 2;
    });
    n3.onControl(() => {
      applied.push('n3');
      return 1;
    });
    await waitFor(() => n1.hearing && n2.hearing && n3.hearing, 5000, 'all hearing');
    const msg: ControlMessage = { kind: 'key_disabled', key_id: 'k', account_id: 'a', reason: 'inactive' };
    const result = await n1.broadcastControl(msg, 2000);
    expect({ ...result, ackedBy: [...result.ackedBy].sort() }).toEqual({
      published: true,
      receivers: 3,
      acknowledged: 3,
      affected: 3,
      ackedBy: [n1.instance, n2.instance, n3.instance].sort(),
    });
    expect(applied.sort()).toEqual(['n2', 'n3']);
  });

  it('a SIGSTOPped Redis (TCP still open) makes the node deaf within a second; after SIGCONT it hears again and catches up', async () => {
    const n1 = await bus();
    const r1 = recorder(n1);
    await waitFor(() => n1.hearing, 5000, 'hearing');
    const changes: boolean[] = [];
    n1.onHearing((h) => changes.push(h));
    redis.pause();
    const stoppedAt = Date.now();
    try {
      await waitFor(() => !n1.hearing, 3000, 'deaf', 10);
      expect(Date.now() - stoppedAt).toBeLessThan(1500);
    } finally {
      redis.resume();
    }
    await waitFor(() => n1.hearing, 5000, 'hearing again');
    expect(changes).toEqual([false, true]);
    expect(r1.reconnects()).toBe(1);
    await n1.ping();
  });
});
