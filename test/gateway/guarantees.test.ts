/**
 * Issue 9 guarantees on one node, with real sockets on loopback: expiry on delivery (defect 5),
 * clients that stop reading (defect 6: replies count toward the outbound limit, inbound is
 * bounded behind a parked replay, a "blind pong" does not keep a stalled socket alive), a range
 * pruned while a replay runs is announced (defect 8), `last_seq` in every `subscribed`
 * (issue 11), and the operator's disconnect.
 */
import type { Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, createKey, publish, publishBatch, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, WsTestClient, type Frame } from '../helpers/ws-client.js';

afterAll(() => stopAll());
afterEach(() => closeAllClients());

function socketOf(client: WsTestClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

async function closes(server: TestServer, code: number): Promise<number> {
  const text = (await api(server, 'GET', '/metrics', undefined, { token: null })).text;
  const m = new RegExp(`^tpx_ws_closes_total\\{code="${code}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function rss(server: TestServer): Promise<number> {
  const text = (await api(server, 'GET', '/metrics', undefined, { token: null })).text;
  return Number(/^tpx_process_process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** Publish `n` events of ~`kib` KiB each (unknown payload fields pass through), in batches. */
async function publishLarge(server: TestServer, accountId: string, n: number, kib: number): Promise<void> {
  const padding = 'x'.repeat(kib * 1024);
  const batch = Math.max(1, Math.floor(2048 / kib));
  for (let i = 0; i < n; i += batch) {
    await publishBatch(
      server,
      Array.from({ length: Math.min(batch, n - i) }, () => {
        const body = eventBody('BID_REQUEST', [accountId]);
        (body.payload as Record<string, unknown>).padding = padding;
        return body;
      }),
    );
  }
}

describe('key expiry is checked on delivery (SPEC §2.5, defect 5)', () => {
  it('no event accepted at or after expires_at reaches the connection, even between sweeps', async () => {
    const server = await startTestServer();
    const { accountId } = await createAccountWithKey(server);
    const expiresAt = Date.now() + 1500;
    const key = await createKey(server, accountId, { expires_at: new Date(expiresAt).toISOString() });
    const c = await connectAuthed(server.wsUrl, key.token, ['ALL']);
    const lateIds = new Set<string>();
    // Publish every ~20 ms until a dozen were sent after the expiry (a publish sent after
    // expires_at is accepted after it); bounded in time, and by count rather than by a time
    // window so that a loaded machine still produces enough late events.
    const giveUpAt = expiresAt + 20_000;
    while ((Date.now() < expiresAt + 1200 || lateIds.size <= 10) && Date.now() < giveUpAt) {
      const sentAt = Date.now();
      const res = await publish(server, eventBody('BID_REQUEST', [accountId]));
      if (sentAt >= expiresAt) lateIds.add(res.msg_id);
      await sleep(20);
    }
    expect(lateIds.size).toBeGreaterThan(10);
    const closed = await c.waitClosed(10_000);
    expect(closed.code).toBe(4001);
    expect(c.history.find((f) => f.msg_type === 'error')?.payload?.code).toBe('AUTH_API_KEY_EXPIRED');
    const late = c.history.filter((f) => f.msg_id && lateIds.has(f.msg_id));
    expect(late.map((f) => f.seq), 'events accepted after expires_at were delivered').toEqual([]);
  });
});

describe('a client that stops reading (SPEC §2.7, defect 6)', () => {
  it('replies count toward the outbound limit: a non-reading client spamming invalid subscribes is closed with 4009', async () => {
    const server = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(256 * 1024), TPX_RATE_LIMIT_PER_SEC: '1000' } });
    const { token } = await createAccountWithKey(server);
    const c = await connectAuthed(server.wsUrl, token);
    socketOf(c).pause();
    // Each request names 64 unknown rooms (the most a subscribe may carry); each INVALID_ROOM
    // reply lists them all (~4 KB).
    const rooms = Array.from({ length: 64 }, (_, i) => `NOPE_${i}_`.padEnd(60, 'x'));
    const before = await closes(server, 4009);
    const rssBefore = await rss(server);
    let sent = 0;
    const deadline = Date.now() + 15_000;
    while (c.isOpen && Date.now() < deadline && (await closes(server, 4009)) === before) {
      for (let i = 0; i < 100 && c.isOpen; i++, sent++) c.send({ msg_type: 'subscribe', payload: { rooms } });
      await sleep(120);
    }
    expect(await closes(server, 4009), 'closed with 4009 once replies passed the outbound limit').toBeGreaterThan(before);
    const growth = (await rss(server)) - rssBefore;
    console.log(`[non-reading client] ${sent} invalid subscribes (~${Math.round((sent * 4.3) / 1024)} MiB of replies) before 4009; server RSS grew ${Math.round(growth / 1048576)} MiB`);
    expect(growth, 'server memory bounded').toBeLessThan(64 * 1024 * 1024);
    socketOf(c).resume();
    const closed = await c.waitClosed(10_000);
    expect([4009, 1006]).toContain(closed.code);
  });

  it('inbound is bounded behind a replay parked on a non-reading socket: reading stops, then 4009', async () => {
    const server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '600000', TPX_PONG_TIMEOUT_MS: '2000' } });
    const { accountId, token } = await createAccountWithKey(server);
    await publishLarge(server, accountId, 64, 200); // ~13 MB of history: more than a paused reader's kernel buffers
    const c = await connectAuthed(server.wsUrl, token);
    socketOf(c).pause();
    c.send({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: 0 } });
    // Keep sending valid messages (within the rate limit) while the replay waits for the reader.
    const rooms = Array.from({ length: 64 }, () => 'BID_REQUEST'); // valid: queued behind the replay
    const before = await closes(server, 4009);
    let sent = 0;
    const deadline = Date.now() + 12_000;
    while (Date.now() < deadline && (await closes(server, 4009)) === before) {
      for (let i = 0; i < 5; i++, sent++) c.send({ msg_type: 'subscribe', payload: { rooms } });
      await sleep(100);
    }
    expect(sent).toBeGreaterThan(32);
    expect(await closes(server, 4009), 'a stalled, paused connection is a slow consumer').toBeGreaterThan(before);
    socketOf(c).resume();
    expect([4009, 1006]).toContain((await c.waitClosed(10_000)).code);
  });

  it('a "blind pong" client (answers pings without reading) does not keep a stalled socket alive: 4009', async () => {
    const server = await startTestServer({
      env: { TPX_PING_INTERVAL_MS: '300', TPX_PONG_TIMEOUT_MS: '1500', TPX_MAX_OUTBOUND_BYTES: String(256 * 1024 * 1024) },
    });
    const { accountId, token } = await createAccountWithKey(server);
    const c = await connectAuthed(server.wsUrl, token, ['ALL'], { autoPong: false });
    socketOf(c).pause();
    const pong = setInterval(() => c.isOpen && c.send({ msg_type: 'pong' }), 200);
    try {
      const before = await closes(server, 4009);
      await publishLarge(server, accountId, 64, 200); // ~13 MB: queued on the server side, not moving
      await waitFor(async () => (await closes(server, 4009)) > before, 15_000, 'a 4009 close of the blind-pong client');
      expect(await closes(server, 4003)).toBe(0);
    } finally {
      clearInterval(pong);
    }
    socketOf(c).resume();
    expect([4009, 1006]).toContain((await c.waitClosed(10_000)).code);
  });
});

describe('nothing is skipped silently (SPEC §2.8, defect 8)', () => {
  it('a range pruned while a multi-page replay waits for the reader gets a gap frame at that point', async () => {
    const server = await startTestServer({ env: { TPX_EVENT_RETENTION: '4s' } });
    const { accountId, token } = await createAccountWithKey(server);
    const publishedAt = Date.now();
    // More events than any replay page (pages are bounded), ~12 MB in all: the replay parks on
    // the paused socket with most pages still unread.
    await publishLarge(server, accountId, 600, 20);
    const c = await connectAuthed(server.wsUrl, token);
    socketOf(c).pause();
    c.send({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: 0 } });
    // The replay parks on the full socket; retention (4 s, pruned every second) removes the rest.
    await waitFor(async () => {
      const res = await api(server, 'GET', '/v1/events?after_seq=0&limit=1', undefined, { token: null, headers: { 'x-api-key': token } });
      return res.status === 200 && res.body.events.length === 0;
    }, 15_000, 'history pruned');
    expect(Date.now() - publishedAt).toBeGreaterThan(4000);
    const fresh = await publish(server, eventBody('BID_OUTBID', [accountId]));
    socketOf(c).resume();
    await c.next((f) => f.msg_id === fresh.msg_id, 20_000);
    const covered: number[] = [];
    let gapFrames = 0;
    for (const f of c.history as Frame[]) {
      if (f.msg_type === 'gap') {
        gapFrames++;
        for (let s = f.payload.from_seq; s <= f.payload.to_seq; s++) covered.push(s);
      } else if (f.msg_type === 'subscribed' && f.payload.gap) {
        for (let s = f.payload.gap.from_seq; s <= f.payload.gap.to_seq; s++) covered.push(s);
      } else if (isEventFrame(f)) covered.push(f.seq as number);
    }
    expect(covered, 'every seq delivered or announced, once, in order').toEqual(Array.from({ length: 601 }, (_, i) => i + 1));
    expect(gapFrames).toBeGreaterThan(0);
  });
});

describe('last_seq in every subscribed (SPEC §2.8)', () => {
  it('a client that kept last_seq and lost its first connection before any event misses nothing', async () => {
    const server = await startTestServer();
    const { accountId, token } = await createAccountWithKey(server);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    const first = await connectAuthed(server.wsUrl, token);
    const sub = await first.subscribe(['ALL']);
    expect(sub.payload).toEqual({ rooms: ['ALL'], last_seq: 1 });
    first.terminate();
    const missed = [await publish(server, eventBody('BID_OUTBID', [accountId])), await publish(server, eventBody('AUCTION_RESULT', [accountId]))];
    const second = await connectAuthed(server.wsUrl, token);
    const resumed = await second.subscribe(['ALL'], sub.payload.last_seq);
    expect(resumed.payload).toEqual({ rooms: ['ALL'], resumed_from: 1, last_seq: 3 });
    for (const m of missed) await second.next((f) => f.msg_id === m.msg_id);
    expect(second.history.filter(isEventFrame).map((f) => f.seq)).toEqual([2, 3]);
  });
});

describe('POST /admin/connections/:id/disconnect', () => {
  it('closes that connection with 1000 and answers 200; an unknown id answers 404', async () => {
    const server = await startTestServer();
    const { accountId, token } = await createAccountWithKey(server);
    const victim = await connectAuthed(server.wsUrl, token, ['ALL']);
    const bystander = await connectAuthed(server.wsUrl, token, ['ALL']);
    const list = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
    const ids: string[] = list.body.connections.map((c: { connection_id: string }) => c.connection_id);
    expect(ids).toHaveLength(2);
    // Which id is the victim's: disconnect the first, see which client closes.
    const res = await api(server, 'POST', `/admin/connections/${ids[0]}/disconnect`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ disconnected: true });
    const closedOne = await Promise.race([victim.closed.then((c) => ({ c, who: victim })), bystander.closed.then((c) => ({ c, who: bystander }))]);
    expect(closedOne.c).toEqual({ code: 1000, reason: 'disconnected by operator' });
    const survivor = closedOne.who === victim ? bystander : victim;
    await sleep(100);
    expect(survivor.isOpen).toBe(true);
    expect((await api(server, 'POST', `/admin/connections/${ids[0]}/disconnect`)).status).toBe(404);
    expect((await api(server, 'POST', '/admin/connections/c-nope-1/disconnect')).status).toBe(404);
  });
});
