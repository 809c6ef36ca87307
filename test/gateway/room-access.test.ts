/**
 * SPEC §2.3/§2.4 "the account may access that room", judged once: when the event is accepted.
 * The store puts an event in an account's stream only if the account could access its type then
 * (and creates its webhook deliveries then); every read path serves that stream filtered by the
 * connection's rooms alone: live, WebSocket resume, SSE resume and GET /v1/events agree after a
 * room is removed or granted (docs/decisions.md). Before this rule the live path and the resumes
 * judged by the node's cached rooms, so a node that missed a change dropped accepted events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, WsTestClient } from '../helpers/ws-client.js';
import { closeAllSse, isEventMessage, SseTestClient } from '../helpers/sse-client.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  closeAllSse();
  await closeAllClients();
  await stopAll();
});

describe('room access is judged when an event is accepted, the same on every read path', () => {
  it('a removed room: events accepted before stay in the stream (live, resume, SSE, GET); later ones are not accepted for the account', async () => {
    const { accountId, token } = await createAccountWithKey(server, { rooms: ['BID_REQUEST', 'BID_OUTBID'] });
    const live = await connectAuthed(server.wsUrl, token, ['ALL']);
    const outbidBefore = await publish(server, eventBody('BID_OUTBID', [accountId]));
    const requestBefore = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const patched = await api(server, 'PATCH', `/admin/accounts/${accountId}`, { rooms: ['BID_REQUEST'] });
    expect(patched.status, patched.text).toBe(200);
    const outbidAfter = await publish(server, eventBody('BID_OUTBID', [accountId]));
    expect(outbidAfter.recipients).toBe(0);
    const requestAfter = await publish(server, eventBody('BID_REQUEST', [accountId]));
    const stream = [outbidBefore.msg_id, requestBefore.msg_id, requestAfter.msg_id];

    await live.next((f) => f.msg_id === requestAfter.msg_id);
    expect(live.history.filter(isEventFrame).map((f) => f.msg_id)).toEqual(stream);

    const resumed = await WsTestClient.connect(server.wsUrl);
    await resumed.authenticate(token);
    await resumed.subscribe(['ALL'], 0);
    await resumed.next((f) => f.msg_id === requestAfter.msg_id);
    expect(resumed.history.filter(isEventFrame).map((f) => f.msg_id)).toEqual(stream);

    const sse = await SseTestClient.open(server, { token, lastEventId: 0 });
    expect(sse.status).toBe(200);
    await sse.next((m) => m.json?.msg_id === requestAfter.msg_id);
    expect(sse.messages.filter(isEventMessage).map((m) => m.json.msg_id)).toEqual(stream);

    const read = async (query: string) => {
      const res = await api(server, 'GET', `/v1/events?after_seq=0${query}`, undefined, { token: null, headers: { 'x-api-key': token } });
      expect(res.status, res.text).toBe(200);
      return res.body.events.map((e: { msg_id: string }) => e.msg_id);
    };
    expect(await read('')).toEqual(stream);
    expect(await read('&rooms=ALL')).toEqual(stream);
    expect(await read('&rooms=BID_OUTBID')).toEqual([outbidBefore.msg_id]);

    // A room no longer accessible cannot be subscribed to (it filters future events).
    expect((await resumed.subscribeRaw(['BID_OUTBID'])).payload?.code).toBe('NO_VALID_ROOMS');
  });

  it('a granted room reaches a connection subscribed to ALL at once, without reconnecting', async () => {
    const { accountId, token } = await createAccountWithKey(server, { rooms: ['BID_REQUEST'] });
    const live = await connectAuthed(server.wsUrl, token, ['ALL']);
    expect((await publish(server, eventBody('BID_OUTBID', [accountId]))).recipients).toBe(0);
    const patched = await api(server, 'PATCH', `/admin/accounts/${accountId}`, { rooms: ['BID_REQUEST', 'BID_OUTBID'] });
    expect(patched.status, patched.text).toBe(200);
    const granted = await publish(server, eventBody('BID_OUTBID', [accountId]));
    expect(granted.recipients).toBe(1);
    expect((await live.next((f) => f.msg_id === granted.msg_id)).seq).toBe(1);
    await waitFor(() => live.history.filter(isEventFrame).length === 1, 1000, 'no other event');
  });
});
