/**
 * Clients that stop reading, for the non-reading-client fault tests: a real WebSocket client
 * (authenticated and subscribed while it still reads) whose socket is then paused, so the
 * kernel buffers fill and everything else the server sends stays queued on the server. Such a
 * client can still send: raw pre-built frames are written straight to its socket, fast enough
 * to outrun the server's replies.
 */
import type { Socket } from 'node:net';
import { api, type TestServer } from '../helpers/server.js';
import { WsTestClient } from '../helpers/ws-client.js';

export function socketOf(c: WsTestClient): Socket {
  return (c.ws as unknown as { _socket: Socket })._socket;
}

/** A connected, authenticated client (subscribed to `rooms` if given, optionally resuming) that then stops reading. */
export async function nonReader(server: TestServer, token: string, rooms?: string[], afterSeq?: number): Promise<WsTestClient> {
  const c = await WsTestClient.connect(server.wsUrl);
  await c.authenticate(token);
  if (rooms && afterSeq === undefined) await c.subscribe(rooms);
  if (rooms && afterSeq !== undefined) c.send({ msg_type: 'subscribe', payload: { rooms, after_seq: afterSeq } });
  socketOf(c).pause();
  return c;
}

/**
 * A masked client text frame (RFC 6455 §5.3). The masking key is 0, which leaves the payload as
 * is: a valid frame that can be built once and written many times.
 */
export function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const len = payload.length;
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
  if (len >= 65536) throw new Error('frame too large for this helper');
  return Buffer.concat([header, Buffer.alloc(4), payload]);
}

/** Write `frame` `count` times to the socket, in chunks, waiting for drain: bounded in count. */
export async function spam(socket: Socket, frame: Buffer, count: number, perChunk = 200): Promise<void> {
  for (let sent = 0; sent < count && !socket.destroyed; sent += perChunk) {
    const n = Math.min(perChunk, count - sent);
    const ok = socket.write(Buffer.concat(Array.from({ length: n }, () => frame)));
    if (!ok) await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }
}

export async function closes4009(server: TestServer): Promise<number> {
  const res = await api(server, 'GET', '/metrics', undefined, { token: null });
  const m = /^tpx_ws_closes_total\{code="4009"\} (\d+)/m.exec(res.text);
  return m ? Number(m[1]) : 0;
}

export async function liveConnections(server: TestServer, accountId: string): Promise<number> {
  const res = await api(server, 'GET', `/admin/connections?account_id=${accountId}`);
  if (res.status !== 200) throw new Error(`/admin/connections: ${res.status} ${res.text.slice(0, 200)}`);
  return res.body.count as number;
}
