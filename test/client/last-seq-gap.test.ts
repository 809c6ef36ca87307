/**
 * SPEC §2.8 `last_seq` and `gap` in the SDK, over real sockets against a model of the server's
 * side of the protocol (helpers/spec-server.ts):
 * - a client with no saved position keeps `last_seq` as its resume position from the first
 *   `subscribed` on, so losing the first connection before any event loses nothing (this test
 *   failed before the SDK read `last_seq`: the reconnect subscribed without `after_seq`);
 * - `subscribed.gap` and `gap` frames reach the application as `gap`, in stream order, and a
 *   reconnect resumes after a reported gap;
 * - a server whose stream ends below the client's checkpoint is reported and followed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TpxClient, type TpxClientOptions } from '../../packages/client/src/client.js';
import type { TpxError } from '../../packages/client/src/errors.js';
import { waitFor } from '../helpers/server.js';
import { SpecServer, type SpecServerOptions } from './helpers/spec-server.js';

const servers: SpecServer[] = [];
const clients: TpxClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function setup(opts: Partial<TpxClientOptions> = {}, serverOpts: SpecServerOptions = {}) {
  const server = await SpecServer.start(serverOpts);
  servers.push(server);
  const client = new TpxClient({ url: server.url, token: 'tp_live_x', reconnect: { initialDelayMs: 10, maxDelayMs: 40 }, ...opts });
  clients.push(client);
  const stream: string[] = [];
  client.on('event', (e) => void stream.push(`#${e.seq}`));
  client.on('gap', (g) => void stream.push(`gap ${g.from_seq}-${g.to_seq}`));
  return { server, client, stream };
}

describe('last_seq: the resume position of a client with no saved position', () => {
  it('first connection lost before any event: the events published meanwhile arrive after the reconnect, history does not', async () => {
    const { server, client, stream } = await setup();
    for (let i = 0; i < 5; i++) server.publish(); // history: 1..5, not wanted by a fresh consumer
    await client.connect();
    expect(client.lastSeq).toBe(5);
    // Published while the client is away (from its `reconnecting` handler: before it reconnects).
    const missed: number[] = [];
    client.on('reconnecting', () => {
      if (missed.length === 0) for (let i = 0; i < 3; i++) missed.push(server.publish().seq);
    });
    server.dropAll();
    await waitFor(() => stream.length >= 3, 5_000, 'the events published while disconnected');
    await client.drain();
    expect(stream).toEqual(missed.map((s) => `#${s}`));
    expect(server.subscribes.map((s) => s.after_seq)).toEqual([undefined, 5]);
    server.publish();
    await waitFor(() => stream.length === 4, 5_000, 'a live event');
    expect(client.lastSeq).toBe(9);
  });

  it('a saved position (afterSeq) wins over last_seq', async () => {
    const { server, client, stream } = await setup({ afterSeq: 2 });
    for (let i = 0; i < 4; i++) server.publish();
    await client.connect();
    await waitFor(() => stream.length >= 2, 5_000, 'the replay');
    expect(stream).toEqual(['#3', '#4']);
    expect(server.subscribes[0]!.after_seq).toBe(2);
  });

  it('a server stream that ends below our checkpoint (store reset) is reported, then followed', async () => {
    const { server, client, stream } = await setup({ afterSeq: 100 });
    const errors: TpxError[] = [];
    client.on('error', (e) => void errors.push(e));
    server.publish();
    await client.connect();
    expect(errors.map((e) => e.code)).toEqual(['RESUME_BEYOND_STREAM']);
    expect(client.lastSeq).toBe(1);
    server.publish();
    await waitFor(() => stream.length >= 1, 5_000, 'the next event');
    expect(stream).toEqual(['#2']);
  });
});

describe('gap: pruned ranges reach the application in stream order', () => {
  it('subscribed.gap, then a gap frame in the middle of the replay, then live events', async () => {
    let announced = false;
    const { server, client, stream } = await setup(
      { afterSeq: 0 },
      {
        pruneDuringReplay: (seq) => {
          if (seq !== 7 || announced) return undefined;
          announced = true;
          return { from_seq: 7, to_seq: 8 };
        },
      },
    );
    for (let i = 0; i < 10; i++) server.publish();
    server.prunedThrough = 3;
    await client.connect();
    server.publish();
    await waitFor(() => stream.length >= 7, 5_000, 'replay and live event');
    await client.drain();
    expect(stream).toEqual(['gap 1-3', '#4', '#5', '#6', 'gap 7-8', '#9', '#10', '#11']);
    expect(client.lastSeq).toBe(11);
  });

  it('a reconnect right after a reported gap resumes after the gap, not before it', async () => {
    const { server, client, stream } = await setup({ afterSeq: 0 });
    for (let i = 0; i < 4; i++) server.publish();
    server.prunedThrough = 4;
    let gaps = 0;
    client.on('gap', () => void gaps++);
    await client.connect();
    await waitFor(() => gaps === 1, 5_000, 'the gap');
    await client.drain();
    expect(client.lastSeq).toBe(4);
    server.dropAll();
    await waitFor(() => server.subscribes.length === 2, 5_000, 'the resubscribe');
    expect(server.subscribes[1]!.after_seq).toBe(4);
    await client.drain();
    expect(gaps).toBe(1);
    expect(stream).toEqual(['gap 1-4']);
  });
});
