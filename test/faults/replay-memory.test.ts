/**
 * Memory per connection is bounded whatever the client does (SPEC §2.7), also while it resumes:
 * issue 9 defect 7 ("one replay page can also load hundreds of 16 MiB events"). With events now
 * capped at TPX_MAX_EVENT_BYTES (256 KiB), a replay page of 500 events still holds up to 125 MiB
 * in the server for ONE resuming connection. Eight clients resuming from 0 over ~50 MiB of
 * history (208 events of 255 KB) must not grow the server by more than a bound that follows the
 * per-connection outbound limit (4 MiB), and each receives every event, once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publishBatch, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, isEventFrame, WsTestClient } from '../helpers/ws-client.js';
import { compareStream, figures, MiB, readLog, RssSampler } from './helpers.js';

const CLIENTS = 8;
const EVENTS = 208;
const PAD = 255_000;
/** Generous: 8 × (4 MiB outbound + a page bounded like it) is ~64 MiB; 250 MiB leaves room for GC. */
const RSS_GROWTH_BOUND = 250 * MiB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await closeAllClients();
  await stopAll();
});

describe('resuming over large events', () => {
  it(`${CLIENTS} clients resuming from 0 over ~50 MiB of history: bounded server memory, every event once, in order`, { timeout: 120_000 }, async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'replay-memory' });
    for (let b = 0; b < EVENTS / 16; b++) {
      await publishBatch(
        server,
        Array.from({ length: 16 }, () => {
          const e = eventBody('BID_REQUEST', [accountId]);
          (e.payload as Record<string, unknown>).pad = 'x'.repeat(PAD);
          return e;
        }),
      );
    }
    const log = await readLog(server, token);
    expect(log.length).toBe(EVENTS);
    // A fresh process: the baseline holds none of the publishing's garbage.
    await server.restart();

    const rss = new RssSampler(server.proc.pid!, 50);
    const baseline = rss.sample();
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const c = await WsTestClient.connect(server.wsUrl);
        await c.authenticate(token);
        c.send({ msg_type: 'subscribe', payload: { rooms: ['ALL'], after_seq: 0 } });
        return c;
      }),
    );
    await waitFor(() => clients.every((c) => c.history.filter(isEventFrame).length >= EVENTS || c.closeInfo), 60_000, 'every client replayed the history');
    const maxRss = rss.stop();
    figures('replay-memory', { clients: CLIENTS, history_mib: ((EVENTS * PAD) / MiB).toFixed(0), rss_baseline_mib: (baseline / MiB).toFixed(0), rss_max_mib: (maxRss / MiB).toFixed(0) });
    for (const [i, c] of clients.entries()) compareStream(c.history.filter(isEventFrame), log, `client ${i}`);
    expect(maxRss - baseline, `server RSS growth while ${CLIENTS} clients resume (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
