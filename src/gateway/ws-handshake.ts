/**
 * The WebSocket opening handshake (RFC 6455 §4.2), server side, with the checks and answers of
 * the `ws` library this replaces (see ws-reader.ts for why): GET only (405), `Upgrade: websocket`,
 * a `Sec-WebSocket-Key` of 16 base64-encoded bytes, version 13 (or 8) and a well-formed
 * `Sec-WebSocket-Protocol` list (400 otherwise). The first offered subprotocol is selected, as
 * `ws` did without a `handleProtocols` option; no extension is negotiated (frames are pre-built
 * and shared by every socket, so permessage-deflate is off).
 *
 * The 101 response is one Buffer, built without the header array joins of `ws`: one write.
 */
import { createHash } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** RFC 7230 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESPONSE_HEAD = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ';

export type HandshakeResult =
  | { ok: true; response: Buffer }
  | { ok: false; status: number; message: string; headers?: Record<string, string> };

/** Check an upgrade request and build the 101 response, or say why it is refused. */
export function answerUpgrade(req: IncomingMessage): HandshakeResult {
  if (req.method !== 'GET') return { ok: false, status: 405, message: 'Invalid HTTP method' };
  const headers = req.headers;
  const upgrade = headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return { ok: false, status: 400, message: 'Invalid Upgrade header' };
  const key = headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return { ok: false, status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' };
  const version = Number(headers['sec-websocket-version']);
  if (version !== 13 && version !== 8) {
    return { ok: false, status: 400, message: 'Missing or invalid Sec-WebSocket-Version header', headers: { 'Sec-WebSocket-Version': '13, 8' } };
  }
  let protocol: string | null = null;
  const offered = headers['sec-websocket-protocol'];
  if (offered !== undefined) {
    protocol = firstSubprotocol(offered);
    if (protocol === null) return { ok: false, status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
  }
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  const text = RESPONSE_HEAD + accept + (protocol ? `\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n` : '\r\n\r\n');
  return { ok: true, response: Buffer.from(text, 'latin1') };
}

/** The first of a comma-separated list of distinct tokens; null when the list is malformed. */
function firstSubprotocol(list: string): string | null {
  const seen = new Set<string>();
  for (const part of list.split(',')) {
    const name = part.trim();
    if (!TOKEN.test(name) || seen.has(name)) return null;
    seen.add(name);
  }
  return seen.values().next().value ?? null;
}

/** Refuse an upgrade with an HTTP error and close the socket once the answer is written. */
export function refuseUpgrade(socket: Duplex, status: number, message = STATUS_CODES[status] ?? '', extra: Record<string, string> = {}): void {
  const headers: Record<string, string | number> = { Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(message), ...extra };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n\r\n${message}`);
}
