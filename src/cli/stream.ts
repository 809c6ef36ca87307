/**
 * A reconnecting WebSocket event stream for `tpx listen` and `tpx webhooks forward`:
 * authenticate → subscribe (with `after_seq` of the last event seen, so a reconnect neither
 * loses nor repeats events) → events; answers the server's pings; reconnects with exponential
 * backoff and jitter on retryable closes; stops for good on 4001 (exit code 2) or on a
 * subscription error (exit code 1).
 */
import WebSocket from 'ws';
import { FATAL_CLOSE_CODES, isEventType } from '@tpx-realtime/protocol';

export interface EventFrame {
  msg_type: string;
  msg_id: string;
  seq: number;
  sent_at?: number;
  payload: Record<string, unknown>;
  [k: string]: unknown;
}

export interface ErrorFrame {
  error: string;
  code: string;
  [k: string]: unknown;
}

export interface StreamOptions {
  wsUrl: string;
  token: string;
  rooms: string[];
  afterSeq?: number;
  onEvent(frame: EventFrame): void;
  /** Human status lines (connected, subscribed, reconnecting …). */
  onStatus(message: string): void;
  onError(err: ErrorFrame): void;
  onAuthenticated?(accountId: string): void;
  /** Backoff bounds (ms). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface StreamHandle {
  /** Resolves with the exit code the command should use. */
  done: Promise<number>;
  stop(): void;
  lastSeq(): number | undefined;
}

const CLOSE_REASONS: Record<number, string> = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1006: 'connection lost',
  1008: 'policy violation (rate limited)',
  1009: 'frame too large',
  4001: 'authentication failed or key revoked',
  4002: 'authentication timeout',
  4003: 'keepalive timeout',
  4009: 'slow consumer',
};

export function openStream(opts: StreamOptions): StreamHandle {
  const minBackoff = opts.minBackoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  let lastSeq: number | undefined = opts.afterSeq;
  let attempt = 0;
  let stopped = false;
  let ws: WebSocket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let fatalCode: number | null = null;

  const finish = (code: number) => {
    if (stopped) return;
    stopped = true;
    if (timer) clearTimeout(timer);
    resolveDone(code);
  };

  const send = (obj: unknown) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  };

  const connect = () => {
    if (stopped) return;
    const sock = new WebSocket(opts.wsUrl, { handshakeTimeout: 10_000 });
    ws = sock;
    sock.on('open', () => {
      send({ msg_type: 'authenticate', payload: { token: opts.token } });
    });
    sock.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        opts.onStatus('ignored a frame that is not JSON');
        return;
      }
      const type = frame.msg_type;
      const payload = (frame.payload ?? {}) as Record<string, unknown>;
      switch (type) {
        case 'ping':
          send({ msg_type: 'pong' });
          return;
        case 'pong':
          return;
        case 'authenticated': {
          attempt = 0;
          opts.onAuthenticated?.(String(payload.account_id));
          const sub: Record<string, unknown> = { rooms: opts.rooms };
          if (lastSeq !== undefined) sub.after_seq = lastSeq;
          send({ msg_type: 'subscribe', payload: sub });
          return;
        }
        case 'subscribed': {
          const rooms = Array.isArray(payload.rooms) ? payload.rooms.join(', ') : '';
          const resumed = payload.resumed_from !== undefined ? ` (resuming after seq ${payload.resumed_from})` : '';
          opts.onStatus(`subscribed to ${rooms}${resumed}`);
          const gap = payload.gap as { from_seq?: number; to_seq?: number } | undefined;
          if (gap) opts.onStatus(`warning: events ${gap.from_seq}..${gap.to_seq} were pruned before they could be replayed`);
          return;
        }
        case 'unsubscribed':
          return;
        case 'error': {
          const err = { ...payload, error: String(payload.error ?? 'error'), code: String(payload.code ?? 'UNKNOWN') } as ErrorFrame;
          opts.onError(err);
          if (err.code === 'INVALID_ROOM' || err.code === 'NO_VALID_ROOMS') {
            fatalCode = 1;
            sock.close(1000);
          }
          return;
        }
        default:
          if (isEventType(type) && typeof frame.seq === 'number') {
            const ev = frame as unknown as EventFrame;
            if (lastSeq !== undefined && ev.seq <= lastSeq) return; // replay overlap: already seen
            lastSeq = ev.seq;
            opts.onEvent(ev);
          }
      }
    });
    sock.on('error', (err) => {
      // 'close' follows; only report here.
      const code = (err as NodeJS.ErrnoException).code;
      opts.onStatus(`connection error: ${code ?? err.message}`);
    });
    sock.on('close', (code, reasonBuf) => {
      ws = null;
      if (stopped) return;
      const reason = reasonBuf.toString() || CLOSE_REASONS[code] || '';
      if (fatalCode !== null) return finish(fatalCode);
      if (FATAL_CLOSE_CODES.has(code)) {
        opts.onStatus(`connection closed ${code}${reason ? ` (${reason})` : ''}: not reconnecting`);
        return finish(2);
      }
      const delay = Math.min(maxBackoff, minBackoff * 2 ** attempt) * (0.5 + Math.random() * 0.5);
      attempt++;
      opts.onStatus(`connection closed ${code}${reason ? ` (${reason})` : ''}; reconnecting in ${(delay / 1000).toFixed(1)}s`);
      timer = setTimeout(connect, delay);
    });
  };

  connect();
  return {
    done,
    lastSeq: () => lastSeq,
    stop() {
      if (stopped) return;
      const s = ws;
      finish(0);
      if (s) s.close(1000);
    },
  };
}
