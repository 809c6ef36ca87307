/**
 * Per-account ordering in the hub: with several nodes, batches of one account can reach a node
 * out of seq order. Every event must still reach the connection exactly once, in seq order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { MemoryBus } from '../../src/bus/memory/index.js';
import { loadConfig } from '../../src/config/index.js';
import { Connection } from '../../src/gateway/connection.js';
import { Hub } from '../../src/gateway/hub.js';
import { ALL_TYPES_MASK } from '../../src/gateway/rooms.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createStore } from '../../src/store/index.js';
import type { AccountEvent, Store } from '../../src/store/types.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-hub-'));
  const store: Store = createStore(loadConfig({ TPX_DATA_DIR: dir }));
  await store.init();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => store.close());
  const account = await store.createAccount({});
  const bus = new MemoryBus();
  const hub = new Hub(store, bus, createMetrics(), createLogger('silent'), 'test-node');

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const serverSide = new Promise<WebSocket>((resolve) => wss.on('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  cleanups.push(() => client.terminate());
  const received: number[] = [];
  client.on('message', (data) => received.push(JSON.parse(String(data)).seq));
  const conn = new Connection(await serverSide, Date.now(), 10_000, 30_000, 100, 1 << 20);
  hub.add(conn);
  conn.subscribedMask = ALL_TYPES_MASK;
  hub.attach(conn, account, 'key-1', 4); // the account's stream is at seq 4
  const event = (seq: number): AccountEvent => ({
    account_id: account.account_id,
    seq,
    msg_id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    msg_type: 'BID_REQUEST',
    payload_json: '{}',
    source_id: null,
    created_at_ms: Date.now(),
  });
  return { hub, accountId: account.account_id, event, received };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('hub ordering', () => {
  it('a batch that is contiguous at first but has a hole later loses nothing', async () => {
    const { hub, accountId, event, received } = await setup();
    hub.receive(accountId, [event(5), event(6), event(8)]);
    hub.receive(accountId, [event(7)]);
    await until(() => received.length >= 4);
    expect(received).toEqual([5, 6, 7, 8]);
  });

  it('batches arriving in reverse order are delivered in seq order, each once', async () => {
    const { hub, accountId, event, received } = await setup();
    hub.receive(accountId, [event(9), event(10)]);
    hub.receive(accountId, [event(7), event(8)]);
    hub.receive(accountId, [event(5), event(6)]);
    hub.receive(accountId, [event(6), event(7)]); // duplicates (e.g. from a catch-up)
    await until(() => received.length >= 6);
    await new Promise((r) => setTimeout(r, 50));
    expect(received).toEqual([5, 6, 7, 8, 9, 10]);
  });
});
