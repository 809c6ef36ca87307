/**
 * Inbound memory is not bounded by TPX_MAX_MESSAGE_BYTES: ws-reader.ts dataFrame() keeps every
 * fragment of a message in progress as a subarray of the socket chunk it arrived in, empty ones
 * included, and the size limit counts only payload bytes. A message that never ends, made of
 * empty continuation frames (6 bytes each, 0 bytes of payload), therefore pins every socket
 * chunk that carries one, plus one Buffer per fragment, without limit. `ws`'s Receiver skips
 * empty fragments on purpose (`if (data.length) fragments.push(data)`).
 * Seen: the server's RSS grows with every byte sent (~ all of it retained). The same holds for
 * 1-byte fragments up to the limit: 50,000 bytes of payload pinned ~200 MiB of chunks.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { clientFrame, RawClient } from '../helpers/raw-ws.js';

afterAll(() => stopAll());

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('a never-ending fragmented message', () => {
  let server: TestServer;
  // A fresh server per case: memory freed by one case would be reused unseen by the next.
  beforeEach(async () => {
    server = await startTestServer({ env: { TPX_AUTH_TIMEOUT_MS: '60000', TPX_PING_INTERVAL_MS: '60000', TPX_PONG_TIMEOUT_MS: '60000' } });
  });
  afterEach(() => server.stop('SIGKILL').then(() => undefined));

  /** Send `total` bytes of `block`s (bounded, paced by drain). */
  async function pump(c: RawClient, block: Buffer, total: number): Promise<void> {
    let sent = 0;
    while (sent < total && !c.closed) {
      if (!c.socket.write(block)) await new Promise((r) => c.socket.once('drain', r));
      sent += block.length;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }

  it('control: the same 256 MiB of pongs without a fragmented message leave RSS bounded', async () => {
    const c = await RawClient.open(server.port);
    const pong = clientFrame(0xa, Buffer.alloc(125, 0x61));
    const block = Buffer.concat(Array.from({ length: 500 }, () => pong));
    await new Promise((r) => setTimeout(r, 300));
    const before = rssBytes(server.proc.pid!);
    await pump(c, block, 256 * 1024 * 1024);
    const grown = rssBytes(server.proc.pid!) - before;
    expect(c.closed).toBe(false);
    c.destroy();
    expect(grown).toBeLessThan(128 * 1024 * 1024);
  });

  it('256 MiB of empty continuation frames (with pong padding) do not pin 256 MiB of server memory', async () => {
    const c = await RawClient.open(server.port);
    c.send(clientFrame(0x1, '{"msg_type":', { fin: false })); // a text message that never ends
    // One unit: an empty continuation, then 31 pongs of 125 bytes (unanswered, not rate limited):
    // ~4 KiB, so every chunk the server reads holds at least one fragment.
    const pong = clientFrame(0xa, Buffer.alloc(125, 0x61));
    const unit = Buffer.concat([clientFrame(0x0, Buffer.alloc(0), { fin: false }), ...Array.from({ length: 31 }, () => pong)]);
    const block = Buffer.concat(Array.from({ length: 16 }, () => unit)); // ~64 KiB
    await new Promise((r) => setTimeout(r, 300));
    const before = rssBytes(server.proc.pid!);
    await pump(c, block, 256 * 1024 * 1024);
    const grown = rssBytes(server.proc.pid!) - before;
    c.destroy();
    // The message holds no payload byte: a bounded reader holds at most a frame or two, not the
    // stream (what is left, like in the control, is garbage not yet collected).
    expect(grown).toBeLessThan(128 * 1024 * 1024);
  });

  it('a message of 1-byte fragments within TPX_MAX_MESSAGE_BYTES does not pin 4 KiB of chunk per payload byte', async () => {
    const c = await RawClient.open(server.port);
    c.send(clientFrame(0x1, '[', { fin: false }));
    const pong = clientFrame(0xa, Buffer.alloc(125, 0x61));
    const unit = Buffer.concat([clientFrame(0x0, ' ', { fin: false }), ...Array.from({ length: 31 }, () => pong)]);
    const block = Buffer.concat(Array.from({ length: 16 }, () => unit)); // 16 payload bytes per ~64 KiB
    await new Promise((r) => setTimeout(r, 300));
    const before = rssBytes(server.proc.pid!);
    await pump(c, block, 200 * 1024 * 1024); // ~51,000 payload bytes: under the 64 KiB limit
    const grown = rssBytes(server.proc.pid!) - before;
    expect(c.closed).toBe(false);
    c.destroy();
    expect(grown).toBeLessThan(128 * 1024 * 1024);
  });
});
