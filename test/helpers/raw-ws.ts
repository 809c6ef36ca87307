/**
 * Raw RFC 6455 client pieces for adversarial tests (review3, review4): an upgrade over a plain `net`
 * socket, masked client frames built byte by byte, and a parser of the server's (unmasked)
 * frames. Loopback only.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A masked client frame. `rsv` sets the RSV bits (0-7), `lengthBytes` forces a length encoding. */
export function clientFrame(opcode: number, payload: Buffer | string, opts: { fin?: boolean; rsv?: number; mask?: Buffer } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? randomBytes(4);
  const n = data.length;
  const b0 = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  let header: Buffer;
  if (n < 126) header = Buffer.from([b0, 0x80 | n]);
  else if (n < 65536) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = 0x80 | 127;
    header.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    header.writeUInt32BE(n >>> 0, 6);
  }
  const masked = Buffer.from(data);
  for (let i = 0; i < n; i++) masked[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, masked]);
}

export function upgradeRequest(port: number, path = '/ws', extra: string[] = []): string {
  const key = randomBytes(16).toString('base64');
  return [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...extra, '', ''].join('\r\n');
}

/** A raw socket: the HTTP answer's head, then the server's frames as they arrive. */
export class RawClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  head: string | null = null;
  readonly frames: ServerFrame[] = [];
  ended = false;
  closed = false;
  error: Error | null = null;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  static connect(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen ?? false });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connect and complete the handshake (optionally with frames pipelined behind the request). */
  static async open(port: number, path = '/ws', extra: string[] = [], pipelined?: Buffer): Promise<RawClient> {
    const c = await RawClient.connect(port);
    c.socket.write(pipelined ? Buffer.concat([Buffer.from(upgradeRequest(port, path, extra)), pipelined]) : upgradeRequest(port, path, extra));
    await c.until(() => c.head !== null, 5000, 'the HTTP answer');
    if (!c.head!.startsWith('HTTP/1.1 101')) throw new Error(`handshake refused: ${c.head}`);
    return c;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendText(text: string): void {
    this.send(clientFrame(0x1, text));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.head === null) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.buf.subarray(0, end + 4).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      if (!this.head.startsWith('HTTP/1.1 101')) {
        this.wake();
        return;
      }
    }
    for (;;) {
      if (this.buf.length < 2) break;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = this.buf.readUInt32BE(2) * 2 ** 32 + this.buf.readUInt32BE(6);
        off = 10;
      }
      if (this.buf.length < off + len) break;
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: Buffer.from(this.buf.subarray(off, off + len)) });
      this.buf = this.buf.subarray(off + len);
    }
    this.wake();
  }

  texts(): Array<Record<string, any>> {
    return this.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString('utf8')) as Record<string, any>);
  }

  closeFrame(): { code: number | null; reason: string } | null {
    const f = this.frames.find((x) => x.opcode === 8);
    if (!f) return null;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString('utf8') };
  }

  /** Wait (bounded) until `cond` holds, re-checked on every socket event. */
  async until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.map((f) => ({ op: f.opcode, p: f.payload.toString('utf8').slice(0, 200) })))}, head: ${this.head}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
