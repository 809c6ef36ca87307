/**
 * 20 random connection cuts (a TCP proxy resets every live connection at seeded random moments)
 * while events are published; clients reconnect and resume with `after_seq` (SPEC §2.8). Every
 * event reaches each client exactly once and in seq order, across all its connections: no gap,
 * no duplicate at any replay/live switch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publishBatch, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { eventBody, EVENT_TYPES } from '../helpers/payloads.js';
import { closeAllClients } from '../helpers/ws-client.js';
import { TcpProxy } from '../client/helpers/tcp-proxy.js';
import { between, checkResumingClients, figures, prng, readLog, SEED } from './helpers.js';
import { ResumingClient } from './resuming-client.js';

const CUTS = 20;

let server: TestServer;
let proxy: TcpProxy;

beforeAll(async () => {
  server = await startTestServer();
  proxy = await TcpProxy.start(server.port);
});

afterAll(async () => {
  await closeAllClients();
  await proxy?.close();
  await stopAll();
});

describe('random connection cuts with resume', () => {
  it(`${CUTS} cuts while publishing: every event exactly once, in order, on every client`, async () => {
    const random = prng(SEED + 1);
    const { accountId, token } = await createAccountWithKey(server, { name: 'cuts' });
    const subset = ['BID_REQUEST', 'PAYMENT_SETTLED', 'AUCTION_RESULT'];
    const clients = [
      new ResumingClient(() => `ws://127.0.0.1:${proxy.port}/ws`, token, ['ALL']),
      new ResumingClient(() => `ws://127.0.0.1:${proxy.port}/ws`, token, subset),
      new ResumingClient(() => `ws://127.0.0.1:${proxy.port}/ws`, token, ['ALL']),
    ];
    await Promise.all(clients.map((c) => c.start()));

    const chaos = proxy.chaos({ maxCuts: CUTS, minIntervalMs: 60, maxIntervalMs: 260, maxDurationMs: 30_000, random });
    let chaosDone = false;
    void chaos.then(() => (chaosDone = true));
    let published = 0;
    // Publish in small batches of mixed types until the cuts are done (bounded: at most 3,000 events).
    while (!chaosDone && published < 3000) {
      const n = between(random, 1, 8);
      await publishBatch(
        server,
        Array.from({ length: n }, () => eventBody(EVENT_TYPES[between(random, 0, EVENT_TYPES.length - 1)]!, [accountId])),
      );
      published += n;
      await new Promise((r) => setTimeout(r, between(random, 0, 15)));
    }
    await chaos;
    expect(proxy.cuts).toBe(CUTS);

    const log = await readLog(server, token);
    expect(log.length).toBe(published);
    const expectedFor = (rooms: string[]) => (rooms.includes('ALL') ? log : log.filter((e) => rooms.includes(e.msg_type)));
    const expected = clients.map((_, i) => expectedFor(i === 1 ? subset : ['ALL']));
    const { lost, duplicates } = await checkResumingClients(clients, expected, 'after the last cut');
    figures('connection-cuts', {
      cuts: proxy.cuts,
      events_published: published,
      connections: clients.map((c) => c.connections).join('/'),
      frames_checked: clients.reduce((n, c) => n + c.received.length, 0),
      lost,
      duplicates,
    });
  });
});
