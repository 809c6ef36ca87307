/**
 * Model-based test (fast-check) of the hub, the sequencer and the connection lifecycle, in
 * process: the real Gateway/Hub/Session/Replayer over the real SQLite store, a controlled
 * in-memory bus (local-first deliveries, remote deliveries held, reordered, duplicated or lost,
 * per-account subscriptions honoured), and recording transports.
 *
 * Random interleavings of: connects (authentication left in flight), closes, subscribes with and
 * without after_seq, publishes (local, remote, lost), releases and duplicates of held
 * deliveries, bus reconnects, prunes, key deactivations and key expiry (the model clock passes
 * a key's expires_at; events carry their acceptance time). Async work is not awaited by the
 * command that starts it; `yield` commands let it progress partway.
 *
 * Invariant, per connection: it receives only its own account's events, in its rooms, with seq
 * strictly increasing (events and gap frames together); every event it should get is received
 * unless an announced gap covers it (a closed connection may stop early, but never skips);
 * nothing published after its key's deactivation returned, nothing accepted at or after its
 * key's expiry; a connection still open at the end has everything.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/gateway/connection.js';
import type { AccountEvent } from '../../src/store/types.js';
import { appendEvent, createHarness, RecordingTransport, settle, type Harness, type RecordedFrame } from './helpers/harness.js';

const TYPES = ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'PAYMENT_SETTLED'] as const;
const ROOM_CHOICES: string[][] = [['ALL'], ['BID_REQUEST'], ['BID_OUTBID', 'PAYMENT_SETTLED'], ['AUCTION_RESULT'], ['PAYMENT_SETTLED', 'ALL']];
/** Account 1 may access only these (so ALL and access masks are exercised). */
const RESTRICTED = ['BID_REQUEST', 'BID_OUTBID', 'PAYMENT_SETTLED'] as const;

type Cmd =
  | { t: 'open'; key: number; /** store latency of its key lookup, in event-loop turns */ lookupTicks: number }
  | { t: 'close'; conn: number }
  | { t: 'subscribe'; conn: number; rooms: number; /** seqs behind the head, or none */ after: number | null }
  | { t: 'publish'; accounts: number; type: number; path: 'local' | 'remote' | 'lost' }
  | { t: 'deliver'; index: number; duplicate: boolean }
  | { t: 'reconnect' }
  | { t: 'prune'; upTo: number }
  | { t: 'deactivate'; key: number }
  | { t: 'expire' }
  | { t: 'yield'; ticks: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('open' as const), key: fc.nat(3), lookupTicks: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('close' as const), conn: fc.nat(7) }) },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('subscribe' as const), conn: fc.nat(7), rooms: fc.nat(ROOM_CHOICES.length - 1), after: fc.option(fc.nat(4), { nil: null, freq: 2 }) }),
  },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('publish' as const), accounts: fc.integer({ min: 1, max: 3 }), type: fc.nat(TYPES.length - 1), path: fc.constantFrom('local' as const, 'local' as const, 'remote' as const, 'lost' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('deliver' as const), index: fc.nat(5), duplicate: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reconnect' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('prune' as const), upTo: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('deactivate' as const), key: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('expire' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('yield' as const), ticks: fc.integer({ min: 1, max: 6 }) }) },
);

interface KeyInfo {
  keyId: string;
  token: string;
  account: number;
  expiresAtMs: number;
  /** Per account index: the last seq appended before the deactivating call returned. */
  revokedAfter: number | null;
}

interface ConnInfo {
  conn: Connection;
  t: RecordingTransport;
  key: number;
  chain: Promise<void>;
}

interface StoredEvent {
  seq: number;
  msg_id: string;
  type: string;
  createdAt: number;
}

const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses.splice(0)) await h.close().catch(() => undefined);
});

