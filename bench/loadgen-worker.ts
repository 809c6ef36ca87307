/**
 * Load-generator worker thread: holds many WebSocket client connections on raw `net` sockets.
 * Lean on purpose so the load generator is never the bottleneck:
 * - the upgrade handshake is written by hand, frames are parsed by header only;
 * - event frames are counted, never JSON-parsed: the `seq` and the publisher's `bench_t`
 *   stamp (µs of CLOCK_MONOTONIC, shared by every process on the host) are found by byte search;
 * - control frames (`ping`, `authenticated`, `subscribed`, `error`) are recognised by their
 *   `msg_type` prefix; only `error` frames are parsed.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { Hist, nowUs } from './lib/hist.js';
import type { ConnectResult, ConnectSpec, StatsResult, WorkerCommand, WorkerReply } from './lib/messages.js';

const MSG_TYPE_PREFIX = Buffer.from('{"msg_type":"');
const MARK_T = Buffer.from('"bench_t":');
const MARK_SEQ = Buffer.from('"seq":');
const MASK = Buffer.from([0x5a, 0x13, 0xc7, 0x2e]);
/** Shared by every socket of this thread: each read is fully consumed (or copied) before the next. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const enum State {
  Connecting,
  Handshake,
  Authenticating,
  Subscribing,
  Ready,
  Closed,
}

/** A masked client→server frame (RFC 6455 §5.3). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const hdrLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdrLen + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  MASK.copy(out, hdrLen);
  for (let i = 0; i < len; i++) out[hdrLen + 4 + i] = payload[i] ^ MASK[i & 3];
  return out;
}

const PONG_FRAME = clientFrame(1, Buffer.from('{"msg_type":"pong"}'));

class Client {
  state = State.Connecting;
  sock: net.Socket | null = null;
  rest: Buffer | null = null;
  lastSeq = -1;
  t0 = 0;
  events = 0;
  /** Slow consumers: bytes still allowed this second (read budget). */
  budget = 0;
  readBuffer: Buffer | null = null;
  constructor(
    readonly index: number,
    readonly token: string,
    readonly slow: boolean,
  ) {}
}

// ---- worker-wide counters -------------------------------------------------------------------
let events = 0;
let fastEvents = 0;
let bytes = 0;
let seqGaps = 0;
let seqDups = 0;
let pings = 0;
let reconnects = 0;
let latencyOn = false;
const latency = new Hist();
const closesFast: Record<string, number> = {};
const closesSlow: Record<string, number> = {};
const errors: Record<string, number> = {};
const clients = new Set<Client>();
let closingAll = false;

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

interface PendingSetup {
  resolve(ok: boolean, reason?: string): void;
}
const setupWaiters = new Map<Client, PendingSetup>();

let currentSpec: ConnectSpec | null = null;
const spec = (): ConnectSpec => currentSpec!;

// Slow consumers that read at a limited rate get a fresh budget every second.
setInterval(() => {
  const rate = currentSpec?.slowReadBytesPerSec ?? 0;
  if (rate <= 0) return;
  for (const c of clients) {
    if (!c.slow || c.state !== State.Ready || !c.sock) continue;
    c.budget = rate;
    if (c.sock.isPaused()) c.sock.resume();
  }
}, 1000).unref();

