/**
 * Frame encoding on the hot path. An event frame is serialized ONCE per (event, account) and
 * pre-framed as a complete unmasked WebSocket text frame: server→client frames are identical
 * bytes for every socket, so fan-out is one socket write of a shared Buffer per connection.
 */
import * as ws from 'ws';
import type { AccountEvent } from '../store/types.js';

// `Sender.frame` is ws's public static frame builder (named export of its ESM entry).
const Sender = (ws as unknown as { Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] } }).Sender;
if (typeof Sender?.frame !== 'function') throw new Error('ws.Sender.frame is unavailable: incompatible ws version');

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

/** A complete WebSocket text frame (header + payload) ready to be written to any socket. */
export function preframe(json: string): Buffer {
  const data = Buffer.from(json, 'utf8');
  const parts = Sender.frame(data, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

export function controlFrame(msgType: string, payload: Record<string, unknown>): string {
  return JSON.stringify({ msg_type: msgType, sent_at: Date.now(), payload });
}

export function errorFrame(code: string, error: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ msg_type: 'error', sent_at: Date.now(), payload: { error, code, ...extra } });
}
