/**
 * A small model of the server side of SPEC §2.5/§2.8 for one account, on real sockets (`ws`):
 * `subscribed` carries `last_seq` (and `resumed_from`/`gap` when resuming), a replay sends every
 * stored event after `after_seq` that matches the rooms, then live events follow; pruned ranges
 * are announced in `subscribed.gap` or, when pruned while a replay runs, by a `gap` frame at
 * that point of the stream. Used to test the SDK against the protocol where the real server
 * cannot (yet) be driven into the state a test needs.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface StoredEvent {
  msg_type: string;
  msg_id: string;
  seq: number;
  payload: Record<string, unknown>;
}

interface Conn {
  ws: WebSocket;
  rooms: Set<string>;
  live: boolean;
}

export interface SpecServerOptions {
  /** Called during a replay before sending the event with this seq; return a range to announce as a `gap` frame instead. */
  pruneDuringReplay?: (seq: number) => { from_seq: number; to_seq: number } | undefined;
}

export class SpecServer {
  readonly log: StoredEvent[] = [];
  /** Seqs ≤ this were pruned. */
  prunedThrough = 0;
  readonly subscribes: Array<{ rooms: string[]; after_seq?: number }> = [];
  connections = 0;
  private readonly conns = new Set<Conn>();

  private constructor(
    readonly wss: WebSocketServer,
    readonly url: string,
    private readonly options: SpecServerOptions,
  ) {
    wss.on('connection', (ws) => this.onConnection(ws));
  }

  static async start(options: SpecServerOptions = {}): Promise<SpecServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    return new SpecServer(wss, `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, options);
  }

  get lastSeq(): number {
    return this.log.length ? this.log[this.log.length - 1]!.seq : 0;
  }

  /** Append an event to the account's stream and send it to every live connection subscribed to it. */
  publish(msgType = 'PAYMENT_CHARGED'): StoredEvent {
    const seq = this.lastSeq + 1;
    const ev: StoredEvent = { msg_type: msgType, msg_id: `m-${seq}`, seq, payload: { conversation_id: `c-${seq}`, payment_id: `p-${seq}`, amount_cents: seq } };
    this.log.push(ev);
    for (const c of this.conns) if (c.live && matches(c.rooms, ev)) send(c.ws, { ...ev });
    return ev;
  }

  /** Cut every connection without a closing handshake (1006 on the client). */
  dropAll(): void {
    for (const c of this.conns) c.ws.terminate();
  }

  closeAll(code: number, reason = ''): void {
    for (const c of this.conns) c.ws.close(code, reason);
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private onConnection(ws: WebSocket): void {
    this.connections++;
    const conn: Conn = { ws, rooms: new Set(), live: false };
    this.conns.add(conn);
    ws.on('close', () => this.conns.delete(conn));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { msg_type: string; payload?: { token?: string; rooms?: string[]; after_seq?: number } };
      if (msg.msg_type === 'ping') return send(ws, { msg_type: 'pong', payload: {} });
      if (msg.msg_type === 'authenticate') {
        if (msg.payload?.token === 'tp_live_bad') {
          send(ws, { msg_type: 'error', payload: { error: 'Invalid API key', code: 'AUTH_INVALID_API_KEY' } });
          ws.close(4001, 'auth');
          return;
        }
        return send(ws, { msg_type: 'authenticated', payload: { account_id: 'acc-1', auth_method: 'api_key' } });
      }
      if (msg.msg_type === 'subscribe') this.onSubscribe(conn, msg.payload!.rooms!, msg.payload!.after_seq);
    });
  }

  private onSubscribe(conn: Conn, rooms: string[], afterSeq: number | undefined): void {
    this.subscribes.push({ rooms, ...(afterSeq === undefined ? {} : { after_seq: afterSeq }) });
    for (const r of rooms) conn.rooms.add(r);
    const payload: Record<string, unknown> = { rooms, last_seq: this.lastSeq };
    if (afterSeq !== undefined) {
      payload.resumed_from = afterSeq;
      if (this.prunedThrough > afterSeq) payload.gap = { from_seq: afterSeq + 1, to_seq: this.prunedThrough };
    }
    send(conn.ws, { msg_type: 'subscribed', payload });
    if (afterSeq !== undefined) {
      let skipUntil = 0;
      for (const ev of this.log) {
        if (ev.seq <= afterSeq || ev.seq <= this.prunedThrough || ev.seq <= skipUntil) continue;
        const pruned = this.options.pruneDuringReplay?.(ev.seq);
        if (pruned) {
          send(conn.ws, { msg_type: 'gap', payload: pruned });
          skipUntil = pruned.to_seq;
          if (ev.seq <= skipUntil) continue;
        }
        if (matches(conn.rooms, ev)) send(conn.ws, { ...ev });
      }
    }
    conn.live = true;
  }
}

function matches(rooms: Set<string>, ev: StoredEvent): boolean {
  return rooms.has('ALL') || rooms.has(ev.msg_type);
}

function send(ws: WebSocket, frame: Record<string, unknown>): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ ...frame, sent_at: Date.now() }));
}
