/** A raw RFC 6455 client on a TCP socket: frames written exactly as the test builds them. */
import net from 'node:net';

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

export function clientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const mask = Buffer.from([1, 2, 3, 4]);
  let head: Buffer;
  if (data.length < 126) head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length]);
  else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 127;
    head.writeUInt32BE(0, 2);
    head.writeUInt32BE(data.length, 6);
  }
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i % 4];
  return Buffer.concat([head, mask, masked]);
}

export const text = (obj: unknown) => clientFrame(1, typeof obj === 'string' ? obj : JSON.stringify(obj));

export class RawWs {
  frames: RawFrame[] = [];
  ended = false;
  closed = false;
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private constructor(readonly socket: net.Socket) {}

  static connect(wsUrl: string): Promise<RawWs> {
    const url = new URL(wsUrl);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(url.port), url.hostname);
      const c = new RawWs(s);
      s.on('error', () => undefined);
      s.on('end', () => (c.ended = true));
      s.on('close', () => (c.closed = true));
      s.on('data', (d: Buffer) => c.onData(d, resolve));
      s.once('connect', () =>
        s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
      );
      setTimeout(() => reject(new Error('no 101')), 5000).unref();
    });
  }

  private onData(d: Buffer, opened: (c: RawWs) => void): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.upgraded = true;
      this.buf = this.buf.subarray(end + 4);
      opened(this);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = this.buf.readUInt32BE(6);
        off = 10;
      }
      if (this.buf.length < off + len) return;
      this.frames.push({ opcode: this.buf[0] & 0x0f, payload: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
    }
  }

  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  json(): Array<{ msg_type: string; payload: Record<string, any> }> {
    return this.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString('utf8')));
  }

  closeFrame(): { code: number; reason: string } | undefined {
    const f = this.frames.find((x) => x.opcode === 8);
    if (!f) return undefined;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString('utf8') };
  }

  destroy(): void {
    this.socket.destroy();
  }
}
