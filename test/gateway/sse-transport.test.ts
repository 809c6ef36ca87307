/**
 * The SSE transport's bytes on a real loopback HTTP connection, read raw from a TCP socket:
 * chunk framing for HTTP/1.1 (and none for HTTP/1.0, where the end of the body is the end of the
 * connection), ids of subscribed/gap, `: ping`, the closing comment and terminating chunk, the
 * HTTP refusals of a stream that never started, and one encoding per (event, framing) shared by
 * every SSE connection.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlFrame, errorFrame } from '../../src/gateway/frames.js';
import { SseTransport } from '../../src/gateway/sse-transport.js';
import { EventFrame } from '../../src/gateway/transport.js';
import type { AccountEvent } from '../../src/store/types.js';

let server: Server;
let port: number;
let onResponse: (res: ServerResponse) => void = () => undefined;

beforeAll(async () => {
  server = createServer((_req, res) => onResponse(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Send `request` on a raw socket; resolve with everything read until the server closes or `untilText` appears. */
function rawExchange(request: string, untilText?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; got ${JSON.stringify(text)}`));
    }, 5000);
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
      if (untilText && text.includes(untilText)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

const event = (seq: number, payload = '{"a":"ü"}'): AccountEvent =>
  ({ account_id: 'acc', seq, msg_id: `00000000-0000-4000-8000-00000000000${seq}`, msg_type: 'BID_REQUEST', payload_json: payload, created_at_ms: 1 }) as AccountEvent;

function body(text: string): string {
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

/** Decode a chunked body, checking every chunk size against its data. */
function dechunk(raw: string): { chunks: string[]; terminated: boolean } {
  const bytes = Buffer.from(raw, 'latin1');
  const chunks: string[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at, 'latin1');
    if (eol < 0) return { chunks, terminated: false };
    const size = parseInt(bytes.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) return { chunks, terminated: bytes.subarray(eol, eol + 4).toString('latin1') === '\r\n\r\n' };
    const data = bytes.subarray(eol + 2, eol + 2 + size);
    expect(bytes.subarray(eol + 2 + size, eol + 4 + size).toString('latin1')).toBe('\r\n');
    chunks.push(data.toString('utf8'));
    at = eol + 4 + size;
  }
}

describe('SseTransport bytes', () => {
  it('HTTP/1.1: one chunk per message, ids on subscribed/gap/events, ping comment, closing comment and terminating chunk', async () => {
    let frameJson = '';
    onResponse = (res) => {
      const t = new SseTransport(res, 1 << 20, { 'access-control-allow-origin': '*' });
      t.sendControl('authenticated', controlFrame('authenticated', { account_id: 'acc-1', auth_method: 'api_key' }));
      t.sendControl('ping', controlFrame('ping', {})); // before the stream: nothing to send
      t.sendControl('subscribed', '{"msg_type":"subscribed","payload":{"rooms":["ALL"],"last_seq":4}}', 4);
      const frame = new EventFrame(event(5), 1700000000000);
      frameJson = frame.json;
      expect(t.sendEvent(frame)).toBe(true);
      t.sendControl('gap', '{"msg_type":"gap","payload":{"from_seq":6,"to_seq":9}}', 9);
      t.sendControl('ping', controlFrame('ping', {}));
      t.sendControl('error', errorFrame('AUTH_API_KEY_INACTIVE', 'API key was deactivated'));
      t.close(4001, 'API key was deactivated');
    };
    const text = await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\n\r\n', '0\r\n\r\n');
    const head = text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toMatch(/^http\/1.1 200 ok/);
    expect(head).toContain('transfer-encoding: chunked');
    expect(head).toContain('content-type: text/event-stream; charset=utf-8');
    expect(head).toContain('x-tpx-account-id: acc-1');
    expect(head).toContain('access-control-allow-origin: *');
    const { chunks, terminated } = dechunk(body(text));
    expect(terminated).toBe(true);
    expect(chunks[0]).toBe('id: 4\nevent: subscribed\ndata: {"msg_type":"subscribed","payload":{"rooms":["ALL"],"last_seq":4}}\n\n');
    expect(chunks[1]).toBe(`id: 5\nevent: BID_REQUEST\ndata: ${frameJson}\n\n`);
    expect(frameJson).toBe('{"msg_type":"BID_REQUEST","msg_id":"00000000-0000-4000-8000-000000000005","seq":5,"sent_at":1700000000000,"payload":{"a":"ü"}}');
    expect(chunks[2]).toBe('id: 9\nevent: gap\ndata: {"msg_type":"gap","payload":{"from_seq":6,"to_seq":9}}\n\n');
    expect(chunks[3]).toBe(': ping\n\n');
    expect(chunks[4]).toMatch(/^event: error\ndata: \{"msg_type":"error",.*"code":"AUTH_API_KEY_INACTIVE"\}\}\n\n$/);
    expect(chunks[5]).toBe(': close 4001 API key was deactivated\n\n');
    expect(chunks).toHaveLength(6);
  });

  it('a subscribed with a gap (a resume into a pruned range) is followed by the same range as event: gap', async () => {
    onResponse = (res) => {
      const t = new SseTransport(res, 1 << 20, {});
      t.sendControl('subscribed', controlFrame('subscribed', { rooms: ['ALL'], resumed_from: 2, last_seq: 9, gap: { from_seq: 3, to_seq: 5 } }), 5);
      t.close(1000, '');
    };
    const { chunks } = dechunk(body(await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')));
    expect(chunks[0]).toMatch(/^id: 2\nevent: subscribed\ndata: \{"msg_type":"subscribed",.*"gap":\{"from_seq":3,"to_seq":5\}\}\}\n\n$/);
    expect(chunks[1]).toMatch(/^id: 5\nevent: gap\ndata: \{"msg_type":"gap","sent_at":\d+,"payload":\{"from_seq":3,"to_seq":5\}\}\n\n$/);
    expect(chunks[2]).toBe(': close 1000\n\n');
  });

  it('HTTP/1.0: no chunk framing, the connection closes at the end of the stream', async () => {
    onResponse = (res) => {
      const t = new SseTransport(res, 1 << 20, {});
      t.sendControl('subscribed', '{"msg_type":"subscribed","payload":{}}', 0);
      t.sendEvent(new EventFrame(event(1), 1));
      t.close(1001, 'server shutting down');
    };
    const text = await rawExchange('GET /s HTTP/1.0\r\n\r\n');
    expect(text.slice(0, text.indexOf('\r\n')).toLowerCase()).toMatch(/^http\/1.[01] 200/);
    expect(text.toLowerCase()).not.toContain('transfer-encoding');
    expect(text.toLowerCase()).toContain('connection: close');
    expect(Buffer.from(body(text), 'latin1').toString('utf8')).toBe(
      'id: 0\nevent: subscribed\ndata: {"msg_type":"subscribed","payload":{}}\n\n' +
        'id: 1\nevent: BID_REQUEST\ndata: {"msg_type":"BID_REQUEST","msg_id":"00000000-0000-4000-8000-000000000001","seq":1,"sent_at":1,"payload":{"a":"ü"}}\n\n' +
        ': close 1001 server shutting down\n\n',
    );
  });

  it('a stream that never started answers an HTTP error with the held error frame, or 500 by close code', async () => {
    const cases: Array<[(t: SseTransport) => void, number, Record<string, unknown>]> = [
      [(t) => (t.sendControl('error', errorFrame('AUTH_INVALID_API_KEY', 'Invalid API key')), t.close(4001, 'x')), 401, { code: 'AUTH_INVALID_API_KEY', error: 'Invalid API key' }],
      [(t) => (t.sendControl('error', errorFrame('AUTH_API_KEY_EXPIRED', 'expired')), t.close(4001, 'x')), 401, { code: 'AUTH_API_KEY_EXPIRED' }],
      [(t) => (t.sendControl('error', errorFrame('AUTH_API_KEY_INACTIVE', 'inactive')), t.close(4001, 'x')), 403, { code: 'AUTH_API_KEY_INACTIVE' }],
      [(t) => (t.sendControl('error', errorFrame('INVALID_ROOM', 'Unknown room(s): X', { rooms: ['X'] })), t.close(1000, 'x')), 400, { code: 'INVALID_ROOM', rooms: ['X'] }],
      [(t) => t.close(1011, 'internal error'), 500, { code: 'INTERNAL' }],
    ];
    for (const [script, status, expected] of cases) {
      onResponse = (res) => script(new SseTransport(res, 1 << 20, {}));
      const text = await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(Number(text.split(' ')[1])).toBe(status);
      expect(JSON.parse(body(text))).toMatchObject(expected);
      expect(text.toLowerCase()).toContain('content-type: application/json');
    }
  });

  it('a stream that never started and is closed by the drain (1001) ends at once with retry: and the close comment, not a 503', async () => {
    onResponse = (res) => new SseTransport(res, 1 << 20, { 'access-control-allow-origin': '*' }).close(1001, 'server shutting down');
    const text = await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(Number(text.split(' ')[1])).toBe(200);
    expect(text.toLowerCase()).toContain('content-type: text/event-stream');
    expect(text.toLowerCase()).toContain('access-control-allow-origin: *');
    expect(body(text)).toMatch(/^retry: \d{4}\n\n: close 1001 server shutting down\n\n$/);
  });

  it('an event is encoded once per framing and the same bytes go to every SSE connection', async () => {
    const frame = new EventFrame(event(3), 5);
    const seen: Buffer[] = [];
    // The transport writes frame.bytesFor(its codec): record what each connection got.
    const original = frame.bytesFor.bind(frame);
    frame.bytesFor = (codec) => {
      const b = original(codec);
      seen.push(b);
      return b;
    };
    const codecOf = (res: ServerResponse) => {
      const t = new SseTransport(res, 1 << 20, {});
      t.sendControl('subscribed', '{}', 0);
      t.sendEvent(frame);
      t.close(1000, '');
    };
    onResponse = codecOf;
    await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await rawExchange('GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await rawExchange('GET /s HTTP/1.0\r\n\r\n');
    expect(seen).toHaveLength(3);
    expect(seen[0]).toBe(seen[1]); // the same Buffer object: encoded once
    expect(seen[2]).not.toBe(seen[0]); // HTTP/1.0: the other framing, also encoded once
  });
});
