/**
 * WebSocket fuzzing (SPEC §2.7: bad input never crashes the server or affects other
 * connections). 10,000 seeded frames (fast-check: near-valid messages, wrong types, random JSON
 * and text, corrupted JSON, control characters, deep nesting, binary frames, invalid UTF-8,
 * oversized frames) go over many connections, authenticated and not. Each frame's answer is
 * checked against an oracle written from the SPEC (frames.ts): the exact error code (always one of
 * §2.7's), the reply frame, or the close code (1009 oversize, 1007 invalid UTF-8, 4001 after a
 * failed authentication). Meanwhile a bystander account's connection receives its events exactly
 * once and in order, the fuzzed connections never receive an event, the server stays up, and its
 * memory stays bounded. One connection that floods is answered RATE_LIMITED and closed 1008.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, publish, sleep, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { eventBody } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, WsTestClient, type Frame } from '../helpers/ws-client.js';
import { compareStream, figures, MiB, readLog, RssSampler, SEED } from '../faults/helpers.js';
import { expectationFor, frameArbitrary, SPEC_ERROR_CODES, type Expectation, type FuzzFrame } from './frames.js';

const FRAMES = 10_000;
const CONNECTIONS = 24;
const MAX_MESSAGE_BYTES = 65_536;
/** Per-connection rate: its burst (2×) exceeds the frames one connection sends, so parsing is what is tested. */
const RATE = 1000;
const ACCESSIBLE = ['BID_REQUEST', 'PAYMENT_SETTLED'];
const RSS_GROWTH_BOUND = 200 * MiB;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_RATE_LIMIT_PER_SEC: String(RATE), TPX_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } });
});

afterAll(async () => {
  await closeAllClients();
  await stopAll();
});

interface Outcome {
  frames: number;
  replies: number;
  closes: Record<number, number>;
  codes: Record<string, number>;
  reconnects: number;
  leaked: Frame[];
  mismatches: string[];
}

function describeFrame(f: FuzzFrame): string {
  const text = typeof f.data === 'string' ? f.data : `<${f.binary ? 'binary' : 'bytes'} ${f.data.toString('hex').slice(0, 80)}>`;
  return `${f.kind} (${Buffer.byteLength(f.data)} B): ${text.slice(0, 160)}`;
}

/** One logical connection: sends its frames one at a time, checks each answer, reopens after a close. */
async function drive(frames: FuzzFrame[], authed: boolean, token: string, out: Outcome): Promise<void> {
  const open = async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    if (authed) await c.authenticate(token);
    return c;
  };
  let c = await open();
  const ctx = { authenticated: authed, accessible: new Set(ACCESSIBLE), maxMessageBytes: MAX_MESSAGE_BYTES };
  const notPing = (f: Frame) => f.msg_type !== 'ping';
  for (const frame of frames) {
    out.frames++;
    const expected: Expectation = expectationFor(frame, ctx);
    const mismatch = (got: string) => out.mismatches.push(`${describeFrame(frame)} → expected ${JSON.stringify(expected)}, got ${got}`);
    c.sendRaw(frame.data, { binary: frame.binary });
    if (expected.reply === 'none') continue;
    if (expected.reply === 'close') {
      const info = await c.waitClosed(5000).catch(() => null);
      out.closes[info?.code ?? 0] = (out.closes[info?.code ?? 0] ?? 0) + 1;
      if (info?.code !== expected.code) mismatch(info ? `close ${info.code}` : `no close; queued ${c.describeQueue()}`);
      out.leaked.push(...c.history.filter(isEventFrame));
      c = await open();
      out.reconnects++;
      continue;
    }
    let reply: Frame;
    try {
      reply = await c.next(notPing, 5000);
    } catch (err) {
      mismatch(`no reply (${(err as Error).message.slice(0, 200)})`);
      if (!c.isOpen) {
        c = await open();
        out.reconnects++;
      }
      continue;
    }
    out.replies++;
    if (reply.msg_type === 'error') {
      const code = reply.payload?.code as string;
      out.codes[code] = (out.codes[code] ?? 0) + 1;
      if (!SPEC_ERROR_CODES.has(code)) mismatch(`error code ${code} (not one of SPEC §2.7)`);
      if (typeof reply.payload?.error !== 'string') mismatch(`error frame without text: ${JSON.stringify(reply)}`);
    }
    const ok = expected.reply === 'error' ? reply.msg_type === 'error' && reply.payload?.code === expected.code : reply.msg_type === expected.msg_type;
    if (!ok) mismatch(JSON.stringify(reply).slice(0, 300));
    // Drop the replayed history of a resume (this account has none) and any event (none may come).
    if (expected.reply === 'error' && expected.thenClose) {
      const info = await c.waitClosed(5000).catch(() => null);
      out.closes[info?.code ?? 0] = (out.closes[info?.code ?? 0] ?? 0) + 1;
      if (info?.code !== expected.thenClose) mismatch(`then ${info ? `close ${info.code}` : 'no close'}`);
      out.leaked.push(...c.history.filter(isEventFrame));
      c = await open();
      out.reconnects++;
    }
  }
  out.leaked.push(...c.history.filter(isEventFrame));
  await c.close();
}

