/** A scriptable in-memory WebSocket for state-machine tests (works under fake timers). */
import type { WebSocketFactory, WebSocketLike } from '../../../packages/client/src/transport.js';

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: Array<{ msg_type: string; payload?: any }> = [];
  closedWith: { code?: number; reason?: string } | undefined;
  terminated = false;
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }

  // --- driven by the test
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify({ sent_at: Date.now(), ...frame }) });
  }
  /** Server-side close (or network drop: 1006). */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** Full server handshake: open, authenticated, subscribed (with optional extra subscribed payload). */
  handshake(extra: Record<string, unknown> = {}): void {
    this.open();
    this.receive({ msg_type: 'authenticated', payload: { account_id: 'acc-1', auth_method: 'api_key' } });
    const sub = this.sent.find((m) => m.msg_type === 'subscribe');
    if (sub) this.receive({ msg_type: 'subscribed', payload: { rooms: sub.payload.rooms, ...extra } });
  }
  event(seq: number, type = 'BID_REQUEST', msgId = `m-${seq}`, payload: Record<string, unknown> = { conversation_id: `c-${seq}` }): void {
    this.receive({ msg_type: type, msg_id: msgId, seq, payload });
  }
}

export function fakeFactory(): { factory: WebSocketFactory; sockets: FakeSocket[]; last(): FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    factory: (url: string) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    last() {
      const s = sockets[sockets.length - 1];
      if (!s) throw new Error('no socket yet');
      return s;
    },
  };
}
