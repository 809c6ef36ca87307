/**
 * A reply queued for a valid message is lost when a protocol violation follows it in the same
 * read: ws-transport.ts violation() writes the close frame and ends the socket without flushing
 * the burst that the earlier message queued (close() and closeFrame() flush first). The burst's
 * microtask flush then writes after end() (ERR_STREAM_WRITE_AFTER_END, swallowed). `ws` wrote
 * replies as they were sent, so the client saw them before the close.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { clientFrame, RawClient } from '../helpers/raw-ws.js';

afterAll(() => stopAll());

describe('replies to messages read before a protocol violation', () => {
  let server: TestServer;
  it('starts', async () => {
    server = await startTestServer({ env: { TPX_AUTH_TIMEOUT_MS: '20000' } });
  });

  it('a ping message followed (same write) by a frame with RSV1 set: pong, then close 1002', async () => {
    const c = await RawClient.open(server.port);
    c.send(Buffer.concat([clientFrame(0x1, '{"msg_type":"ping"}'), clientFrame(0x1, '{"msg_type":"ping"}', { rsv: 4 })]));
    await c.until(() => c.closeFrame() !== null || c.closed, 5000, 'the close frame');
    expect(c.closeFrame()?.code).toBe(1002);
    expect(c.texts().map((m) => m.msg_type)).toEqual(['pong']);
    c.destroy();
  });

  it('a non-JSON text followed (same write) by an oversized frame header: INVALID_JSON, then close 1009', async () => {
    const c = await RawClient.open(server.port);
    const huge = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0]); // 1 MiB text, header only
    c.send(Buffer.concat([clientFrame(0x1, 'not json'), huge]));
    await c.until(() => c.closeFrame() !== null || c.closed, 5000, 'the close frame');
    expect(c.closeFrame()?.code).toBe(1009);
    expect(c.texts().map((m) => m.payload?.code)).toEqual(['INVALID_JSON']);
    c.destroy();
  });
});
