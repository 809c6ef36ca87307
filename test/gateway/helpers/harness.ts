/**
 * An in-process gateway for model-based and unit tests: the real Gateway, Hub, Session, Replayer
 * and sequencer over the real SQLite store in a temp dir, with a bus whose deliveries the test
 * controls (held, reordered, duplicated, dropped; per-account subscriptions honoured like Redis),
 * and a recording Transport (the seam the gateway defines) instead of a socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemoryBus } from '../../../src/bus/memory/index.js';
import { loadConfig, type Config } from '../../../src/config/index.js';
import { Gateway } from '../../../src/gateway/gateway.js';
import { Hub } from '../../../src/gateway/hub.js';
import type { SequencerLimits } from '../../../src/gateway/sequencer.js';
import type { ControlType, EventFrame, Transport } from '../../../src/gateway/transport.js';
import { createLogger } from '../../../src/observability/logger.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { createStore } from '../../../src/store/index.js';
import type { AccountEvent, Store } from '../../../src/store/types.js';

export interface RecordedFrame {
  msg_type: string;
  seq?: number;
  msg_id?: string;
  payload?: any;
}

/** A transport that records what it would send. `limit` emulates the outbound limit. */
export class RecordingTransport implements Transport {
  readonly frames: RecordedFrame[] = [];
  closedWith: { code: number; reason: string; aborted: boolean } | null = null;
  answersPings = true;
  readingPaused = false;
  queuedBytes = 0;
  sentBytes = 0;
  readonly remoteAddress = '127.0.0.1';
  /** While set, waitForDrain waits for release(). */
  private drainWaiters: Array<() => void> = [];
  stalled = false;

  constructor(private readonly limit = Infinity) {}

  sendEvent(frame: EventFrame): boolean {
    return this.record(frame.json);
  }
  sendControl(_type: ControlType, json: string): boolean {
    return this.record(json);
  }
  private record(json: string): boolean {
    if (this.closedWith) return true;
    if (this.queuedBytes + json.length > this.limit) return false;
    if (this.stalled) this.queuedBytes += json.length;
    else this.sentBytes += json.length;
    this.frames.push(JSON.parse(json) as RecordedFrame);
    return true;
  }
  waitForDrain(): Promise<void> {
    if (!this.stalled || this.closedWith) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
  /** The peer reads again: everything queued is sent. */
  release(): void {
    this.stalled = false;
    this.sentBytes += this.queuedBytes;
    this.queuedBytes = 0;
    for (const w of this.drainWaiters.splice(0)) w();
  }
  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason, aborted: false };
    this.release();
  }
  abort(code: number, reason: string): void {
    this.closedWith ??= { code, reason, aborted: true };
    this.release();
  }
  cut(): void {
    this.closedWith ??= { code: 1006, reason: 'cut', aborted: true };
    this.release();
  }
  events(): RecordedFrame[] {
    return this.frames.filter((f) => typeof f.seq === 'number' && f.msg_type !== 'gap');
  }
}

interface Delivery {
  accountId: string;
  events: AccountEvent[];
}

/**
 * An in-memory bus that behaves like the Redis bus seen from one node: local publishes reach the
 * handlers at once (local-first), "remote" deliveries are queued until the test releases them and
 * only reach a node subscribed to the account at that moment; control messages apply locally.
 */
export class ControlledBus extends MemoryBus {
  override hearing = true;
  readonly refs = new Map<string, number>();
  readonly queue: Delivery[] = [];
  private reconnectHandlers: Array<() => void> = [];
  private hearingHandlers: Array<(h: boolean) => void> = [];
  /** subscribeAccount waits for this many event-loop turns (a slow broker). */
  subscribeDelayTicks = 0;

  /** An event published through another node: held until released. */
  remote(accountId: string, events: AccountEvent[]): void {
    this.queue.push({ accountId, events });
  }
  /** Release the i-th held delivery (reaches this node only if it subscribes the account). */
  release(i: number, keep = false): void {
    const d = keep ? this.queue[i] : this.queue.splice(i, 1)[0];
    if (d && (this.refs.get(d.accountId) ?? 0) > 0) void this.publishEvents(d.accountId, d.events);
  }
  override async subscribeAccount(accountId: string): Promise<void> {
    this.refs.set(accountId, (this.refs.get(accountId) ?? 0) + 1);
    for (let i = 0; i < this.subscribeDelayTicks; i++) await new Promise((r) => setImmediate(r));
  }
  override async unsubscribeAccount(accountId: string): Promise<void> {
    const n = (this.refs.get(accountId) ?? 0) - 1;
    if (n <= 0) this.refs.delete(accountId);
    else this.refs.set(accountId, n);
  }
  override onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }
  override onHearing(handler: (h: boolean) => void): void {
    this.hearingHandlers.push(handler);
  }
  /** The bus came back after a drop: every node catches up from the store. */
  reconnect(): void {
    for (const handler of this.reconnectHandlers) handler();
  }
}

export interface Harness {
  dir: string;
  config: Config;
  store: Store;
  bus: ControlledBus;
  hub: Hub;
  gateway: Gateway;
  close(): Promise<void>;
}

export async function createHarness(env: Record<string, string> = {}, sequencerLimits?: SequencerLimits): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-model-'));
  const config = loadConfig({ TPX_DATA_DIR: dir, TPX_PING_INTERVAL_MS: '3600000', TPX_PONG_TIMEOUT_MS: '3600000', TPX_AUTH_TIMEOUT_MS: '3600000', ...env });
  const store = createStore(config);
  await store.init();
  const bus = new ControlledBus();
  const metrics = createMetrics();
  const logger = createLogger('silent');
  const hub = new Hub(store, bus, metrics, logger, 'model-node', sequencerLimits);
  const gateway = new Gateway(hub, store, config, metrics, logger);
  return {
    dir,
    config,
    store,
    bus,
    hub,
    gateway,
    async close() {
      await gateway.shutdown(0);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Append one event for `accountIds` (as the publish pipeline would) with a chosen acceptance time. */
export async function appendEvent(store: Store, accountIds: string[], msgType: string, createdAtMs: number, payload = '{}'): Promise<AccountEvent[]> {
  const [result] = await store.appendEvents([{
    msg_id: randomUUID(),
    msg_type: msgType as AccountEvent['msg_type'],
    payload_json: payload,
    source_id: null,
    target: accountIds,
    created_at_ms: createdAtMs,
  }]);
  return result.events;
}

/** Let every pending microtask, immediate and short timer run. */
export async function settle(ms = 0): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}
