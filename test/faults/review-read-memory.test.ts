/**
 * Adversarial review: the partners' HTTP read of the log (GET /v1/events, SPEC §2.8) next to the
 * WebSocket resume it mirrors. replay-memory.test.ts holds the server to a bound while 8 clients
 * resume over ~50 MiB of 255 KB events (replay pages are bounded in bytes). The same 8 readers
 * over HTTP, each asking one page with the largest limit the API accepts (1000), make the server
 * materialise the whole history per request: rows, a frame per event, and the joined body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publishBatch, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { figures, MiB, RssSampler } from './helpers.js';

const READERS = 8;
const EVENTS = 208;
const PAD = 255_000;
/** The bound replay-memory.test.ts holds WebSocket resumes of the same history to. */
const RSS_GROWTH_BOUND = 250 * MiB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await stopAll();
});

describe('review: reading the log over HTTP', () => {
  it(`${READERS} partners reading ~50 MiB of history with limit=1000: bounded server memory`, { timeout: 120_000 }, async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'read-memory' });
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
    await server.restart(); // a fresh process: the baseline holds none of the publishing's garbage

    const rss = new RssSampler(server.proc.pid!, 50);
    const baseline = rss.sample();
    const pages = await Promise.all(
      Array.from({ length: READERS }, () => api(server, 'GET', '/v1/events?after_seq=0&limit=1000', undefined, { token: null, headers: { 'x-api-key': token } })),
    );
    const maxRss = rss.stop();
    for (const p of pages) expect(p.status).toBe(200);
    figures('review-read-memory', { readers: READERS, history_mib: ((EVENTS * PAD) / MiB).toFixed(0), rss_baseline_mib: (baseline / MiB).toFixed(0), rss_max_mib: (maxRss / MiB).toFixed(0) });
    expect(maxRss - baseline, `server RSS growth while ${READERS} partners read the log (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);
  });
});
