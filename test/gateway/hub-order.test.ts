/**
 * The hub's per-account sequencer and lifecycle, in-process (real SQLite store, controlled bus,
 * recording transport): ordering of out-of-order batches, bounded holding, announced skips, the
 * race of two first connections (issue 9 defect 1) and revocation racing authentication (defect 2).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/gateway/connection.js';
import type { AccountEvent } from '../../src/store/types.js';
import { appendEvent, createHarness, RecordingTransport, settle, type Harness } from './helpers/harness.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function setup(env: Record<string, string> = {}, limits?: Parameters<typeof createHarness>[1]) {
  const h = await createHarness(env, limits);
  harnesses.push(h);
  const account = await h.store.createAccount({});
  const { token, key } = await h.store.createApiKey(account.account_id, {});
  return { h, account, token, key, accountId: account.account_id };
}

async function connect(h: Harness, token: string, rooms: string[] = ['ALL']): Promise<{ conn: Connection; t: RecordingTransport }> {
  const t = new RecordingTransport();
  const conn = h.gateway.open(t);
  await h.gateway.session.authenticate(conn, token);
  await h.gateway.session.subscribe(conn, rooms, undefined);
  return { conn, t };
}

/** Events of seqs `from`..`to` as stored (appended for real, delivered by the test). */
async function stored(h: Harness, accountId: string, n: number): Promise<AccountEvent[]> {
  const out: AccountEvent[] = [];
  for (let i = 0; i < n; i++) out.push(...(await appendEvent(h.store, [accountId], 'BID_REQUEST', Date.now())));
  return out;
}

