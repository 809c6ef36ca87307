/**
 * GET /v1/events (SPEC §2.8): `rooms` "empty or absent: the whole stream" (the route's own
 * documentation). A `rooms=` list that holds only separators (`rooms=,`, or `rooms=&rooms=`) is
 * empty too, but publish.ts turns it into an empty type filter and answers an empty page whose
 * next_after_seq does not move: a client reading "all rooms" that builds the list from an empty
 * selection gets nothing, forever, with has_more false.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publish, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';

describe('review4: GET /v1/events with an empty rooms list', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await stopAll();
  });

  it('rooms=, reads the whole stream, like rooms= and no rooms at all', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    await publish(server, eventBody('PAYMENT_SETTLED', [accountId]));
    await publish(server, eventBody('BID_REQUEST', [accountId]));
    const read = async (query: string) => {
      const res = await fetch(`${server.url}/v1/events?after_seq=0${query}`, { headers: { 'x-api-key': token } });
      const body = (await res.json()) as { events: Array<{ seq: number }>; next_after_seq: number };
      return { status: res.status, seqs: body.events?.map((e) => e.seq), next: body.next_after_seq };
    };
    const whole = await read('');
    expect(whole.seqs).toEqual([1, 2]);
    expect(await read('&rooms=')).toEqual(whole);
    expect(await read('&rooms=,')).toEqual(whole);
    expect(await read('&rooms=&rooms=')).toEqual(whole);
  });
});
