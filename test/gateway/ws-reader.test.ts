/**
 * The client-frame parser (src/gateway/ws-reader.ts) against ws's Receiver, an independent
 * implementation of RFC 6455 that the gateway used before: the same bytes, cut into the same
 * random chunks, must give the same messages, pings, pongs and close frames in the same order,
 * and the same close code when the bytes break the protocol (1002, 1007, 1009). Frames are
 * generated valid (random fragmentation, masks, control frames between fragments, lengths on
 * the 7/16/64-bit boundaries) and then, for half the runs, corrupted byte by byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { FrameReader, type FrameSink } from '../../src/gateway/ws-reader.js';
import { closeFrame } from '../../src/gateway/ws-transport.js';

type Receiver = NodeJS.WritableStream & { on(ev: string, cb: (...args: any[]) => void): void };
type ReceiverCtor = new (opts: Record<string, unknown>) => Receiver;
const WsReceiver = (ws as unknown as { Receiver: ReceiverCtor }).Receiver;

const MAX_PAYLOAD = 300;

interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  mask: Buffer;
  /** Encode the length in more bytes than needed (allowed by ws, and by us). */
  wide: boolean;
}

function encode(f: RawFrame): Buffer {
  const n = f.payload.length;
  let header: Buffer;
  if (n < 126 && !f.wide) header = Buffer.from([(f.fin ? 0x80 : 0) | f.opcode, 0x80 | n]);
  else if (n < 65536) {
    header = Buffer.alloc(4);
    header[0] = (f.fin ? 0x80 : 0) | f.opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (f.fin ? 0x80 : 0) | f.opcode;
    header[1] = 0x80 | 127;
    header.writeUInt32BE(n, 6);
  }
  const masked = Buffer.from(f.payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= f.mask[i & 3];
  return Buffer.concat([header, f.mask, masked]);
}

const mask = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a));
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom('x'.repeat(125), 'y'.repeat(126), 'z'.repeat(MAX_PAYLOAD), 'w'.repeat(MAX_PAYLOAD + 1)));
const bytes = fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a));

/** A message as frames: data split into 1-3 fragments, with control frames possibly in between. */
const message = fc.oneof(
  fc.record({ kind: fc.constant('text' as const), data: text.map((t) => Buffer.from(t)), cuts: fc.array(fc.nat(), { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('binary' as const), data: bytes, cuts: fc.array(fc.nat(), { maxLength: 2 }) }),
  fc.record({ kind: fc.constantFrom('ping' as const, 'pong' as const), data: fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a)), cuts: fc.constant([]) }),
);

