/**
 * Clients that stop reading but keep SENDING (SPEC §2.7: "everything the server queues for a
 * socket (events, replies, errors, pings) counts toward the outbound limit, so a client that stops
 * reading is closed with 4009 however much or little it sends; inbound messages are never queued
 * without bound either"). Issue 9, defect 6:
 * - subscribe spammers: each `subscribe` naming 64 unknown rooms earns an ~8 KiB INVALID_ROOM
 *   error that is queued for a reader that never reads;
 * - ping spammers: each `ping` earns a `pong`;
 * - replay-parked: a resume (after_seq 0) over ~8 MiB of history parks on the socket's drain
 *   while the client keeps sending subscribes (queued behind the replay), pings and blind pongs.
 * Each must be closed with 4009, server memory must stay bounded, and a reading client of
 * another account must keep receiving its events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publishBatch, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, type WsTestClient } from '../helpers/ws-client.js';
import { compareStream, figures, MiB, readLog, RssSampler } from './helpers.js';
import { clientFrame, closes4009, liveConnections, nonReader, socketOf, spam } from './non-reading.js';

const OUTBOUND_LIMIT = 256 * 1024;
const PER_KIND = 3;
/** Generous bound on server RSS growth over the test. */
const RSS_GROWTH_BOUND = 200 * MiB;
/** How long the server gets to close every non-reader. */
const CLOSE_DEADLINE_MS = 30_000;

let server: TestServer;

beforeAll(async () => {
  // The rate limit is raised so that it is the outbound policy, not 1008, that is tested.
  server = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(OUTBOUND_LIMIT), TPX_RATE_LIMIT_PER_SEC: '1000000' } });
});

afterAll(async () => {
  await closeAllClients();
  await stopAll();
});

function padded(accountId: string, bytes: number): Record<string, unknown> {
  const body = eventBody('BID_REQUEST', [accountId]);
  (body.payload as Record<string, unknown>).pad = 'x'.repeat(bytes);
  return body;
}

describe('clients that stop reading and keep sending', () => {
  it('subscribe spammers, ping spammers and replay-parked clients are each closed with 4009; memory bounded; a bystander gets everything', { timeout: 90_000 }, async () => {
    const subscribers = await createAccountWithKey(server, { name: 'subscribe-spammers' });
    const pingers = await createAccountWithKey(server, { name: 'ping-spammers' });
    const parked = await createAccountWithKey(server, { name: 'replay-parked' });
    const bystander = await createAccountWithKey(server, { name: 'bystander' });
    // ~8 MiB of history for the replay-parked clients.
    for (let i = 0; i < 16; i++) await publishBatch(server, Array.from({ length: 16 }, () => padded(parked.accountId, 32 * 1024)));
    const reader = await connectAuthed(server.wsUrl, bystander.token, ['ALL']);

    const rss = new RssSampler(server.proc.pid!);
    const baseline = rss.sample();
    const before4009 = await closes4009(server);

    const rooms = Array.from({ length: 64 }, (_, i) => `NO_SUCH_ROOM_${i}_${'Z'.repeat(44)}`);
    const subscribeFrame = clientFrame(JSON.stringify({ msg_type: 'subscribe', payload: { rooms } }));
    const pingFrame = clientFrame('{"msg_type":"ping"}');
    const pongFrame = clientFrame('{"msg_type":"pong"}');
    const chainedFrame = clientFrame(JSON.stringify({ msg_type: 'subscribe', payload: { rooms: ['BID_REQUEST'] } }));

    // Every client is connected (and has stopped reading) before any starts sending: once the
    // spam runs, a saturated 2-core machine may take seconds to authenticate a newcomer.
    const spammers: Array<{ s: WsTestClient; p: WsTestClient; r: WsTestClient }> = [];
    for (let i = 0; i < PER_KIND; i++) {
      spammers.push({
        s: await nonReader(server, subscribers.token),
        p: await nonReader(server, pingers.token),
        r: await nonReader(server, parked.token, ['ALL'], 0),
      });
    }
    const spamming: Promise<void>[] = [];
    for (const { s, p, r } of spammers) {
      spamming.push(spam(socketOf(s), subscribeFrame, 2_000)); // ≈ 16 MiB of error replies
      spamming.push(spam(socketOf(p), pingFrame, 300_000)); // ≈ 16 MiB of pongs
      spamming.push(
        (async () => {
          // Steady, modest traffic for as long as the connection lives (bounded by the deadline).
          const until = Date.now() + CLOSE_DEADLINE_MS;
          const sock = socketOf(r);
          while (!sock.destroyed && Date.now() < until) {
            await spam(sock, Buffer.concat([chainedFrame, pingFrame, pongFrame]), 20, 20);
            await sleep(50);
          }
        })(),
      );
    }

    // The bystander's events keep flowing meanwhile.
    let bystanderEvents = 0;
    const started = Date.now();
    const remaining = async () => ({
      subscribe_spammers: await liveConnections(server, subscribers.accountId),
      ping_spammers: await liveConnections(server, pingers.accountId),
      replay_parked: await liveConnections(server, parked.accountId),
    });
    let left = await remaining();
    while (Date.now() - started < CLOSE_DEADLINE_MS) {
      await publishBatch(server, Array.from({ length: 5 }, () => eventBody('PAYMENT_SETTLED', [bystander.accountId])));
      bystanderEvents += 5;
      left = await remaining();
      if (Object.values(left).every((n) => n === 0)) break;
      await sleep(200);
    }
    const closeMs = Date.now() - started;
    const maxRss = rss.stop();
    const closed = (await closes4009(server)) - before4009;
    figures('non-reading-senders', {
      per_kind: PER_KIND,
      still_open: JSON.stringify(left),
      closed_4009: closed,
      seconds_to_close: (closeMs / 1000).toFixed(1),
      rss_baseline_mib: (baseline / MiB).toFixed(0),
      rss_max_mib: (maxRss / MiB).toFixed(0),
    });

    expect(left, `non-readers still connected after ${CLOSE_DEADLINE_MS / 1000} s`).toEqual({ subscribe_spammers: 0, ping_spammers: 0, replay_parked: 0 });
    expect(closed, 'server-initiated 4009 closes').toBe(3 * PER_KIND);
    expect(maxRss - baseline, `server RSS growth (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);

    const log = await readLog(server, bystander.token);
    expect(log.length).toBe(bystanderEvents);
    await waitFor(() => reader.history.some((f) => f.seq === log.at(-1)!.seq), 10_000, 'the bystander received its last event');
    compareStream(reader.history.filter(isEventFrame), log, 'bystander');
    await Promise.all(spamming);
  });
});