describe('WebSocket frame fuzzing', () => {
  it(`${FRAMES} seeded frames over ${CONNECTIONS} connections: oracle answers, server up, bystander unaffected, memory bounded`, { timeout: 120_000 }, async () => {
    const fuzzed = await createAccountWithKey(server, { name: 'fuzzed', rooms: ACCESSIBLE });
    const bystander = await createAccountWithKey(server, { name: 'bystander' });
    const watcher = await connectAuthed(server.wsUrl, bystander.token, ['ALL']);
    const frames = fc.sample(frameArbitrary, { seed: SEED, numRuns: FRAMES });

    const rss = new RssSampler(server.proc.pid!);
    const baseline = rss.sample();
    let fuzzing = true;
    let published = 0;
    const publisher = (async () => {
      while (fuzzing) {
        await publish(server, eventBody(published % 2 ? 'BID_REQUEST' : 'PAYMENT_SETTLED', [bystander.accountId]));
        published++;
        await sleep(10);
      }
    })();

    const out: Outcome = { frames: 0, replies: 0, closes: {}, codes: {}, reconnects: 0, leaked: [], mismatches: [] };
    const perConnection = Math.ceil(FRAMES / CONNECTIONS);
    await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) => drive(frames.slice(i * perConnection, (i + 1) * perConnection), i % 2 === 0, fuzzed.token, out)),
    );
    fuzzing = false;
    await publisher;
    const maxRss = rss.stop();

    // The server is up and serving.
    expect(server.proc.exitCode, 'server process exited').toBeNull();
    expect((await api(server, 'GET', '/healthz', undefined, { token: null })).status).toBe(200);
    // Every frame got the answer the SPEC gives it.
    expect(out.mismatches.slice(0, 10), `${out.mismatches.length} frames answered against the SPEC`).toEqual([]);
    expect(out.frames).toBe(FRAMES);
    // Isolation: the fuzzed account has no events; nothing of the bystander's reached its connections.
    expect(out.leaked.map((f) => f.msg_id), 'event frames on fuzzed connections').toEqual([]);
    // The bystander received every one of its events, once, in order, and is still connected.
    const log = await readLog(server, bystander.token);
    expect(log.length).toBe(published);
    await waitFor(() => watcher.history.some((f) => f.seq === log.at(-1)!.seq), 10_000, 'bystander caught up');
    const { lost, duplicates } = compareStream(watcher.history.filter(isEventFrame), log, 'bystander');
    expect(watcher.isOpen).toBe(true);
    expect(maxRss - baseline, `server RSS growth (baseline ${(baseline / MiB).toFixed(0)} MiB)`).toBeLessThan(RSS_GROWTH_BOUND);

    const kinds: Record<string, number> = {};
    for (const f of frames) kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
    figures('fuzz', {
      frames: out.frames,
      replies: out.replies,
      reconnects: out.reconnects,
      closes: JSON.stringify(out.closes),
      error_codes: JSON.stringify(out.codes),
      kinds: JSON.stringify(kinds),
      bystander_events: log.length,
      lost,
      duplicates,
      rss_baseline_mib: (baseline / MiB).toFixed(0),
      rss_max_mib: (maxRss / MiB).toFixed(0),
    });
  });

  it('a connection that floods gets RATE_LIMITED and is closed with 1008; the others are unaffected', async () => {
    const { token } = await createAccountWithKey(server, { name: 'flood' });
    const other = await connectAuthed(server.wsUrl, token, ['ALL']);
    const flood = await connectAuthed(server.wsUrl, token);
    const frame = JSON.stringify({ msg_type: 'ping' });
    for (let i = 0; i < RATE * 3; i++) flood.sendRaw(frame);
    const info = await flood.waitClosed(10_000);
    expect(info.code).toBe(1008);
    expect(flood.history.some((f) => f.msg_type === 'error' && f.payload?.code === 'RATE_LIMITED')).toBe(true);
    await other.ping();
    expect(other.isOpen).toBe(true);
  });
});