function openClient(c: Client, spec: ConnectSpec): void {
  c.state = State.Connecting;
  c.rest = null;
  c.lastSeq = -1;
  c.t0 = performance.now();
  const localAddress = spec.localAddresses.length ? spec.localAddresses[c.index % spec.localAddresses.length] : undefined;
  // `onread` with one shared buffer: no Buffer allocation and no stream machinery per read,
  // which is most of what a Node client costs per received chunk.
  const sock = net.connect({
    host: spec.host,
    port: spec.port,
    localAddress,
    onread: {
      // Slow consumers read through a small private buffer so their read budget is respected.
      buffer: c.slow && spec.slowReadBytesPerSec > 0 ? (c.readBuffer ??= Buffer.allocUnsafe(4096)) : READ_BUFFER,
      callback: (nread: number, buf: Uint8Array) => {
        onData(c, (buf as Buffer).subarray(0, nread));
        if (c.slow && c.state === State.Ready) {
          c.budget -= nread;
          if (c.budget <= 0) c.sock?.pause();
        }
        return true;
      },
    },
  });
  c.sock = sock;
  sock.setNoDelay(true);
  sock.on('connect', () => {
    c.state = State.Handshake;
    const key = randomBytes(16).toString('base64');
    sock.write(
      `GET ${spec.paths[c.index % spec.paths.length]} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  sock.on('error', (err: NodeJS.ErrnoException) => {
    finishSetup(c, false, err.code ?? 'socket_error');
  });
  sock.on('close', () => {
    const wasReady = c.state === State.Ready;
    c.state = State.Closed;
    c.sock = null;
    finishSetup(c, false, 'closed_during_setup');
    if (!closingAll && wasReady) {
      bump(c.slow ? closesSlow : closesFast, 'tcp_close');
    }
    if (!closingAll && c.slow && spec.slowReconnectMs > 0 && clients.has(c)) {
      setTimeout(() => {
        if (closingAll || !clients.has(c) || c.state !== State.Closed) return;
        reconnects++;
        openClient(c, spec);
      }, spec.slowReconnectMs).unref();
    } else if (!c.slow || spec.slowReconnectMs === 0) {
      // keep the entry so stats stay stable; it simply no longer counts as open
    }
  });
}

function finishSetup(c: Client, ok: boolean, reason?: string): void {
  const w = setupWaiters.get(c);
  if (!w) return;
  setupWaiters.delete(c);
  w.resolve(ok, reason);
}

function onData(c: Client, chunk: Buffer): void {
  bytes += chunk.length;
  let buf = c.rest ? Buffer.concat([c.rest, chunk]) : chunk;
  c.rest = null;
  let off = 0;
  if (c.state === State.Handshake) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      c.rest = Buffer.from(buf);
      return;
    }
    const statusLine = buf.toString('latin1', 0, Math.min(end, 64));
    if (!statusLine.startsWith('HTTP/1.1 101')) {
      bump(errors, `upgrade_${statusLine.slice(9, 12)}`);
      finishSetup(c, false, `upgrade_${statusLine.slice(9, 12)}`);
      c.sock?.destroy();
      return;
    }
    off = end + 4;
    if (spec().handshakeOnly) becomeReady(c);
    else {
      c.state = State.Authenticating;
      c.sock!.write(clientFrame(1, Buffer.from(JSON.stringify({ msg_type: 'authenticate', payload: { token: c.token } }))));
    }
  }
  const len = buf.length;
  let now = 0;
  while (len - off >= 2) {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let plen = b1 & 0x7f;
    let hdr = 2;
    if (plen === 126) {
      if (len - off < 4) break;
      plen = buf.readUInt16BE(off + 2);
      hdr = 4;
    } else if (plen === 127) {
      if (len - off < 10) break;
      plen = buf.readUInt32BE(off + 2) * 4294967296 + buf.readUInt32BE(off + 6);
      hdr = 10;
    }
    if (b1 & 0x80) hdr += 4; // servers never mask, but stay correct
    if (len - off < hdr + plen) break;
    const start = off + hdr;
    const end = start + plen;
    off = end;
    const opcode = b0 & 0x0f;
    if (opcode === 1) {
      // text frame: {"msg_type":"X...
      const c0 = buf[start + 13];
      if (plen > 14 && c0 >= 0x41 && c0 <= 0x5a && buf[start + 1] === 0x22 && buf[start + 2] === 0x6d) {
        // An event (event types are upper case, control messages lower case).
        events++;
        c.events++;
        const si = checkSeq ? buf.indexOf(MARK_SEQ, start) : -1;
        if (si >= 0 && si < end) {
          const seq = readInt(buf, si + MARK_SEQ.length, end);
          if (c.lastSeq >= 0) {
            if (seq <= c.lastSeq) seqDups++;
            else if (seq !== c.lastSeq + 1) seqGaps++;
          }
          c.lastSeq = seq;
        }
        if (!c.slow) {
          fastEvents++;
          if (latencyOn) {
            const ti = buf.indexOf(MARK_T, start);
            if (ti >= 0 && ti < end) {
              if (now === 0) now = nowUs();
              latency.record(now - readInt(buf, ti + MARK_T.length, end));
            }
          }
        }
      } else {
        onControl(c, buf, start, end);
      }
    } else if (opcode === 8) {
      const code = plen >= 2 ? buf.readUInt16BE(start) : 1005;
      bump(c.slow ? closesSlow : closesFast, String(code));
      finishSetup(c, false, `close_${code}`);
      c.state = State.Closed;
      c.sock?.end();
      c.sock?.destroy();
      return;
    } else if (opcode === 9) {
      c.sock?.write(clientFrame(0xa, Buffer.from(buf.subarray(start, end))));
    }
  }
  if (off < len) c.rest = Buffer.from(buf.subarray(off));
}

function readInt(buf: Buffer, i: number, end: number): number {
  let v = 0;
  while (i < end && buf[i] === 0x20) i++;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  return v;
}

function onControl(c: Client, buf: Buffer, start: number, end: number): void {
  let type = '';
  if (buf.compare(MSG_TYPE_PREFIX, 0, MSG_TYPE_PREFIX.length, start, start + MSG_TYPE_PREFIX.length) === 0) {
    const q = buf.indexOf(0x22, start + MSG_TYPE_PREFIX.length);
    if (q > 0 && q < end) type = buf.toString('latin1', start + MSG_TYPE_PREFIX.length, q);
  } else {
    try {
      type = String((JSON.parse(buf.toString('utf8', start, end)) as { msg_type?: unknown }).msg_type ?? '');
    } catch {
      type = 'unparseable';
    }
  }
  switch (type) {
    case 'ping':
      pings++;
      c.sock?.write(PONG_FRAME);
      return;
    case 'authenticated':
      if (c.state === State.Authenticating) {
        c.state = State.Subscribing;
        c.sock!.write(clientFrame(1, Buffer.from(JSON.stringify({ msg_type: 'subscribe', payload: { rooms: currentRooms } }))));
      }
      return;
    case 'subscribed':
      if (c.state === State.Subscribing) becomeReady(c);
      return;
    case 'error': {
      let code = 'error';
      try {
        code = String((JSON.parse(buf.toString('utf8', start, end)) as { payload?: { code?: unknown } }).payload?.code ?? 'error');
      } catch {
        /* keep generic */
      }
      bump(errors, code);
      if (c.state !== State.Ready) finishSetup(c, false, code);
      return;
    }
    default:
      // pong, unsubscribed, …: nothing to do
      return;
  }
}

let currentRooms: string[] = ['ALL'];
let checkSeq = true;

function becomeReady(c: Client): void {
  c.state = State.Ready;
  if (c.slow) {
    c.budget = spec().slowReadBytesPerSec;
    if (c.budget <= 0) c.sock?.pause();
  }
  finishSetup(c, true);
}

async function connect(spec: ConnectSpec): Promise<ConnectResult> {
  currentSpec = spec;
  currentRooms = spec.rooms;
  checkSeq = spec.checkSeq;
  closingAll = false;
  const t0 = performance.now();
  const setup = new Hist();
  const failures: Record<string, number> = {};
  let ready = 0;
  let failed = 0;
  let next = spec.start;
  let inflight = 0;
  const deadline = t0 + spec.timeoutMs;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const [cl, w] of setupWaiters) {
        setupWaiters.delete(cl);
        w.resolve(false, 'timeout');
      }
      next = spec.end;
      resolve();
    }, spec.timeoutMs);
    const pump = () => {
      while (inflight < spec.concurrency && next < spec.end && performance.now() < deadline) {
        const i = next++;
        const c = new Client(i, spec.tokens[i % spec.tokens.length], spec.slowEvery > 0 && i % spec.slowEvery === spec.slowEvery - 1);
        clients.add(c);
        inflight++;
        setupWaiters.set(c, {
          resolve: (ok, reason) => {
            inflight--;
            if (ok) {
              ready++;
              setup.record(Math.round((performance.now() - c.t0) * 1000));
            } else {
              failed++;
              bump(failures, reason ?? 'unknown');
              c.sock?.destroy();
            }
            if (ready + failed >= spec.end - spec.start) {
              clearTimeout(timer);
              resolve();
            } else pump();
          },
        });
        openClient(c, spec);
      }
    };
    if (spec.end <= spec.start) {
      clearTimeout(timer);
      resolve();
      return;
    }
    pump();
  });
  return { requested: spec.end - spec.start, ready, failed, elapsed_ms: performance.now() - t0, setup: setup.data(), failures };
}

function stats(resetLatency: boolean): StatsResult {
  let open = 0;
  let readyN = 0;
  let slowOpen = 0;
  for (const c of clients) {
    if (c.sock && c.state !== State.Closed) {
      open++;
      if (c.slow) slowOpen++;
    }
    if (c.state === State.Ready) readyN++;
  }
  const result: StatsResult = {
    events,
    fast_events: fastEvents,
    bytes,
    seq_gaps: seqGaps,
    seq_dups: seqDups,
    open,
    ready: readyN,
    slow_open: slowOpen,
    reconnects,
    closes_fast: { ...closesFast },
    closes_slow: { ...closesSlow },
    errors: { ...errors },
    pings,
    latency: latency.data(),
  };
  if (resetLatency) latency.reset();
  return result;
}

async function closeAll(): Promise<number> {
  closingAll = true;
  const n = clients.size;
  const closes: Promise<void>[] = [];
  for (const c of clients) {
    const s = c.sock;
    if (s && !s.destroyed) {
      closes.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
      // A close frame then FIN lets the server release the connection normally.
      try {
        s.resume();
        s.end(clientFrame(8, Buffer.from([0x03, 0xe8])));
      } catch {
        s.destroy();
      }
      setTimeout(() => s.destroy(), 2000).unref();
    }
  }
  await Promise.all(closes);
  clients.clear();
  events = fastEvents = bytes = seqGaps = seqDups = pings = reconnects = 0;
  for (const m of [closesFast, closesSlow, errors]) for (const k of Object.keys(m)) delete m[k];
  latency.reset();
  return n;
}

parentPort!.on('message', (msg: WorkerCommand) => {
  const reply = (result: unknown) => parentPort!.postMessage({ id: msg.id, result } satisfies WorkerReply);
  const fail = (err: unknown) => parentPort!.postMessage({ id: msg.id, error: String((err as Error)?.stack ?? err) } satisfies WorkerReply);
  try {
    switch (msg.cmd) {
      case 'connect':
        connect(msg.spec).then(reply, fail);
        return;
      case 'stats':
        reply(stats(msg.resetLatency === true));
        return;
      case 'latency':
        latencyOn = msg.on;
        latency.reset();
        reply(true);
        return;
      case 'closeAll':
        closeAll().then(reply, fail);
        return;
    }
  } catch (err) {
    fail(err);
  }
});

void currentSpec;
