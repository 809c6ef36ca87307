/**
 * The live event stream of `tpx listen` and `tpx webhooks forward`, on the partner SDK
 * (`TpxClient`): the same reconnect, backoff, resume (`after_seq`, `last_seq`), gap reporting
 * and fatal-error rules partners get, instead of a second implementation. This module only maps
 * the client's lifecycle to status lines on stderr and to the command's exit code:
 *   0  stopped by Ctrl-C / SIGTERM
 *   1  the server refused the subscription (NO_VALID_ROOMS…) or the URL (HANDSHAKE_REJECTED)
 *   2  the server rejected the API key (4001, `AUTH_…`)
 */
import { TpxAuthError, TpxClient, TpxServerError, type TpxEvent } from '@tpx-realtime/client';
import type { Room } from '@tpx-realtime/protocol';

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

export interface LiveOptions {
  /** Server base URL (`http(s)://host:port`) or `/ws` URL. */
  url: string;
  token: string;
  rooms: Room[];
  afterSeq?: number;
  /** Status lines (connecting, subscribed, reconnecting, warnings, errors). */
  status(line: string, kind?: 'info' | 'warn' | 'error'): void;
  onOpen?(accountId: string): void;
  /** Awaited: the next event waits for it (in seq order, one at a time). */
  onEvent(event: TpxEvent): void | Promise<void>;
}

export interface LiveResult {
  code: number;
  /** The position to resume from with `--after-seq`. */
  lastSeq: number | undefined;
}

/** Server errors after which the stream cannot deliver anything: stop (exit 1). */
const SUBSCRIPTION_ERRORS = new Set(['INVALID_ROOM', 'NO_VALID_ROOMS']);

function describeClose(code: number | undefined, reason: string | undefined): string {
  if (code === undefined) return '';
  const text = reason || CLOSE_REASONS[code];
  return `${code}${text ? ` (${text})` : ''}`;
}

export async function runLive(opts: LiveOptions): Promise<LiveResult> {
  const client = new TpxClient({ url: opts.url, token: opts.token, rooms: opts.rooms, afterSeq: opts.afterSeq, dedup: false });
  let code = 0;
  let announced = false;
  client.on('connecting', (info) => {
    if (!announced) opts.status(`connecting to ${info.url} …`);
    announced = true;
  });
  client.on('open', (info) => {
    opts.onOpen?.(info.accountId);
    opts.status(`authenticated as account ${info.accountId}`);
    const resumed = info.resumedFrom !== undefined ? ` (resuming after seq ${info.resumedFrom})` : '';
    opts.status(`subscribed to ${info.rooms.join(', ')}${resumed}`);
  });
  client.on('reconnecting', (info) => {
    // NETWORK_ERROR: no connection at all ("cannot connect to …: connect ECONNREFUSED …"), said as it is.
    const why =
      info.closeCode !== undefined && info.closeCode !== 1006
        ? `connection closed ${describeClose(info.closeCode, info.closeReason)}`
        : info.error?.code === 'NETWORK_ERROR'
          ? info.error.message
          : `connection lost (${info.error?.message ?? 'network error'})`;
    opts.status(`${why}; reconnecting in ${(info.delayMs / 1000).toFixed(1)}s`, 'warn');
  });
  client.on('gap', (gap) => {
    opts.status(
      `warning: events ${gap.from_seq}..${gap.to_seq} were pruned before they could be delivered; reconcile them with GET /v1/events or your records`,
      'warn',
    );
  });
  client.on('error', (err) => {
    const extra = err instanceof TpxServerError && Array.isArray(err.details.rooms) ? ` (${(err.details.rooms as string[]).join(', ')})` : '';
    opts.status(`error ${err.code}: ${err.message}${extra}`, 'error');
    if (err instanceof TpxServerError && !err.fatal && SUBSCRIPTION_ERRORS.has(err.code)) {
      code = 1;
      void client.close();
    }
  });
  client.on('event', (event) => opts.onEvent(event));

  const closed = new Promise<void>((resolve) =>
    client.on('closed', (info) => {
      if (info.reason !== 'client') {
        code = info.error instanceof TpxAuthError ? 2 : 1;
        if (info.closeCode !== undefined) opts.status(`connection closed ${describeClose(info.closeCode, undefined)}: not reconnecting`, 'error');
      }
      resolve();
    }),
  );
  const stop = () => void client.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  void client.connect();
  await closed;
  await client.drain();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return { code, lastSeq: client.lastSeq };
}

/** The WebSocket frame of an event (what `--json` prints), from the SDK's event. */
export function frameOf(event: TpxEvent): { msg_type: string; msg_id: string; seq?: number; sent_at: number; payload: unknown } {
  return { msg_type: event.msg_type, msg_id: event.msg_id, seq: event.seq, sent_at: event.sent_at, payload: event.payload };
}
