/**
 * Frame encoding on the hot path. An event frame is serialized ONCE per (event, account) and
 * pre-framed as a complete unmasked WebSocket text frame: server→client frames are identical
 * bytes for every socket, so fan-out is one socket write of a shared Buffer per connection.
 */
import type { AccountEvent } from '../store/types.js';

/** The event frame JSON, with the payload spliced in as stored (never re-serialized). */
export function eventFrameJson(event: AccountEvent, sentAt: number): string {
  return (
    '{"msg_type":"' + event.msg_type +
    '","msg_id":"' + event.msg_id +
    '","seq":' + event.seq +
    ',"sent_at":' + sentAt +
    ',"payload":' + event.payload_json + '}'
  );
}

/**
 * A complete unmasked WebSocket text frame (RFC 6455 §5.2: FIN + opcode 1, then a 7-, 16- or
 * 64-bit payload length) ready to be written to any socket. One allocation, with the UTF-8
 * encoded straight into it: building it as data + header + concat (ws's Sender.frame) made
 * three Buffer-pool allocations per frame, and the external memory they churn was what
 * triggered a major GC every ~0.6 s at 100 events/s × 1,000 connections.
 */
export function preframe(json: string): Buffer {
  const length = Buffer.byteLength(json, 'utf8');
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN | text
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(json, headerLength, length, 'utf8');
  return frame;
}

export function controlFrame(msgType: string, payload: Record<string, unknown>): string {
  return JSON.stringify({ msg_type: msgType, sent_at: Date.now(), payload });
}

export function errorFrame(code: string, error: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ msg_type: 'error', sent_at: Date.now(), payload: { error, code, ...extra } });
}
