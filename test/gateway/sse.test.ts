/**
 * Server-Sent Events (SPEC §2.10) against a real server over loopback HTTP: the same stream as
 * the WebSocket (byte for byte), auth refusals before the stream starts, revocation and expiry
 * mid-stream, resume by Last-Event-ID and after_seq across cuts (no gap, no duplicate), the gap
 * of a pruned range, isolation, rooms, pings, /admin/connections, the key as a query parameter
 * never logged, and real curl.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccount, createAccountWithKey, createKey, publish, publishBatch, sleep, startTestServer, stopAll, waitFor, waitUntilPruned, type TestServer } from '../helpers/server.js';
import { eventBody, EVENT_TYPES, samplePayload } from '../helpers/payloads.js';
import { closeAllSse, isEventMessage, SseTestClient, type SseMessage } from '../helpers/sse-client.js';
import { closeAllClients, connectAuthed, isEventFrame } from '../helpers/ws-client.js';

afterEach(async () => {
  closeAllSse();
  await closeAllClients();
});
afterAll(() => stopAll());

const seqs = (ms: SseMessage[]) => ms.filter(isEventMessage).map((m) => Number(m.id));

describe('SSE stream', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '300' } });
  });

  it('starts with subscribed (rooms, last_seq), then each event as id/event/data with data byte for byte the WebSocket frame', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publish(server, eventBody('BID_REQUEST', [accountId])); // seq 1, before both connect
    const ws = await connectAuthed(server.wsUrl, token, ['ALL']);
    const wsTexts: string[] = [];
    ws.ws.on('message', (data) => wsTexts.push(data.toString()));
    const sse = await SseTestClient.open(server, { token, rooms: ['ALL'] });
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers['cache-control']).toBe('no-cache');
    expect(sse.headers['x-accel-buffering']).toBe('no');
    expect(sse.headers['connection']).toBe('keep-alive');
    expect(sse.headers['x-tpx-account-id']).toBe(accountId);

    const first = await sse.next();
    expect(first.event).toBe('subscribed');
    expect(first.json).toMatchObject({ msg_type: 'subscribed', payload: { rooms: ['ALL'], last_seq: 1 } });
    expect(first.json.payload).not.toHaveProperty('resumed_from');
    expect(first.id).toBe('1');

    // Every type, one payload with non-ASCII text and characters JSON escapes.
    const bodies = EVENT_TYPES.map((type) => eventBody(type, [accountId]));
    (bodies[0]!.payload as Record<string, unknown>).note = 'Zürich — “quoted” \\ line\nbreak \u2028 ✓';
    for (const body of bodies) await publish(server, body);
    await waitFor(() => seqs(sse.messages).length >= EVENT_TYPES.length, 5000, 'SSE events');
    await waitFor(() => wsTexts.filter((t) => isEventFrame(JSON.parse(t))).length >= EVENT_TYPES.length, 5000, 'WebSocket events');
    const wsEvents = wsTexts.filter((t) => isEventFrame(JSON.parse(t)));
    const sseEvents = sse.messages.filter(isEventMessage);
    expect(sseEvents.map((m) => m.data)).toEqual(wsEvents); // identical bytes, sent_at included
    for (const [i, m] of sseEvents.entries()) {
      expect(m.event).toBe(EVENT_TYPES[i]);
      expect(m.id).toBe(String(m.json.seq));
      expect(m.json.seq).toBe(i + 2);
    }
    expect(sseEvents[0]!.json.payload.note).toBe((bodies[0]!.payload as Record<string, unknown>).note);
  });

  it('sends only the requested rooms (ALL by default); invalid or inaccessible rooms answer 400 before the stream', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const some = await SseTestClient.open(server, { token, rooms: ['PAYMENT_FAILED', 'BID_REQUEST', 'PAYMENT_FAILED'] });
    expect((await some.next()).json.payload.rooms).toEqual(['PAYMENT_FAILED', 'BID_REQUEST']);
    const all = await SseTestClient.open(server, { token });
    expect((await all.next()).json.payload.rooms).toEqual(['ALL']);
    await publishBatch(server, [eventBody('BID_OUTBID', [accountId]), eventBody('BID_REQUEST', [accountId]), eventBody('PAYMENT_SETTLED', [accountId])]);
    await waitFor(() => seqs(all.messages).length === 3, 5000, 'all three');
    await waitFor(() => seqs(some.messages).length === 1, 5000, 'the BID_REQUEST');
    await sleep(100);
    expect(some.messages.filter(isEventMessage).map((m) => m.event)).toEqual(['BID_REQUEST']);

    const invalid = await SseTestClient.open(server, { token, rooms: ['BID_REQUEST', 'NOPE', 'bid_request'] });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ code: 'INVALID_ROOM', rooms: ['NOPE', 'bid_request'] });
    expect(typeof invalid.body.error).toBe('string');
    const limited = await createAccount(server, { rooms: ['PAYMENT_SETTLED'] });
    const limitedKey = await createKey(server, limited.account_id);
    const none = await SseTestClient.open(server, { token: limitedKey.token, rooms: ['BID_REQUEST'] });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe('NO_VALID_ROOMS');
    const empty = await SseTestClient.open(server, { token, query: 'rooms=' });
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe('NO_VALID_ROOMS');
  });

  it('answers 401 for a missing, unknown or expired key and 403 for a deactivated one, with {error, code}, before any stream', async () => {
    const { accountId, key, token } = await createAccountWithKey(server);
    const expiring = await createKey(server, accountId, { expires_at: new Date(Date.now() + 1000).toISOString() });
    const cases: Array<[string | undefined, number, string]> = [
      [undefined, 401, 'AUTH_INVALID_API_KEY'],
      ['tp_live_unknown', 401, 'AUTH_INVALID_API_KEY'],
      ['not even a key', 401, 'AUTH_INVALID_API_KEY'],
    ];
    for (const [t, status, code] of cases) {
      const r = await SseTestClient.open(server, { token: t });
      expect(r.status, String(t)).toBe(status);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.body).toMatchObject({ code });
      expect(typeof r.body.error).toBe('string');
    }
    await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    const inactive = await SseTestClient.open(server, { token });
    expect([inactive.status, inactive.body.code]).toEqual([403, 'AUTH_API_KEY_INACTIVE']);
    await sleep(Math.max(0, Date.parse(expiring.expires_at!) - Date.now() + 50));
    const expired = await SseTestClient.open(server, { token: expiring.token });
    expect([expired.status, expired.body.code]).toEqual([401, 'AUTH_API_KEY_EXPIRED']);
    const badResume = await SseTestClient.open(server, { token: expiring.token, lastEventId: 'abc' });
    expect([badResume.status, badResume.body.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it('a key deactivated mid-stream gets event: error AUTH_API_KEY_INACTIVE and the stream ends within 2 s; nothing published after the call reaches it', async () => {
    const { accountId, key, token } = await createAccountWithKey(server);
    const sse = await SseTestClient.open(server, { token, rooms: ['ALL'] });
    await sse.next((m) => m.event === 'subscribed');
    const t0 = Date.now();
    const res = await api(server, 'POST', `/admin/api-keys/${key.key_id}/deactivate`);
    expect(res.body.disconnected).toBe(1);
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    const err = await sse.next((m) => m.event === 'error', 2000);
    expect(err.json.payload).toMatchObject({ code: 'AUTH_API_KEY_INACTIVE' });
    expect(err.id).toBeUndefined();
    expect((await sse.ended(2000)) - t0).toBeLessThan(2000);
    expect(sse.comments).toContain('close 4001 API key was deactivated');
    expect(seqs(sse.messages)).toEqual([]);
  });

  it('a key that expires mid-stream gets AUTH_API_KEY_EXPIRED and the stream ends', async () => {
    const { accountId } = await createAccountWithKey(server);
    const key = await createKey(server, accountId, { expires_at: new Date(Date.now() + 1200).toISOString() });
    const sse = await SseTestClient.open(server, { token: key.token });
    await sse.next((m) => m.event === 'subscribed');
    const err = await sse.next((m) => m.event === 'error', 4000);
    expect(err.json.payload.code).toBe('AUTH_API_KEY_EXPIRED');
    await sse.ended(2000);
  });

  it('resumes by Last-Event-ID across cuts while events keep coming: replay, then live, no gap and no duplicate; Last-Event-ID wins over after_seq', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, Array.from({ length: 40 }, (_, i) => eventBody(i % 3 ? 'BID_OUTBID' : 'BID_REQUEST', [accountId])));
    let published = 40;
    let stop = false;
    const publisher = (async () => {
      for (let i = 0; i < 60 && !stop; i++) {
        await publishBatch(server, Array.from({ length: 5 }, () => eventBody('BID_REQUEST', [accountId])));
        published += 5;
        await sleep(10);
      }
    })();
    const got: number[] = [];
    let last: string | undefined = '0';
    // Each connection is cut after a few messages; the next resumes from the last id received.
    // The original after_seq stays in the URL, as EventSource keeps it: Last-Event-ID must win.
    for (let round = 0; round < 6; round++) {
      const sse = await SseTestClient.open(server, { token, rooms: ['ALL'], afterSeq: 0, lastEventId: last });
      const sub = await sse.next((m) => m.event === 'subscribed');
      expect(sub.json.payload.resumed_from).toBe(Number(last));
      expect(sub.id).toBe(last);
      const want = 8 + round * 3;
      await waitFor(() => seqs(sse.messages).length >= want, 10_000, `${want} events in round ${round}`);
      sse.cut();
      const these = sse.messages.filter(isEventMessage);
      got.push(...these.map((m) => Number(m.id)));
      last = these.at(-1)!.id;
    }
    stop = true;
    await publisher;
    const sse = await SseTestClient.open(server, { token, rooms: ['ALL'], lastEventId: last });
    await waitFor(() => got.length + seqs(sse.messages).length >= published, 15_000, `all ${published} events`);
    got.push(...seqs(sse.messages));
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  });

  it('resumes by after_seq alone', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, Array.from({ length: 10 }, () => eventBody('PAYMENT_CHARGED', [accountId])));
    const sse = await SseTestClient.open(server, { token, afterSeq: 7 });
    const sub = await sse.next();
    expect(sub.json.payload).toMatchObject({ rooms: ['ALL'], resumed_from: 7, last_seq: 10 });
    expect(sub.id).toBe('7');
    await waitFor(() => seqs(sse.messages).length === 3, 5000, 'replay');
    await publish(server, eventBody('PAYMENT_CHARGED', [accountId]));
    await waitFor(() => seqs(sse.messages).length === 4, 5000, 'live');
    expect(seqs(sse.messages)).toEqual([8, 9, 10, 11]);
  });

  it('the id of a fresh subscribed (last_seq) is a safe resume point: events published while disconnected arrive on reconnect', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, Array.from({ length: 3 }, () => eventBody('BID_REQUEST', [accountId])));
    const first = await SseTestClient.open(server, { token });
    const sub = await first.next();
    expect(sub.id).toBe('3');
    first.cut();
    await publishBatch(server, Array.from({ length: 2 }, () => eventBody('BID_REQUEST', [accountId])));
    const again = await SseTestClient.open(server, { token, lastEventId: sub.id });
    await waitFor(() => seqs(again.messages).length === 2, 5000, 'the two missed events');
    expect(seqs(again.messages)).toEqual([4, 5]);
  });

  it("never sends one account's events to another account's stream", async () => {
    const a = await createAccountWithKey(server);
    const b = await createAccountWithKey(server);
    const sa = await SseTestClient.open(server, { token: a.token });
    const sb = await SseTestClient.open(server, { token: b.token });
    await Promise.all([sa.next(), sb.next()]);
    const onlyA = await publish(server, eventBody('BID_REQUEST', [a.accountId]));
    const both = await publish(server, eventBody('AUCTION_RESULT', [a.accountId, b.accountId]));
    const onlyB = await publish(server, eventBody('PAYMENT_SETTLED', [b.accountId]));
    await waitFor(() => seqs(sa.messages).length === 2 && seqs(sb.messages).length === 2, 5000, 'deliveries');
    await sleep(100);
    expect(sa.messages.filter(isEventMessage).map((m) => m.json.msg_id)).toEqual([onlyA.msg_id, both.msg_id]);
    expect(sb.messages.filter(isEventMessage).map((m) => m.json.msg_id)).toEqual([both.msg_id, onlyB.msg_id]);
    // Each account's own stream numbering.
    expect(seqs(sa.messages)).toEqual([1, 2]);
    expect(seqs(sb.messages)).toEqual([1, 2]);
  });

  it('sends a `: ping` comment every ping interval and is listed in /admin/connections with its transport', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const sse = await SseTestClient.open(server, { token });
    await sse.next();
    const ws = await connectAuthed(server.wsUrl, token, ['ALL']);
    await waitFor(() => sse.comments.filter((c) => c === 'ping').length >= 2, 3000, 'two pings');
    const list = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
    const transports = (list.body.connections as Array<{ transport: string; phase: string; rooms: string[] }>).map((c) => c.transport).sort();
    expect(transports).toEqual(['sse', 'websocket']);
    expect(list.body.connections.find((c: { transport: string }) => c.transport === 'sse')).toMatchObject({ phase: 'streaming', rooms: ['ALL'], account_id: accountId });
    await ws.close();
    // The operator's disconnect ends the stream (1000), like a WebSocket's.
    const id = list.body.connections.find((c: { transport: string }) => c.transport === 'sse').connection_id;
    expect((await api(server, 'POST', `/admin/connections/${id}/disconnect`)).status).toBeLessThan(300);
    await sse.ended(2000);
    expect(sse.comments).toContain('close 1000 disconnected by operator');
  });

  it('takes the key as ?api_key= (for EventSource), with open CORS, and never writes the key to a log line', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    const sse = await SseTestClient.open(server, { token, keyInQuery: true, rooms: ['BID_REQUEST'], headers: { origin: 'https://partner.example' } });
    expect(sse.status).toBe(200);
    expect(sse.headers['access-control-allow-origin']).toBe('*');
    await sse.next();
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    await sse.next(isEventMessage);
    const preflight = await fetch(`${server.url}/v1/events/stream`, {
      method: 'OPTIONS',
      headers: { origin: 'https://partner.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key,last-event-id' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/X-API-Key/i);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Last-Event-ID/i);
    const refused = await SseTestClient.open(server, { token: 'tp_live_secretvalue', keyInQuery: true });
    expect(refused.status).toBe(401);
    expect(server.output()).not.toContain(token);
    expect(server.output()).not.toContain('tp_live_secretvalue');
  });

  it('works with real curl -N', async () => {
    const curl = '/usr/bin/curl';
    expect(existsSync(curl)).toBe(true);
    const { accountId, token } = await createAccountWithKey(server);
    const out = new Promise<string>((resolve) => {
      execFile(curl, ['-sN', '--max-time', '3', '-H', `X-API-Key: ${token}`, `${server.url}/v1/events/stream?rooms=BID_REQUEST`], (_err, stdout) => resolve(stdout));
    });
    await waitFor(async () => (await api(server, 'GET', `/admin/connections?account_id=${accountId}`)).body.count === 1, 5000, 'curl connected');
    const { msg_id } = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const text = await out;
    expect(text).toMatch(/^id: 0\nevent: subscribed\ndata: \{"msg_type":"subscribed"/);
    expect(text).toContain(`id: 1\nevent: BID_REQUEST\ndata: {"msg_type":"BID_REQUEST","msg_id":"${msg_id}","seq":1,`);
    expect(text).toContain('\n: ping\n');
  });
});

describe('SSE and retention', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_EVENT_RETENTION: '2s' } });
  });

  it('a resume into a pruned range reports the gap in subscribed and as event: gap (id: its end), then delivers what is left', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publishBatch(server, Array.from({ length: 5 }, () => eventBody('BID_REQUEST', [accountId])));
    await waitUntilPruned(server, token);
    await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
    const sse = await SseTestClient.open(server, { token, lastEventId: 2 });
    const sub = await sse.next();
    expect(sub.json.payload).toMatchObject({ resumed_from: 2, gap: { from_seq: 3, to_seq: 5 }, last_seq: 6 });
    expect(sub.id).toBe('2');
    const gap = await sse.next();
    expect([gap.event, gap.id]).toEqual(['gap', '5']);
    expect(gap.json).toMatchObject({ msg_type: 'gap', payload: { from_seq: 3, to_seq: 5 } });
    const ev = await sse.next();
    expect([ev.event, ev.id]).toEqual(['BID_REQUEST', '6']);
  });
});
