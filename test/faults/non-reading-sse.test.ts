/**
 * SSE readers that stop reading (SPEC §2.10 "the outbound limit … behave as on the WebSocket"):
 * several streams of one account stop reading while large events flow. Each is cut once its
 * queue passes TPX_MAX_OUTBOUND_BYTES (counted as a 4009 close), server memory stays bounded,
 * and a reading SSE client of the same account receives every event exactly once, in order. A
 * stream that leaves bytes unread with no new events is cut by the stall rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publishBatch, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllSse, isEventMessage, SseTestClient } from '../helpers/sse-client.js';
import { figures, MiB, readLog, RssSampler } from './helpers.js';
import { closes4009, liveConnections } from './non-reading.js';

const NON_READERS = 8;
const OUTBOUND_LIMIT = 256 * 1024;
const EVENT_PAD = 16 * 1024;
const BATCH = 16;
/** Bound on what is published (≈ 64 MiB): far past what the kernel buffers of a paused reader absorb. */
const MAX_BATCHES = 256;
const RSS_GROWTH_BOUND = 200 * MiB;

let server: TestServer;

beforeAll(async () => {
  // Stall rule: a queue without progress for min(pong timeout, 10 s) is a slow consumer.
  server = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(OUTBOUND_LIMIT), TPX_PONG_TIMEOUT_MS: '1500' } });
});

afterAll(async () => {
  closeAllSse();
  await stopAll();
});

const padded = (accountId: string) => {
  const body = eventBody('BID_REQUEST', [accountId]);
  (body.payload as Record<string, unknown>).pad = 'x'.repeat(EVENT_PAD);
  return body;
};

describe('SSE clients that stop reading', () => {
  it(`${NON_READERS} non-reading streams are cut (4009), memory stays bounded, a reading stream gets everything`, { timeout: 90_000 }, async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'sse-non-readers' });
    const reader = await SseTestClient.open(server, { token });
    await reader.next();
    const before4009 = await closes4009(server);
    const stalled: SseTestClient[] = [];
    for (let i = 0; i < NON_READERS; i++) {
      const s = await SseTestClient.open(server, { token });
      await s.next();
      s.pause();
      stalled.push(s);
    }
    expect(await liveConnections(server, accountId)).toBe(NON_READERS + 1);

    const rss = new RssSampler(server.proc.pid!);
    const baseline = rss.sample();
    for (let batches = 1; batches <= MAX_BATCHES; batches++) {
      await publishBatch(server, Array.from({ length: BATCH }, () => padded(accountId)));
      if (batches % 8 === 0 && (await closes4009(server)) - before4009 >= NON_READERS) break;
    }
    await waitFor(async () => (await liveConnections(server, accountId)) === 1, 15_000, 'only the reading stream left');
    const maxRss = rss.stop();
    expect((await closes4009(server)) - before4009, 'slow-consumer closes').toBe(NON_READERS);
    // The server cut them: once they read again, their streams end.
    for (const s of stalled) s.resume();
    await Promise.all(stalled.map((s) => s.ended(5000)));

    const log = await readLog(server, token);
    const last = log.at(-1)!.seq;
    await waitFor(() => reader.messages.some((m) => Number(m.id) === last), 30_000, 'the reading stream received the last event');
    const got = reader.messages.filter(isEventMessage).map((m) => Number(m.id));
    expect(got).toEqual(log.map((e) => e.seq));
    expect(reader.isEnded).toBe(false);
    expect(maxRss - baseline, `server RSS growth (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);
    figures('non-reading-sse', {
      non_readers: NON_READERS,
      events_published: log.length,
      mib_published: ((log.length * EVENT_PAD) / MiB).toFixed(0),
      rss_baseline_mib: (baseline / MiB).toFixed(0),
      rss_max_mib: (maxRss / MiB).toFixed(0),
    });
  });

  it('a stream that leaves bytes unread is cut by the stall rule even below the outbound limit', { timeout: 60_000 }, async () => {
    // An outbound limit nothing reaches here: only the stall rule (no progress for the pong
    // timeout, 1.5 s; an SSE reader cannot answer pings) can end it.
    const stall = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(256 * MiB), TPX_PONG_TIMEOUT_MS: '1500' } });
    const { accountId, token } = await createAccountWithKey(stall, { name: 'sse-stall' });
    const s = await SseTestClient.open(stall, { token });
    await s.next();
    s.pause();
    const before = await closes4009(stall);
    const pad = 'x'.repeat(200 * 1024);
    // ~13 MB: more than the kernel buffers of a paused reader take.
    for (let i = 0; i < 64; i += 8) {
      await publishBatch(
        stall,
        Array.from({ length: 8 }, () => {
          const body = eventBody('BID_REQUEST', [accountId]);
          (body.payload as Record<string, unknown>).pad = pad;
          return body;
        }),
      );
    }
    await waitFor(async () => (await liveConnections(stall, accountId)) === 0, 15_000, 'the stalled stream cut');
    expect((await closes4009(stall)) - before).toBe(1);
    s.resume();
    await s.ended(10_000);
  });
});
