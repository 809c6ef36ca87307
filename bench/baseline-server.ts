/**
 * The baseline: a bare `ws` server in its own process speaking just enough of the tpx protocol
 * for the same load generator and publisher to drive it. No auth check, no rooms, no seq per
 * account, no persistence, no slow-consumer policy, no cork/coalescing: for every published
 * event it serializes ONE frame string and calls `ws.send(string)` once per socket (the naive
 * fan-out every figure of the benchmark is compared against).
 *
 *   node --import tsx bench/baseline-server.ts   (env TPX_HOST, TPX_PORT; logs {"msg":"listening","port":…})
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';

const host = process.env.TPX_HOST || '127.0.0.1';
const port = Number(process.env.TPX_PORT ?? 0);

const subscribed = new Set<WebSocket>();
let seq = 0;
let eventsIn = 0;
let framesOut = 0;

function control(msgType: string, payload: Record<string, unknown>): string {
  return JSON.stringify({ msg_type: msgType, sent_at: Date.now(), payload });
}

interface PublishBody {
  msg_type?: unknown;
  payload?: unknown;
}

function fanOut(ev: PublishBody): { msg_id: string; recipients: number } {
  if (typeof ev.msg_type !== 'string' || ev.payload === null || typeof ev.payload !== 'object') {
    throw new Error('invalid event');
  }
  const msgId = randomUUID();
  const frame =
    '{"msg_type":' + JSON.stringify(ev.msg_type) + ',"msg_id":"' + msgId + '","seq":' + ++seq +
    ',"sent_at":' + Date.now() + ',"payload":' + JSON.stringify(ev.payload) + '}';
  eventsIn++;
  for (const ws of subscribed) {
    ws.send(frame);
    framesOut++;
  }
  return { msg_id: msgId, recipients: subscribed.size };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  try {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url === '/v1/events') {
      const body = JSON.parse(await readBody(req)) as PublishBody;
      return json(res, 202, fanOut(body));
    }
    if (req.method === 'POST' && url === '/v1/events/batch') {
      const body = JSON.parse(await readBody(req)) as { events?: PublishBody[] };
      const results = (body.events ?? []).map(fanOut);
      return json(res, 202, { accepted: results.length, results });
    }
    if (req.method === 'GET' && url === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && url === '/stats') {
      return json(res, 200, { connections: subscribed.size, events_in: eventsIn, frames_out: framesOut, memory: process.memoryUsage() });
    }
    return json(res, 404, { error: 'not found', code: 'NOT_FOUND' });
  } catch (err) {
    return json(res, 400, { error: String((err as Error).message), code: 'BAD_REQUEST' });
  }
});
server.keepAliveTimeout = 65_000;

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  if ((req.url ?? '').split('?')[0] !== '/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let authed = false;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: { msg_type?: unknown; payload?: { rooms?: unknown } };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        ws.send(control('error', { error: 'not JSON', code: 'INVALID_JSON' }));
        return;
      }
      switch (msg.msg_type) {
        case 'authenticate':
          authed = true;
          ws.send(control('authenticated', { account_id: '00000000-0000-4000-8000-000000000000', auth_method: 'api_key' }));
          return;
        case 'subscribe':
          if (!authed) {
            ws.send(control('error', { error: 'authenticate first', code: 'AUTH_REQUIRED' }));
            return;
          }
          subscribed.add(ws);
          ws.send(control('subscribed', { rooms: Array.isArray(msg.payload?.rooms) ? msg.payload.rooms : [] }));
          return;
        case 'ping':
          ws.send(control('pong', {}));
          return;
        default:
          return;
      }
    });
    ws.on('close', () => subscribed.delete(ws));
    ws.on('error', () => subscribed.delete(ws));
  });
});

server.listen(port, host, () => {
  const addr = server.address();
  const p = typeof addr === 'object' && addr ? addr.port : port;
  process.stdout.write(JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: 'listening', host, port: p }) + '\n');
});

const shutdown = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