describe('sequencer ordering', () => {
  it('a batch that is contiguous at first but has a hole later loses nothing', async () => {
    const { h, accountId, token } = await setup();
    const { t } = await connect(h, token);
    const ev = await stored(h, accountId, 4);
    h.hub.receive(accountId, [ev[0], ev[1], ev[3]]);
    h.hub.receive(accountId, [ev[2]]);
    await settle();
    expect(t.events().map((f) => f.seq)).toEqual([1, 2, 3, 4]);
  });

  it('batches arriving in reverse order are delivered in seq order, each once', async () => {
    const { h, accountId, token } = await setup();
    const { t } = await connect(h, token);
    const ev = await stored(h, accountId, 6);
    h.hub.receive(accountId, [ev[4], ev[5]]);
    h.hub.receive(accountId, [ev[2], ev[3]]);
    h.hub.receive(accountId, [ev[0], ev[1]]);
    h.hub.receive(accountId, [ev[1], ev[2]]); // duplicates (e.g. from a catch-up)
    await settle(50);
    expect(t.events().map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a hole the bus never fills is read from the store after a short wait', async () => {
    const { h, accountId, token } = await setup();
    const { t } = await connect(h, token);
    const ev = await stored(h, accountId, 5);
    h.hub.receive(accountId, [ev[3], ev[4]]); // 1-3 lost on the bus
    await settle(100);
    expect(t.events().map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a hole the store no longer has (pruned) is announced with a gap frame, never skipped silently', async () => {
    const { h, accountId, token } = await setup();
    const { t } = await connect(h, token);
    const base = Date.now() - 60_000;
    const ev: AccountEvent[] = [];
    for (let i = 0; i < 4; i++) ev.push(...(await appendEvent(h.store, [accountId], 'BID_REQUEST', base + i)));
    await h.store.pruneEvents(base + 3); // prunes seqs 1-3
    h.hub.receive(accountId, [ev[3]]); // 4 arrives, 1-3 never will
    await settle(100);
    expect(t.frames.filter((f) => f.msg_type === 'gap' || typeof f.seq === 'number').map((f) => (f.msg_type === 'gap' ? `gap ${f.payload.from_seq}-${f.payload.to_seq}` : f.seq))).toEqual([
      'gap 1-3',
      4,
    ]);
  });

  it('out-of-order events held while the store fails are bounded (count), none lost once it recovers', async () => {
    const { h, accountId, token } = await setup({}, { maxPending: 100, maxPendingBytes: 1 << 20, gapWaitMs: 5, retryMs: 20, fillPage: 64 });
    const { t } = await connect(h, token);
    const ev = await stored(h, accountId, 400);
    const read = h.store.readEvents.bind(h.store);
    let failing = true;
    h.store.readEvents = async (q) => {
      if (failing) throw new Error('store down');
      return read(q);
    };
    // Seq 1 is lost; 2..400 arrive one by one while every gap fill fails.
    for (const e of ev.slice(1)) h.hub.receive(accountId, [e]);
    const seq = (h.hub as unknown as { accounts: Map<string, { sequencer: { pendingCount: number } }> }).accounts.get(accountId)!.sequencer;
    expect(seq.pendingCount).toBeLessThanOrEqual(100);
    expect(t.events()).toHaveLength(0);
    failing = false;
    await settle(300);
    expect(t.events().map((f) => f.seq)).toEqual(ev.map((e) => e.seq));
  });
});

describe('per-account lifecycle on a node', () => {
  it('two first connections racing: the first closes while the account is being prepared; the second still receives remote events (defect 1)', async () => {
    const { h, accountId, token } = await setup();
    h.bus.subscribeDelayTicks = 3; // a broker that takes a moment to confirm SUBSCRIBE
    const t1 = new RecordingTransport();
    const t2 = new RecordingTransport();
    const c1 = h.gateway.open(t1);
    const c2 = h.gateway.open(t2);
    const a1 = h.gateway.session.authenticate(c1, token);
    const a2 = h.gateway.session.authenticate(c2, token);
    // Let both lookups finish; the preparation now waits for the broker.
    for (let i = 0; i < 20 && h.bus.refs.size === 0; i++) await Promise.resolve();
    expect(h.bus.refs.get(accountId)).toBe(1);
    h.gateway.closed(c1);
    await Promise.all([a1, a2]);
    expect(c2.isLive).toBe(true);
    await h.gateway.session.subscribe(c2, ['ALL'], undefined);
    // The node still listens to the account: an event published through another node arrives.
    expect(h.bus.refs.get(accountId)).toBe(1);
    const [e] = await appendEvent(h.store, [accountId], 'BID_REQUEST', Date.now());
    h.bus.remote(accountId, [e]);
    h.bus.release(0);
    await settle();
    expect(t2.events().map((f) => f.seq)).toEqual([e.seq]);
    // The last leave releases the subscription.
    h.gateway.closed(c2);
    await settle();
    expect(h.bus.refs.has(accountId)).toBe(false);
  });

  it('a key disabled while its connection waits for the account preparation is refused (defect 2)', async () => {
    const { h, key, token } = await setup();
    h.bus.subscribeDelayTicks = 3;
    const t = new RecordingTransport();
    const c = h.gateway.open(t);
    const auth = h.gateway.session.authenticate(c, token);
    for (let i = 0; i < 20 && h.bus.refs.size === 0; i++) await Promise.resolve();
    await h.store.setApiKeyStatus(key.key_id, 'inactive');
    await h.gateway.revokeKey(key.key_id, key.account_id, 'inactive');
    await auth;
    expect(c.isLive).toBe(false);
    expect(t.frames.map((f) => f.msg_type)).toEqual(['error']);
    expect(t.frames[0].payload.code).toBe('AUTH_API_KEY_INACTIVE');
    expect(t.closedWith?.code).toBe(4001);
  });

  it('a key disabled while its lookup is in flight is refused even if the lookup saw it active (tombstone)', async () => {
    const { h, key, token } = await setup();
    const lookup = h.store.lookupToken.bind(h.store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h.store.lookupToken = async (tok, now) => {
      const result = await lookup(tok, now); // sees the key active
      await gate;
      return result;
    };
    const t = new RecordingTransport();
    const c = h.gateway.open(t);
    const auth = h.gateway.session.authenticate(c, token);
    await settle();
    await h.store.setApiKeyStatus(key.key_id, 'inactive');
    await h.gateway.revokeKey(key.key_id, key.account_id, 'inactive');
    release();
    await auth;
    expect(c.isLive).toBe(false);
    expect(t.closedWith?.code).toBe(4001);
    // Re-activated: the tombstone is dropped and a new authentication succeeds.
    await h.store.setApiKeyStatus(key.key_id, 'active');
    await h.gateway.keyEnabled(key.key_id);
    h.store.lookupToken = lookup;
    const { conn } = await connect(h, token);
    expect(conn.isLive).toBe(true);
  });

  it('expiry is checked against each event’s acceptance time on delivery (defect 5)', async () => {
    const { h, accountId } = await setup();
    const expiresAt = Date.now() + 60_000;
    const { token } = await h.store.createApiKey(accountId, { expires_at: new Date(expiresAt).toISOString() });
    const { t } = await connect(h, token);
    const before = await appendEvent(h.store, [accountId], 'BID_REQUEST', expiresAt - 1);
    const after = await appendEvent(h.store, [accountId], 'BID_REQUEST', expiresAt);
    await h.bus.publishEvents(accountId, before);
    await h.bus.publishEvents(accountId, after);
    expect(t.events().map((f) => f.seq)).toEqual([before[0].seq]);
    expect(t.frames.at(-1)?.payload?.code).toBe('AUTH_API_KEY_EXPIRED');
    expect(t.closedWith?.code).toBe(4001);
  });

  it('every subscribed carries last_seq; a second subscribe below the position announces the new rooms’ skipped history', async () => {
    const { h, accountId, token } = await setup();
    for (const type of ['BID_REQUEST', 'BID_OUTBID', 'BID_REQUEST']) await h.bus.publishEvents(accountId, await appendEvent(h.store, [accountId], type, Date.now()));
    const { conn, t } = await connect(h, token, ['BID_REQUEST']);
    expect(t.frames.find((f) => f.msg_type === 'subscribed')?.payload).toEqual({ rooms: ['BID_REQUEST'], last_seq: 3 });
    await h.bus.publishEvents(accountId, await appendEvent(h.store, [accountId], 'BID_REQUEST', Date.now()));
    expect(conn.lastSeq).toBe(4);
    await h.gateway.session.subscribe(conn, ['BID_OUTBID'], 1);
    const sub = t.frames.filter((f) => f.msg_type === 'subscribed').at(-1)!;
    expect(sub.payload).toEqual({ rooms: ['BID_OUTBID'], resumed_from: 1, last_seq: 4, gap: { from_seq: 2, to_seq: 4 } });
  });

  it('a range pruned while a multi-page replay waits for the reader is announced with a gap frame at that point (defect 8)', async () => {
    // Pages and pacing are both a quarter of the outbound limit (1 KiB) in payload bytes: with
    // ~100-byte payloads a page holds about 10 events, so the replay really spans several pages.
    const { h, accountId, token } = await setup({ TPX_MAX_OUTBOUND_BYTES: '4096' });
    const base = Date.now() - 60_000;
    const payload = JSON.stringify({ pad: 'x'.repeat(100) });
    for (let i = 0; i < 60; i++) await appendEvent(h.store, [accountId], 'BID_REQUEST', base + i, payload);
    const t = new RecordingTransport();
    const conn = h.gateway.open(t);
    await h.gateway.session.authenticate(conn, token);
    t.stalled = true; // the reader stops: the replay parks on waitForDrain
    const replay = h.gateway.session.subscribe(conn, ['ALL'], 0);
    await settle();
    const sentBeforePrune = t.events().length;
    expect(sentBeforePrune).toBeGreaterThan(0);
    expect(sentBeforePrune).toBeLessThan(40);
    await h.store.pruneEvents(base + 40); // seqs 1-40 gone while the replay waits
    t.release();
    await replay;
    const stream = t.frames.filter((f) => f.msg_type === 'gap' || typeof f.seq === 'number');
    const covered: number[] = [];
    for (const f of stream) {
      if (f.msg_type === 'gap') for (let s = f.payload.from_seq; s <= f.payload.to_seq; s++) covered.push(s);
      else covered.push(f.seq!);
    }
    expect(covered).toEqual(Array.from({ length: 60 }, (_, i) => i + 1)); // every seq sent or announced, once, in order
    expect(stream.some((f) => f.msg_type === 'gap')).toBe(true);
  });

  it('a key revoked while its connection’s outbound queue is full still closes with 4001 (not 4009)', async () => {
    const { h, accountId, key, token } = await setup();
    const t = new RecordingTransport(3000);
    const conn = h.gateway.open(t);
    await h.gateway.session.authenticate(conn, token);
    await h.gateway.session.subscribe(conn, ['ALL'], undefined);
    t.stalled = true;
    // Fill the queue to just under the limit: no room left for an error frame.
    const payload = JSON.stringify({ pad: 'x'.repeat(2800) });
    await h.bus.publishEvents(accountId, await appendEvent(h.store, [accountId], 'BID_REQUEST', Date.now(), payload));
    expect(conn.isLive).toBe(true);
    await h.store.setApiKeyStatus(key.key_id, 'inactive');
    await h.gateway.revokeKey(key.key_id, accountId, 'inactive');
    expect(t.closedWith).toMatchObject({ code: 4001, aborted: true });
  });
});
