/**
 * GET /v1/events pages are bounded in bytes as well as by `limit` (SPEC §2.8; docs/protocol.md):
 * a page ends once its payloads reach READ_PAGE_BYTES, says so with `has_more`, and
 * `next_after_seq` continues exactly after it, so a reader asking for 1,000 large events gets them
 * all, in order, a few MiB at a time (review-read-memory.test.ts measures the server's memory).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publishBatch, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { READ_PAGE_BYTES } from '../../src/http/routes/publish.js';

const EVENTS = 24;
const PAD = 250_000;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await stopAll();
});

describe('GET /v1/events byte budget', () => {
  it('a page cut short by bytes says has_more, and next_after_seq continues after it with nothing lost or repeated', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    for (let b = 0; b < EVENTS / 8; b++) {
      const res = await publishBatch(
        server,
        Array.from({ length: 8 }, () => {
          const e = eventBody('BID_REQUEST', [accountId]);
          (e.payload as Record<string, unknown>).pad = 'x'.repeat(PAD);
          return e;
        }),
      );
      expect(res.status, res.text).toBe(202);
    }
    const seqs: number[] = [];
    const pages: Array<{ events: number; bytes: number; has_more: boolean }> = [];
    let after = 0;
    for (let i = 0; i < 10; i++) {
      const res = await api(server, 'GET', `/v1/events?after_seq=${after}&limit=1000`, undefined, { token: null, headers: { 'x-api-key': token } });
      expect(res.status, res.text.slice(0, 200)).toBe(200);
      const events = res.body.events as Array<{ seq: number; payload: unknown }>;
      const bytes = events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e.payload)), 0);
      pages.push({ events: events.length, bytes, has_more: res.body.has_more });
      seqs.push(...events.map((e) => e.seq));
      if (events.length > 0) expect(res.body.next_after_seq).toBe(events.at(-1)!.seq);
      after = res.body.next_after_seq;
      if (!res.body.has_more) break;
    }
    expect(seqs).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(p.bytes).toBeLessThan(READ_PAGE_BYTES + PAD + 1000); // the budget plus the event that crossed it
    expect(pages.slice(0, -1).every((p) => p.has_more)).toBe(true);
    expect(pages.at(-1)!.has_more).toBe(false);
  });
});
