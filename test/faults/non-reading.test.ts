/**
 * Clients that stop reading (SPEC §2.7, §2.9): many connections stop reading while events flow
 * to their account. Each is closed with 4009 once its outbound buffer passes
 * TPX_MAX_OUTBOUND_BYTES, server memory stays bounded, and a normal client of the same account
 * receives every event exactly once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publishBatch, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame } from '../helpers/ws-client.js';
import { compareStream, figures, MiB, readLog, RssSampler } from './helpers.js';
import { closes4009, liveConnections, nonReader } from './non-reading.js';

const NON_READERS = 20;
const OUTBOUND_LIMIT = 256 * 1024;
const EVENT_PAD = 16 * 1024;
const BATCH = 16;
/** Bound on what is published (≈ 64 MiB): far past what the kernel buffers of a paused reader absorb. */
const MAX_BATCHES = 256;
/** Generous: 20 connections × 256 KiB is 5 MiB; ws and V8 overheads are far below this. */
const RSS_GROWTH_BOUND = 200 * MiB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_MAX_OUTBOUND_BYTES: String(OUTBOUND_LIMIT) } });
});

afterAll(async () => {
  await closeAllClients();
  await stopAll();
});

describe('clients that stop reading', () => {
  it(`${NON_READERS} non-readers are each closed with 4009, memory stays bounded, a reading client gets everything`, { timeout: 90_000 }, async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'non-readers' });
    const normal = await connectAuthed(server.wsUrl, token, ['ALL']);
    const before4009 = await closes4009(server);
    for (let i = 0; i < NON_READERS; i++) await nonReader(server, token, ['ALL']);
    expect(await liveConnections(server, accountId)).toBe(NON_READERS + 1);

    const rss = new RssSampler(server.proc.pid!);
    const baseline = rss.sample();
    let batches = 0;
    while (batches < MAX_BATCHES) {
      await publishBatch(
        server,
        Array.from({ length: BATCH }, () => {
          const body = eventBody('BID_REQUEST', [accountId]);
          (body.payload as Record<string, unknown>).pad = 'x'.repeat(EVENT_PAD);
          return body;
        }),
      );
      batches++;
      if (batches % 8 === 0 && (await closes4009(server)) - before4009 >= NON_READERS) break;
    }
    await waitFor(async () => (await liveConnections(server, accountId)) === 1, 15_000, 'only the reading client left');
    const maxRss = rss.stop();
    const closed = (await closes4009(server)) - before4009;
    expect(closed, 'server-initiated 4009 closes').toBe(NON_READERS);
    expect(normal.isOpen, 'the reading client stays open').toBe(true);

    const log = await readLog(server, token);
    const last = log.at(-1)!.seq;
    await waitFor(() => normal.history.some((f) => f.seq === last), 20_000, 'the reading client received the last event');
    const { lost, duplicates } = compareStream(normal.history.filter(isEventFrame), log, 'reading client');
    expect(maxRss - baseline, `server RSS growth (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);
    figures('non-reading', {
      non_readers: NON_READERS,
      closed_4009: closed,
      events_published: log.length,
      mib_published: ((log.length * EVENT_PAD) / MiB).toFixed(0),
      rss_baseline_mib: (baseline / MiB).toFixed(0),
      rss_max_mib: (maxRss / MiB).toFixed(0),
      lost,
      duplicates,
    });
  });
});