function framesOf(m: { kind: string; data: Buffer; cuts: readonly number[] }, masks: Buffer[], interleave: RawFrame | null, wide: boolean): RawFrame[] {
  const take = (i: number) => masks[i % masks.length];
  if (m.kind === 'ping' || m.kind === 'pong') return [{ fin: true, opcode: m.kind === 'ping' ? 9 : 10, payload: m.data, mask: take(0), wide }];
  const points = [...new Set(m.cuts.map((c) => (m.data.length ? c % m.data.length : 0)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    parts.push(m.data.subarray(from, p));
    from = p;
  }
  parts.push(m.data.subarray(from));
  const out: RawFrame[] = parts.map((payload, i) => ({ fin: i === parts.length - 1, opcode: i === 0 ? (m.kind === 'text' ? 1 : 2) : 0, payload, mask: take(i), wide }));
  if (interleave && out.length > 1) out.splice(1, 0, interleave);
  return out;
}

const stream = fc
  .record({
    messages: fc.array(message, { maxLength: 6 }),
    masks: fc.array(mask, { minLength: 1, maxLength: 3 }),
    interleave: fc.boolean(),
    wide: fc.boolean(),
    close: fc.option(fc.record({ code: fc.constantFrom(1000, 1001, 1005, 1006, 1015, 2999, 3000, 4009, 4999, 5000), reason: fc.string({ maxLength: 20 }) })),
    corrupt: fc.array(fc.record({ at: fc.nat(), value: fc.nat({ max: 255 }) }), { maxLength: 3 }),
    chunks: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
  })
  .map((s) => {
    const frames: RawFrame[] = [];
    const ping: RawFrame = { fin: true, opcode: 9, payload: Buffer.from('between'), mask: s.masks[0], wide: false };
    for (const m of s.messages) frames.push(...framesOf(m, s.masks, s.interleave ? ping : null, s.wide));
    if (s.close) {
      const payload = s.close.code === 1005 ? Buffer.alloc(0) : closeFrame(s.close.code, s.close.reason).subarray(2);
      frames.push({ fin: true, opcode: 8, payload, mask: s.masks[0], wide: false });
      frames.push({ fin: true, opcode: 1, payload: Buffer.from('after close'), mask: s.masks[0], wide: false });
    }
    const data = Buffer.concat(frames.map(encode));
    for (const c of s.corrupt) if (data.length) data[c.at % data.length] = c.value;
    return { data, chunks: s.chunks };
  });

function split(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(Buffer.from(data.subarray(at, at + n))); // a fresh buffer per chunk, as a socket gives
    at += n;
  }
  return out;
}

function ours(chunks: Buffer[]): string[] {
  const events: string[] = [];
  const sink: FrameSink = {
    text: (t) => events.push(`text ${JSON.stringify(t)}`),
    binary: () => events.push('binary'),
    ping: (p) => events.push(`ping ${p.toString('hex')}`),
    pong: () => events.push('pong'),
    closeFrame: (code, reason) => events.push(`close ${code} ${JSON.stringify(reason)}`),
    violation: (code) => events.push(`violation ${code}`),
  };
  const reader = new FrameReader(sink, MAX_PAYLOAD);
  for (const c of chunks) reader.push(c);
  return events;
}

async function theirs(chunks: Buffer[]): Promise<string[]> {
  const events: string[] = [];
  const r = new WsReceiver({ isServer: true, maxPayload: MAX_PAYLOAD, allowSynchronousEvents: true, skipUTF8Validation: false });
  let stopped = false;
  r.on('message', (data: Buffer | Buffer[], isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : data;
    events.push(isBinary ? 'binary' : `text ${JSON.stringify(buf.toString('utf8'))}`);
  });
  r.on('ping', (p: Buffer) => events.push(`ping ${p.toString('hex')}`));
  r.on('pong', () => events.push('pong'));
  r.on('conclude', (code: number, reason: Buffer) => {
    stopped = true;
    events.push(`close ${code} ${JSON.stringify(reason.toString('utf8'))}`);
  });
  r.on('error', (err: Error) => {
    stopped = true;
    // ws keeps the close code under a private symbol ('status-code').
    const key = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code')!;
    events.push(`violation ${(err as unknown as Record<symbol, number>)[key]}`);
  });
  for (const c of chunks) {
    if (stopped) break; // the gateway stops reading after a close frame or an error
    await new Promise<void>((resolve) => r.write(c, () => resolve()));
  }
  return events;
}

describe('FrameReader (client frames) against ws’s Receiver', () => {
  it('same events, same order, same close codes, whatever the fragmentation, chunking and corruption', async () => {
    await fc.assert(
      fc.asyncProperty(stream, async ({ data, chunks }) => {
        const pieces = split(data, chunks);
        const expected = await theirs(pieces.map((p) => Buffer.from(p)));
        expect(ours(pieces)).toEqual(expected);
      }),
      { numRuns: 1500, seed: 20261207 },
    );
  });

  it('refuses a frame over the limit from its header, before its payload arrives', () => {
    const events: string[] = [];
    const reader = new FrameReader({ text: () => {}, binary: () => {}, ping: () => {}, pong: () => {}, closeFrame: () => {}, violation: (code) => events.push(`violation ${code}`) }, 1024);
    const header = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0]); // 2^32 bytes announced
    reader.push(header.subarray(0, 5));
    expect(events).toEqual([]);
    reader.push(header.subarray(5));
    expect(events).toEqual(['violation 1009']);
  });
});