async function runModel(cmds: Cmd[], brokerTicks: number): Promise<void> {
  const h = await createHarness({}, { maxPending: 50, maxPendingBytes: 1 << 20, gapWaitMs: 5, retryMs: 20, fillPage: 7 });
  harnesses.push(h);
  // A broker that takes a few turns to confirm SUBSCRIBE, and a store whose answers to key
  // lookups arrive some turns after it read the key (as over a network).
  h.bus.subscribeDelayTicks = brokerTicks;
  const lookup = h.store.lookupToken.bind(h.store);
  const lookupDelays: number[] = [];
  h.store.lookupToken = async (token, now) => {
    const result = await lookup(token, now);
    for (let i = lookupDelays.shift() ?? 0; i > 0; i--) await new Promise((r) => setImmediate(r));
    return result;
  };
  try {
    const accounts = [await h.store.createAccount({}), await h.store.createAccount({ rooms: [...RESTRICTED] })];
    const now = Date.now();
    const expiry = now + 600_000;
    let clock = now;
    const keys: KeyInfo[] = [];
    for (const [a, expiring] of [[0, false], [0, true], [1, false], [1, true]] as const) {
      const { key, token } = await h.store.createApiKey(accounts[a].account_id, { expires_at: expiring ? new Date(expiry).toISOString() : null });
      keys.push({ keyId: key.key_id, token, account: a, expiresAtMs: expiring ? expiry : Infinity, revokedAfter: null });
    }
    const log: StoredEvent[][] = [[], []];
    const conns: ConnInfo[] = [];
    const errors: unknown[] = [];

    for (const cmd of cmds) {
      switch (cmd.t) {
        case 'open': {
          if (conns.length >= 8) break;
          const t = new RecordingTransport();
          const conn = h.gateway.open(t);
          const info: ConnInfo = { conn, t, key: cmd.key, chain: Promise.resolve() };
          lookupDelays.push(cmd.lookupTicks);
          info.chain = h.gateway.session.authenticate(conn, keys[cmd.key].token).catch((e) => void errors.push(e));
          conns.push(info);
          break;
        }
        case 'close': {
          const c = conns.length ? conns[cmd.conn % conns.length] : undefined;
          if (c) h.gateway.closed(c.conn);
          break;
        }
        case 'subscribe': {
          const c = conns.length ? conns[cmd.conn % conns.length] : undefined;
          if (!c) break;
          const rooms = ROOM_CHOICES[cmd.rooms];
          // after_seq: a few seqs behind the account's head (what a resuming client would send).
          const head = log[keys[c.key].account].at(-1)?.seq ?? 0;
          const after = cmd.after === null ? undefined : Math.max(0, head - cmd.after);
          c.chain = c.chain.then(() => h.gateway.session.subscribe(c.conn, rooms, after)).catch((e) => void errors.push(e));
          break;
        }
        case 'publish': {
          const targets = [0, 1].filter((a) => (cmd.accounts >> a) & 1);
          const type = TYPES[cmd.type];
          const events = await appendEvent(h.store, targets.map((a) => accounts[a].account_id), type, ++clock);
          for (const e of events) {
            const a = e.account_id === accounts[0].account_id ? 0 : 1;
            log[a].push({ seq: e.seq, msg_id: e.msg_id, type: e.msg_type, createdAt: e.created_at_ms });
            if (cmd.path === 'local') await h.bus.publishEvents(e.account_id, [e]);
            else if (cmd.path === 'remote') h.bus.remote(e.account_id, [e]);
          }
          break;
        }
        case 'deliver': {
          if (h.bus.queue.length === 0) break;
          const i = cmd.index % h.bus.queue.length;
          h.bus.release(i, cmd.duplicate);
          break;
        }
        case 'reconnect':
          h.bus.reconnect();
          break;
        case 'prune': {
          // Prune everything accepted up to the model clock minus upTo.
          await h.store.pruneEvents(clock - cmd.upTo + 1);
          break;
        }
        case 'deactivate': {
          const k = keys[cmd.key];
          if (k.revokedAfter !== null) break;
          await h.store.setApiKeyStatus(k.keyId, 'inactive');
          await h.gateway.revokeKey(k.keyId, accounts[k.account].account_id, 'inactive');
          k.revokedAfter = log[k.account].length === 0 ? 0 : log[k.account][log[k.account].length - 1].seq;
          break;
        }
        case 'expire':
          clock = Math.max(clock, expiry);
          break;
        case 'yield':
          for (let i = 0; i < cmd.ticks; i++) await Promise.resolve();
          if (cmd.ticks > 3) await new Promise((r) => setImmediate(r));
          break;
      }
    }

    // Quiesce: every held delivery arrives (in reverse order), in-flight work finishes, then one
    // sentinel event per account comes through the bus from "another node": a node that still
    // listens to the account fills any hole before it from the store. (No final bus reconnect:
    // its catch-up would hide a node that stopped listening, issue 9 defect 1.)
    while (h.bus.queue.length > 0) h.bus.release(h.bus.queue.length - 1);
    await Promise.all(conns.map((c) => c.chain));
    await settle(20);
    for (const a of [0, 1]) {
      const [e] = await appendEvent(h.store, [accounts[a].account_id], 'BID_REQUEST', ++clock);
      log[a].push({ seq: e.seq, msg_id: e.msg_id, type: e.msg_type, createdAt: e.created_at_ms });
      h.bus.remote(e.account_id, [e]);
      h.bus.release(0);
    }
    await settle(60);
    await Promise.all(conns.map((c) => c.chain));
    await settle(60);
    expect(errors).toEqual([]);

    const pruned = [0, 0];
    for (const a of [0, 1]) {
      const head = await h.store.readEvents({ account_id: accounts[a].account_id, after_seq: 0, types: null, limit: 0 });
      pruned[a] = head.pruned_through;
    }
    for (const [i, c] of conns.entries()) checkConnection(`conn ${i} (key ${c.key})`, c, keys[c.key], log[keys[c.key].account], pruned[keys[c.key].account], keys[c.key].account === 1);
  } finally {
    await h.close().catch(() => undefined);
    harnesses.splice(harnesses.indexOf(h), 1);
  }
}

