/**
 * TpxClient state machine against a scripted in-memory socket, with vitest fake timers
 * (no wall-clock assertions: time only moves when the test advances it).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TpxClient, type TpxClientOptions } from '../../packages/client/src/client.js';
import { Deduplicator } from '../../packages/client/src/dedup.js';
import { TpxAuthError, TpxHandlerError, TpxServerError, type TpxError } from '../../packages/client/src/errors.js';
import type { ReconnectingInfo, TpxEvent } from '../../packages/client/src/types.js';
import { fakeFactory } from './helpers/fake-socket.js';

const tick = () => vi.advanceTimersByTimeAsync(0);

function setup(opts: Partial<TpxClientOptions> = {}) {
  const f = fakeFactory();
  const client = new TpxClient({ url: 'ws://fake/ws', token: 'tp_live_x', webSocketFactory: f.factory, ...opts });
  const states: string[] = [];
  const errors: TpxError[] = [];
  const reconnecting: ReconnectingInfo[] = [];
  client.on('state', (s) => void states.push(s));
  client.on('error', (e) => void errors.push(e));
  client.on('reconnecting', (i) => void reconnecting.push(i));
  return { client, f, states, errors, reconnecting };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TpxClient: handshake and events', () => {
  it('authenticates, subscribes to the desired rooms, opens; connect() resolves', async () => {
    const { client, f, states } = setup({ rooms: ['BID_REQUEST', 'AUCTION_RESULT'] });
    const opened = vi.fn();
    client.on('open', opened);
    const p = client.connect();
    await tick();
    const s = f.last();
    s.open();
    expect(s.sent).toEqual([{ msg_type: 'authenticate', payload: { token: 'tp_live_x' } }]);
    s.receive({ msg_type: 'authenticated', payload: { account_id: 'acc-1', auth_method: 'api_key' } });
    expect(s.sent[1]).toEqual({ msg_type: 'subscribe', payload: { rooms: ['BID_REQUEST', 'AUCTION_RESULT'] } });
    expect(client.state).toBe('connecting');
    s.receive({ msg_type: 'subscribed', payload: { rooms: ['BID_REQUEST', 'AUCTION_RESULT'] } });
    await p;
    expect(client.state).toBe('open');
    expect(client.accountId).toBe('acc-1');
    expect(opened).toHaveBeenCalledWith({ accountId: 'acc-1', rooms: ['BID_REQUEST', 'AUCTION_RESULT'] });
    expect(states).toEqual(['connecting', 'open']);
    await client.close();
    expect(client.state).toBe('closed');
  });

  it('processes events strictly in order, awaiting async handlers; lastSeq advances after the handler', async () => {
    const { client, f } = setup();
    void client.connect();
    await tick();
    f.last().handshake();
    const log: string[] = [];
    const gates: Array<() => void> = [];
    client.on('BID_REQUEST', async (e) => {
      log.push(`start ${e.seq} ${e.payload.conversation_id}`);
      await new Promise<void>((r) => gates.push(r));
      log.push(`end ${e.seq}`);
    });
    client.on('event', (e) => void log.push(`any ${e.msg_type} ${e.seq}`));
    f.last().event(1);
    f.last().event(2);
    f.last().event(3, 'PAYMENT_SETTLED');
    await tick();
    expect(log).toEqual(['start 1 c-1']);
    expect(client.lastSeq).toBeUndefined();
    gates.shift()!();
    await tick();
    expect(client.lastSeq).toBe(1);
    expect(log).toEqual(['start 1 c-1', 'end 1', 'any BID_REQUEST 1', 'start 2 c-2']);
    gates.shift()!();
    await client.drain();
    expect(log.slice(4)).toEqual(['end 2', 'any BID_REQUEST 2', 'any PAYMENT_SETTLED 3']);
    expect(client.lastSeq).toBe(3);
    expect(client.stats).toMatchObject({ received: 3, processed: 3, duplicates: 0 });
    await client.close();
  });

  it('answers server pings with pong', async () => {
    const { client, f } = setup();
    void client.connect();
    await tick();
    f.last().handshake();
    f.last().receive({ msg_type: 'ping', payload: {} });
    expect(f.last().sent.at(-1)).toEqual({ msg_type: 'pong', payload: {} });
    await client.close();
  });

  it('surfaces server errors as typed objects carrying the code; a refused subscribe still opens', async () => {
    const { client, f, errors } = setup({ rooms: ['PAYMENT_FAILED'] });
    const p = client.connect();
    await tick();
    const s = f.last();
    s.open();
    s.receive({ msg_type: 'authenticated', payload: { account_id: 'a', auth_method: 'api_key' } });
    s.receive({ msg_type: 'error', payload: { error: 'none accessible', code: 'NO_VALID_ROOMS', rooms: ['PAYMENT_FAILED'] } });
    await p;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TpxServerError);
    expect(errors[0]).toMatchObject({ code: 'NO_VALID_ROOMS', kind: 'server', fatal: false, details: { rooms: ['PAYMENT_FAILED'] } });
    await client.close();
  });

  it('rejects unknown rooms up front', () => {
    expect(() => new TpxClient({ url: 'ws://x', token: 't', rooms: ['NOPE' as never] })).toThrow(/unknown room/);
    expect(() => new TpxClient({ url: 'ws://x', token: 't', afterSeq: -1 })).toThrow(/afterSeq/);
  });

  it('gap from a resumed subscribe is delivered to the app in stream order', async () => {
    const { client, f } = setup({ afterSeq: 5 });
    const log: string[] = [];
    client.on('gap', (g) => void log.push(`gap ${g.from_seq}-${g.to_seq}`));
    client.on('event', (e) => void log.push(`event ${e.seq}`));
    void client.connect();
    await tick();
    const s = f.last();
    s.open();
    s.receive({ msg_type: 'authenticated', payload: { account_id: 'a', auth_method: 'api_key' } });
    expect(s.sent[1]).toEqual({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: 5 } });
    s.receive({ msg_type: 'subscribed', payload: { rooms: ['ALL'], resumed_from: 5, gap: { from_seq: 6, to_seq: 9 } } });
    s.event(10);
    await client.drain();
    expect(log).toEqual(['gap 6-9', 'event 10']);
    await client.close();
  });

  it('a throwing handler is reported as TpxHandlerError and processing continues', async () => {
    const { client, f, errors } = setup();
    void client.connect();
    await tick();
    f.last().handshake();
    const ok: number[] = [];
    client.on('BID_REQUEST', (e) => {
      if (e.seq === 1) throw new Error('bad');
      ok.push(e.seq!);
    });
    f.last().event(1);
    f.last().event(2);
    await client.drain();
    expect(ok).toEqual([2]);
    expect(errors[0]).toBeInstanceOf(TpxHandlerError);
    expect(errors[0]).toMatchObject({ code: 'HANDLER_FAILED', event: { seq: 1 } });
    expect(client.lastSeq).toBe(2);
    expect(client.stats.handlerErrors).toBe(1);
    await client.close();
  });

  it('async iterator: back-pressure, lastSeq advances only when the loop asks for the next event', async () => {
    const { client, f } = setup();
    void client.connect();
    await tick();
    f.last().handshake();
    const it = client.events(['BID_REQUEST', 'PAYMENT_CHARGED']);
    f.last().event(1);
    f.last().event(2, 'AUCTION_RESULT');
    f.last().event(3, 'PAYMENT_CHARGED');
    const first = await it.next();
    expect(first.value).toMatchObject({ seq: 1, msg_type: 'BID_REQUEST', via: 'websocket' });
    await tick();
    expect(client.lastSeq).toBeUndefined(); // still "in hand"
    const second = await it.next();
    expect(second.value).toMatchObject({ seq: 3 }); // seq 2 filtered out by type
    expect(client.lastSeq).toBe(2);
    const pending = it.next();
    await client.close();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('TpxClient: reconnect, resume, keepalive', () => {
  it('re-establishes desired subscriptions with after_seq = lastSeq after every reconnect; skips seq ≤ lastSeq', async () => {
    const { client, f, reconnecting } = setup({ rooms: ['BID_REQUEST'], reconnect: { random: () => 0.5 } });
    const seen: number[] = [];
    client.on('event', (e) => void seen.push(e.seq!));
    void client.connect();
    await tick();
    f.last().handshake();
    client.subscribe(['PAYMENT_CHARGED']);
    expect(f.last().sent.at(-1)).toEqual({ msg_type: 'subscribe', payload: { rooms: ['PAYMENT_CHARGED'] } });
    f.last().event(1);
    f.last().event(2);
    await client.drain();
    for (const code of [1006, 1001, 4003, 4009]) {
      f.last().drop(code, 'bye');
      expect(client.state).toBe('reconnecting');
      expect(reconnecting.at(-1)).toMatchObject({ closeCode: code });
      await vi.advanceTimersByTimeAsync(reconnecting.at(-1)!.delayMs);
      expect(client.state).toBe('connecting');
      f.last().handshake();
      const sub = f.last().sent.find((m) => m.msg_type === 'subscribe')!;
      expect(sub.payload).toEqual({ rooms: ['BID_REQUEST', 'PAYMENT_CHARGED'], after_seq: client.lastSeq });
      // The server replays from after_seq; a defensive duplicate is skipped.
      const next = client.lastSeq! + 1;
      f.last().event(next - 1);
      f.last().event(next);
      await client.drain();
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(client.stats.duplicates).toBe(4);
    expect(f.sockets).toHaveLength(5);
    await client.close();
  });

  it('events received but not yet processed when the connection drops are kept: the resume asks only for what comes after them', async () => {
    const { client, f, reconnecting } = setup();
    void client.connect();
    await tick();
    f.last().handshake();
    let release!: () => void;
    const seen: number[] = [];
    client.on('event', async (e) => {
      if (e.seq === 7) await new Promise<void>((r) => (release = r));
      seen.push(e.seq!);
    });
    f.last().event(7);
    f.last().event(8);
    await tick();
    f.last().drop(1006);
    await vi.advanceTimersByTimeAsync(reconnecting[0]!.delayMs);
    f.last().open();
    f.last().receive({ msg_type: 'authenticated', payload: { account_id: 'a', auth_method: 'api_key' } });
    // 7 is in progress, 8 queued: both are kept and handled, so the server need not send them again.
    expect(f.last().sent[1]!.payload.after_seq).toBe(8);
    f.last().receive({ msg_type: 'subscribed', payload: { rooms: ['ALL'], last_seq: 9, resumed_from: 8 } });
    f.last().event(9);
    release();
    await client.drain();
    expect(seen).toEqual([7, 8, 9]);
    expect(client.stats).toMatchObject({ received: 3, processed: 3, duplicates: 0 });
    await client.close();
  });

  it('backoff: delays stay within full-jitter bounds (1 s → 60 s), nothing connects before the delay', async () => {
    let r = 0.999999;
    const { client, f, reconnecting } = setup({ reconnect: { random: () => r } });
    void client.connect();
    await tick();
    const ceilings = [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000];
    for (let i = 0; i < ceilings.length; i++) {
      f.last().drop(1006);
      const info = reconnecting.at(-1)!;
      expect(info.attempt).toBe(i + 1);
      expect(info.delayMs).toBeGreaterThanOrEqual(0);
      expect(info.delayMs).toBeLessThanOrEqual(ceilings[i]!);
      expect(info.delayMs).toBeGreaterThan(ceilings[i]! - 2);
      const before = f.sockets.length;
      await vi.advanceTimersByTimeAsync(info.delayMs - 1);
      expect(f.sockets.length).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(f.sockets.length).toBe(before + 1);
    }
    // With real randomness every delay is within [0, ceiling].
    r = 0;
    f.last().drop(1006);
    expect(reconnecting.at(-1)!.delayMs).toBe(0);
    await client.close();
  });

  it('backoff resets after a stable connection, not after a short one', async () => {
    const { client, f, reconnecting } = setup({ reconnect: { random: () => 0.999999, stableAfterMs: 10_000 } });
    void client.connect();
    await tick();
    for (let i = 0; i < 3; i++) {
      f.last().drop(1006);
      await vi.advanceTimersByTimeAsync(reconnecting.at(-1)!.delayMs);
    }
    expect(reconnecting.at(-1)!.attempt).toBe(3);
    f.last().handshake();
    await vi.advanceTimersByTimeAsync(5_000); // short-lived
    f.last().drop(1001);
    expect(reconnecting.at(-1)!.attempt).toBe(4);
    expect(reconnecting.at(-1)!.delayMs).toBeGreaterThan(7_990);
    await vi.advanceTimersByTimeAsync(reconnecting.at(-1)!.delayMs);
    f.last().handshake();
    await vi.advanceTimersByTimeAsync(10_000); // stable
    f.last().drop(1001);
    expect(reconnecting.at(-1)!.attempt).toBe(1);
    expect(reconnecting.at(-1)!.delayMs).toBeLessThanOrEqual(1000);
    await client.close();
  });

  it('4001 after an AUTH_ error: fatal TpxAuthError with the server code, no retry ever', async () => {
    const { client, f, errors, states } = setup();
    const closed = vi.fn();
    client.on('closed', closed);
    const p = client.connect();
    await tick();
    f.last().open();
    f.last().receive({ msg_type: 'error', payload: { error: 'key deactivated', code: 'AUTH_API_KEY_INACTIVE' } });
    f.last().drop(4001, 'auth');
    await expect(p).rejects.toBeInstanceOf(TpxAuthError);
    expect(client.state).toBe('closed');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'auth', code: 'AUTH_API_KEY_INACTIVE', fatal: true });
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ reason: 'fatal', closeCode: 4001 }));
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(f.sockets).toHaveLength(1);
    expect(states).toEqual(['connecting', 'closed']);
  });

  it('4001 without a preceding error frame (key revoked mid-stream) is fatal too', async () => {
    const { client, f, errors } = setup();
    void client.connect().catch(() => undefined);
    await tick();
    f.last().handshake();
    f.last().drop(4001);
    expect(client.state).toBe('closed');
    expect(errors[0]).toMatchObject({ code: 'AUTH_FAILED', closeCode: 4001, fatal: true });
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(f.sockets).toHaveLength(1);
  });

  it('a silent connection (no ping within interval + grace, and no answer to its own ping) is declared dead and replaced', async () => {
    const { client, f, reconnecting } = setup({ pingIntervalMs: 30_000, keepaliveGraceMs: 10_000, reconnect: { random: () => 0 } });
    void client.connect();
    await tick();
    f.last().handshake();
    await vi.advanceTimersByTimeAsync(30_000);
    f.last().receive({ msg_type: 'ping', payload: {} }); // resets the deadline
    await vi.advanceTimersByTimeAsync(39_999);
    expect(client.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    // Silent for interval + grace: the client asks before it gives up.
    expect(f.sockets[0]!.sent.at(-1)).toEqual({ msg_type: 'ping', payload: {} });
    expect(f.sockets[0]!.terminated).toBe(false);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(client.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(f.sockets[0]!.terminated).toBe(true);
    expect(reconnecting.at(-1)!.error).toMatchObject({ code: 'KEEPALIVE_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(1);
    expect(f.sockets).toHaveLength(2);
    await client.close();
  });

  it('a server that pings every 60 s (TPX_PING_INTERVAL_MS above the default) is not mistaken for a dead one: answered probe, then its cadence learnt', async () => {
    const { client, f, reconnecting } = setup({ reconnect: { random: () => 0 } }); // defaults: 30 s + 10 s
    void client.connect();
    await tick();
    const s = f.last();
    s.handshake();
    let probes = 0;
    for (let minute = 1; minute <= 10; minute++) {
      for (let t = 0; t < 60; t++) {
        await vi.advanceTimersByTimeAsync(1_000);
        const pings = s.sent.filter((m) => m.msg_type === 'ping').length;
        if (pings > probes) {
          probes = pings;
          s.receive({ msg_type: 'pong', payload: {} }); // the server answers the client's ping (SPEC §2.1)
        }
      }
      s.receive({ msg_type: 'ping', payload: {} });
    }
    expect(reconnecting).toEqual([]);
    expect(f.sockets).toHaveLength(1);
    expect(probes).toBe(1); // only before the first ping: after it, the 60 s cadence is known
    await client.close();
  });



  it('a connection that never completes the handshake times out and is retried', async () => {
    const { client, f, reconnecting } = setup({ connectTimeoutMs: 5_000, reconnect: { random: () => 0 } });
    void client.connect();
    await tick();
    f.last().open(); // server never answers authenticate
    await vi.advanceTimersByTimeAsync(5_000);
    expect(reconnecting[0]!.error).toMatchObject({ code: 'CONNECT_TIMEOUT' });
    await vi.advanceTimersByTimeAsync(1);
    expect(f.sockets).toHaveLength(2);
    await client.close();
  });

  it('factory failures (network errors) are retried; maxAttempts closes the client', async () => {
    let calls = 0;
    const client = new TpxClient({
      url: 'ws://x/ws',
      token: 't',
      reconnect: { maxAttempts: 3, random: () => 0 },
      webSocketFactory: () => {
        calls++;
        throw new Error('ECONNREFUSED');
      },
    });
    const closed = vi.fn();
    client.on('closed', closed);
    const p = client.connect();
    p.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toBe(4);
    await expect(p).rejects.toMatchObject({ code: 'MAX_ATTEMPTS' });
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ reason: 'max_attempts' }));
  });

  it('shares the Deduplicator: an event already handled (e.g. by webhook) is skipped but advances lastSeq', async () => {
    const dedup = new Deduplicator();
    await dedup.run('m-2', () => undefined);
    const { client, f } = setup({ dedup });
    const seen: TpxEvent[] = [];
    client.on('event', (e) => void seen.push(e));
    void client.connect();
    await tick();
    f.last().handshake();
    f.last().event(1);
    f.last().event(2);
    f.last().event(3);
    await client.drain();
    expect(seen.map((e) => e.seq)).toEqual([1, 3]);
    expect(client.lastSeq).toBe(3);
    expect(dedup.has('m-1') && dedup.has('m-3')).toBe(true);
    await client.close();
  });

  it('bounded buffer (bytes): big events waiting for a slow handler stay under maxBufferedBytes; each is handled once, in order', async () => {
    const big = 'x'.repeat(100_000); // ~100 KB frames
    const { client, f, reconnecting } = setup({ maxBufferedBytes: 350_000, reconnect: { random: () => 0 } });
    const seen: number[] = [];
    let peakBytes = 0;
    const gates: Array<() => void> = [];
    client.on('event', async (e) => {
      peakBytes = Math.max(peakBytes, client.buffered.bytes);
      await new Promise<void>((r) => gates.push(r));
      seen.push(e.seq!);
    });
    void client.connect();
    await tick();
    f.last().handshake();
    const sendFrom = (first: number) => {
      for (let s = first; s <= 10; s++) f.last().event(s, 'BID_REQUEST', `m-${s}`, { conversation_id: `c-${s}`, blob: big });
    };
    sendFrom(1); // 1 in progress, 2..4 queued (3 × ~100 KB), 5 overflows
    expect(reconnecting.map((r) => r.error?.code)).toEqual(['BUFFER_OVERFLOW']);
    expect(client.buffered.events).toBe(3);
    expect(client.buffered.bytes).toBeLessThanOrEqual(350_000);
    for (let round = 0; seen.length < 10 && round < 20; round++) {
      while (gates.length > 0) {
        gates.shift()!();
        await tick();
      }
      await vi.advanceTimersByTimeAsync(1);
      const s = f.last();
      if (s.readyState === 0) {
        // A reconnect: handshake, then the server sends what comes after the resume point.
        s.handshake();
        sendFrom((s.sent.find((m) => m.msg_type === 'subscribe')!.payload.after_seq as number) + 1);
      }
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(peakBytes).toBeLessThanOrEqual(350_000);
    expect(client.stats.duplicates).toBe(0);
    await client.close();
  });

  it('bounded buffer (events): too many unprocessed events drops the connection, keeps the queue, waits for handlers, resumes after the queue', async () => {
    const { client, f, reconnecting } = setup({ maxBufferedEvents: 3, reconnect: { random: () => 0 } });
    const seen: number[] = [];
    let release!: () => void;
    client.on('event', async (e) => {
      if (e.seq === 1) await new Promise<void>((r) => (release = r));
      seen.push(e.seq!);
    });
    void client.connect();
    await tick();
    f.last().handshake();
    for (let s = 1; s <= 6; s++) f.last().event(s); // 1 in progress, 2..4 queued, 5 overflows
    expect(reconnecting[0]!.error).toMatchObject({ code: 'BUFFER_OVERFLOW' });
    expect(f.sockets[0]!.terminated).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(f.sockets).toHaveLength(1); // waits for the slow handler before reconnecting
    release();
    await vi.advanceTimersByTimeAsync(1);
    expect(f.sockets).toHaveLength(2);
    f.last().handshake();
    // 2..4 were kept and handled meanwhile: only 5 and 6 are asked for again.
    expect(f.last().sent.find((m) => m.msg_type === 'subscribe')!.payload.after_seq).toBe(4);
    expect(seen).toEqual([1, 2, 3, 4]);
    for (let s = 5; s <= 6; s++) {
      f.last().event(s);
      await tick();
    }
    await client.drain();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(f.sockets).toHaveLength(2);
    await client.close();
  });
});
