/**
 * Resume after reconnect (SPEC §2.8): replay after `after_seq` in order, the switch from replay
 * to live with no gap and no duplicate while events keep being published, the `gap` signal once
 * the retention window pruned events, and the HTTP read of the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, publishBatch, sleep, startTestServer, stopAll, waitFor, waitUntilPruned, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { WsTestClient, isEventFrame, type Frame } from '../helpers/ws-client.js';

afterAll(() => stopAll());

const seqsOf = (frames: Frame[]) => frames.filter(isEventFrame).map((f) => f.seq as number);

describe('resume with after_seq', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });

  it('replays every stored event after after_seq in order, then continues live', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const batch = Array.from({ length: 30 }, (_, i) => eventBody(i % 2 ? 'BID_OUTBID' : 'BID_REQUEST', [accountId]));
    await publishBatch(server, batch);

    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    const sub = await c.subscribe(['ALL'], 10);
    expect(sub.payload).toMatchObject({ rooms: ['ALL'], resumed_from: 10 });
    expect(sub.payload).not.toHaveProperty('gap');
    await waitFor(() => seqsOf(c.history).length >= 20, 5000, '20 replayed events');
    expect(seqsOf(c.history)).toEqual(Array.from({ length: 20 }, (_, i) => 11 + i));

    await publish(server, eventBody('BID_REQUEST', [accountId]));
    await waitFor(() => seqsOf(c.history).length >= 21, 5000, 'live event');
    expect(seqsOf(c.history).at(-1)).toBe(31);
    c.close();
  });

  it('replays only the rooms the connection subscribed to', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, [
      eventBody('BID_REQUEST', [accountId]),
      eventBody('PAYMENT_FAILED', [accountId]),
      eventBody('BID_REQUEST', [accountId]),
    ]);
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    await c.subscribe(['BID_REQUEST'], 0);
    await waitFor(() => seqsOf(c.history).length >= 2, 5000, 'replay');
    await sleep(200);
    const events = c.history.filter(isEventFrame);
    expect(events.map((f) => [f.msg_type, f.seq])).toEqual([
      ['BID_REQUEST', 1],
      ['BID_REQUEST', 3],
    ]);
    c.close();
  });

  it('switches from replay to live with no gap and no duplicate while publishing continues', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    // A backlog large enough that the replay spans several store pages.
    for (let i = 0; i < 3; i++) {
      await publishBatch(server, Array.from({ length: 500 }, () => eventBody('BID_REQUEST', [accountId])));
    }
    let published = 1500;
    let stop = false;
    const publisher = (async () => {
      for (let i = 0; i < 200 && !stop; i++) {
        await publishBatch(server, Array.from({ length: 5 }, () => eventBody('BID_OUTBID', [accountId])));
        published += 5;
      }
    })();
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    await c.subscribe(['ALL'], 0);
    await sleep(300);
    stop = true;
    await publisher;
    await waitFor(() => seqsOf(c.history).length >= published, 15_000, `all ${published} events`);
    await sleep(200);
    const seqs = seqsOf(c.history);
    expect(seqs.length).toBe(published);
    expect(seqs).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    c.close();
  });

  it('a second connection resuming from the first one\'s last seq sees exactly the rest', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const a = await WsTestClient.connect(server.wsUrl);
    await a.authenticate(token);
    await a.subscribe(['ALL']);
    for (let i = 0; i < 5; i++) await publish(server, eventBody('AUCTION_RESULT', [accountId]));
    await waitFor(() => seqsOf(a.history).length >= 5, 5000, 'first five');
    const last = seqsOf(a.history).at(-1)!;
    a.ws.terminate();
    for (let i = 0; i < 4; i++) await publish(server, eventBody('AUCTION_RESULT', [accountId]));
    const b = await WsTestClient.connect(server.wsUrl);
    await b.authenticate(token);
    await b.subscribe(['AUCTION_RESULT'], last);
    await waitFor(() => seqsOf(b.history).length >= 4, 5000, 'the four missed');
    await sleep(150);
    expect(seqsOf(b.history)).toEqual([6, 7, 8, 9]);
    b.close();
  });

  it('rejects a negative or non-integer after_seq with INVALID_MESSAGE and stays usable', async () => {
    const { token } = await createAccountWithKey(server);
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    for (const bad of [-1, 1.5, '3']) {
      c.send({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: bad } });
      const err = await c.nextOfType('error');
      expect(err.payload).toMatchObject({ code: 'INVALID_MESSAGE' });
    }
    await c.subscribe(['ALL'], 0);
    c.close();
  });
});

describe('HTTP read of the event log: GET /v1/events', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });

  it('pages through the account\'s events with X-API-Key, filtered by rooms', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const other = await createAccountWithKey(server);
    await publishBatch(server, [
      eventBody('BID_REQUEST', [accountId]),
      eventBody('PAYMENT_CHARGED', [accountId, other.accountId]),
      eventBody('BID_REQUEST', [accountId]),
      eventBody('BID_OUTBID', [accountId]),
    ]);
    const page1 = await api(server, 'GET', '/v1/events?after_seq=0&limit=2', undefined, { headers: { 'x-api-key': token }, token: null });
    expect(page1.status).toBe(200);
    expect(page1.body.events.map((e: Frame) => e.seq)).toEqual([1, 2]);
    expect(page1.body.next_after_seq).toBe(2);
    const e0 = page1.body.events[0];
    expect(e0).toMatchObject({ msg_type: 'BID_REQUEST', seq: 1 });
    expect(typeof e0.msg_id).toBe('string');
    expect(Number.isInteger(e0.sent_at)).toBe(true);
    expect(e0.payload.conversation_id).toBeTruthy();

    const page2 = await api(server, 'GET', `/v1/events?after_seq=${page1.body.next_after_seq}&limit=2`, undefined, { headers: { 'x-api-key': token }, token: null });
    expect(page2.body.events.map((e: Frame) => e.seq)).toEqual([3, 4]);

    const filtered = await api(server, 'GET', '/v1/events?after_seq=0&rooms=BID_REQUEST,PAYMENT_CHARGED', undefined, { headers: { 'x-api-key': token }, token: null });
    expect(filtered.body.events.map((e: Frame) => [e.msg_type, e.seq])).toEqual([
      ['BID_REQUEST', 1],
      ['PAYMENT_CHARGED', 2],
      ['BID_REQUEST', 3],
    ]);
    expect(filtered.body.next_after_seq).toBe(4);

    // The other account sees only its own copy, with its own seq.
    const theirs = await api(server, 'GET', '/v1/events?after_seq=0', undefined, { headers: { 'x-api-key': other.token }, token: null });
    expect(theirs.body.events.map((e: Frame) => [e.msg_type, e.seq])).toEqual([['PAYMENT_CHARGED', 1]]);
  });

  it('answers 401 with the AUTH code for a missing or unknown key, 403 for a deactivated one, and 400 for bad parameters', async () => {
    const { token, key } = await createAccountWithKey(server);
    const none = await api(server, 'GET', '/v1/events', undefined, { token: null });
    expect(none.status).toBe(401);
    const unknown = await api(server, 'GET', '/v1/events', undefined, { headers: { 'x-api-key': 'tp_live_nope' }, token: null });
    expect(unknown.status).toBe(401);
    expect(unknown.body.code).toBe('AUTH_INVALID_API_KEY');
    const bad = await api(server, 'GET', '/v1/events?after_seq=-4', undefined, { headers: { 'x-api-key': token }, token: null });
    expect(bad.status).toBe(400);
    const room = await api(server, 'GET', '/v1/events?rooms=NOPE', undefined, { headers: { 'x-api-key': token }, token: null });
    expect(room.status).toBe(400);
    expect(room.body.code).toBe('INVALID_ROOM');
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const inactive = await api(server, 'GET', '/v1/events', undefined, { headers: { 'x-api-key': token }, token: null });
    expect(inactive.status).toBe(403);
    expect(inactive.body.code).toBe('AUTH_API_KEY_INACTIVE');
  });
});

describe('retention: pruned events and the gap signal', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_EVENT_RETENTION: '2s' } });
  });

  it('subscribe with an after_seq older than the retention window reports the gap, then delivers what is left', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, Array.from({ length: 5 }, () => eventBody('BID_REQUEST', [accountId])));
    // Pruning runs every second with a 2 s window: wait until the HTTP read shows the gap.
    await waitUntilPruned(server, token);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    const sub = await c.subscribe(['ALL'], 2);
    expect(sub.payload).toMatchObject({ resumed_from: 2, gap: { from_seq: 3, to_seq: 5 } });
    const ev = await c.next(isEventFrame);
    expect(ev.seq).toBe(6);
    c.close();
  });
});