function checkConnection(name: string, c: ConnInfo, key: KeyInfo, log: StoredEvent[], prunedThrough: number, restricted: boolean): void {
  const bySeq = new Map(log.map((e) => [e.seq, e]));
  const access = new Set<string>(restricted ? RESTRICTED : TYPES);
  const frames = c.t.frames;
  let position = 0;
  const gaps: Array<[number, number]> = [];
  const received = new Set<number>();
  /** Subscriptions in effect: [start, types] — every later matching event is owed. */
  const owed: Array<{ start: number; types: Set<string> }> = [];
  const allRooms = new Set<string>();
  let acked = 0;
  const ctx = () => `${name}: ${JSON.stringify(frames.map((f) => (f.seq !== undefined ? f.seq : `${f.msg_type}${f.payload ? JSON.stringify(f.payload) : ''}`)))}`;
  const typesOf = (rooms: string[]) => new Set(rooms.flatMap((r) => (r === 'ALL' ? [...access] : access.has(r) ? [r] : [])));
  for (const f of frames as RecordedFrame[]) {
    if (f.msg_type === 'subscribed') {
      const rooms = f.payload.rooms as string[];
      for (const r of rooms) allRooms.add(r);
      if (typeof f.payload.resumed_from === 'number') {
        // The client says it processed everything up to after_seq: nothing at or below is owed.
        acked = Math.max(acked, f.payload.resumed_from);
        owed.push({ start: f.payload.resumed_from, types: typesOf([...allRooms]) });
        if (f.payload.gap) gaps.push([f.payload.gap.from_seq, f.payload.gap.to_seq]);
      } else {
        expect(typeof f.payload.last_seq, ctx()).toBe('number');
        owed.push({ start: f.payload.last_seq, types: typesOf(rooms) });
      }
    } else if (f.msg_type === 'gap') {
      const { from_seq, to_seq } = f.payload;
      expect(from_seq, `gap after position ${ctx()}`).toBeGreaterThan(position);
      expect(to_seq, `a gap frame announces only pruned seqs ${ctx()}`).toBeLessThanOrEqual(prunedThrough);
      gaps.push([from_seq, to_seq]);
      position = to_seq;
    } else if (typeof f.seq === 'number') {
      const e = bySeq.get(f.seq);
      expect(e, `event of another account or unknown seq ${f.seq} ${ctx()}`).toBeDefined();
      expect(f.msg_id, ctx()).toBe(e!.msg_id);
      expect(f.seq, `strictly increasing ${ctx()}`).toBeGreaterThan(position);
      expect(access.has(e!.type), ctx()).toBe(true);
      expect(e!.createdAt < key.expiresAtMs, `event accepted at/after expiry delivered ${ctx()}`).toBe(true);
      if (key.revokedAfter !== null) expect(f.seq, `event after revocation ${ctx()}`).toBeLessThanOrEqual(key.revokedAfter);
      expect(typesOf([...allRooms]).has(e!.type), `event outside the connection's rooms ${ctx()}`).toBe(true);
      position = f.seq;
      received.add(f.seq);
    }
  }
  const inGap = (seq: number) => gaps.some(([a, b]) => seq >= a && seq <= b);
  const open = !c.t.closedWith && c.conn.isLive;
  const limit = Math.min(key.revokedAfter ?? Infinity, open ? Infinity : position);
  for (const e of log) {
    if (e.seq > limit || e.seq <= acked || e.createdAt >= key.expiresAtMs || inGap(e.seq) || received.has(e.seq)) continue;
    const isOwed = owed.some((o) => e.seq > o.start && o.types.has(e.type));
    expect(isOwed, `seq ${e.seq} (${e.type}) owed but never received nor announced ${ctx()}`).toBe(false);
  }
  if (key.revokedAfter !== null) expect(c.conn.isLive, `${name} still live after its key was deactivated`).toBe(false);
}

describe('model: hub, sequencer and connection lifecycle', () => {
  it('every connection gets exactly its account’s events in its rooms, in order, gaps announced, nothing after revocation', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 20, maxLength: 60, size: 'max' }), fc.nat(3), async (cmds, brokerTicks) => {
        await runModel(cmds, brokerTicks);
      }),
      { numRuns: Number(process.env.TPX_MODEL_RUNS ?? 80), seed: process.env.TPX_TEST_SEED ? Number(process.env.TPX_TEST_SEED) : undefined, endOnFailure: true },
    );
  }, 120_000);
});
