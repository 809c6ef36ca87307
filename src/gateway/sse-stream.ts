/**
 * One Server-Sent Events stream (SPEC §2.10), driven through the same seam as a WebSocket: a
 * Connection over an SseTransport, authenticated and subscribed by the shared Session (so the
 * replay, sequencer, isolation, revocation, outbound limit and shutdown are the WebSocket's own).
 * The request carries what a WebSocket client sends as messages: the key, the rooms and the
 * resume point (Last-Event-ID or after_seq).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode } from '@tpx-realtime/protocol';
import type { Logger } from '../observability/logger.js';
import type { Gateway } from './gateway.js';
import { SseTransport } from './sse-transport.js';

export interface StreamRequest {
  token: string;
  rooms: readonly string[];
  /** Resume after this seq (§2.8); undefined: live from the account's current position. */
  afterSeq: number | undefined;
}

export interface StreamOptions {
  maxOutboundBytes: number;
  /** Added to every answer (CORS). */
  headers: Record<string, string>;
  logger: Logger;
}

/**
 * Serve the stream until it is authenticated and subscribed (or refused); the response then
 * lives on in the hub like any connection, and `Gateway.closed` runs when it ends.
 */
export async function serveEventStream(gateway: Gateway, res: ServerResponse, request: StreamRequest, opts: StreamOptions): Promise<void> {
  if (!(await ownSocket(res))) return;
  const transport = new SseTransport(res, opts.maxOutboundBytes, opts.headers);
  const conn = gateway.open(transport);
  res.once('close', () => {
    gateway.closed(conn);
    opts.logger.debug({ conn: conn.id, account_id: conn.accountId, transport: 'sse' }, 'connection closed');
  });
  if ((res.socket as Socket | null)?.destroyed ?? true) {
    gateway.closed(conn);
    return;
  }
  try {
    await gateway.session.authenticate(conn, request.token);
    if (conn.isLive) await gateway.session.subscribe(conn, request.rooms, request.afterSeq);
  } catch (err) {
    opts.logger.error({ err, conn: conn.id }, 'event stream failed');
    if (!conn.isClosing) conn.close(1011, 'internal error');
  }
  // A refused subscribe (INVALID_ROOM, NO_VALID_ROOMS) leaves a WebSocket open for another try; a
  // stream has nothing else to wait for: answer the held error (400) instead.
  if (transport.pending && !conn.isClosing) conn.close(CloseCode.NORMAL, 'subscription refused');
}

/**
 * The response's socket, once it is this response's own: a request pipelined behind another on
 * the same connection gets it only when the previous response finished. False if it closed first.
 */
function ownSocket(res: ServerResponse): Promise<boolean> {
  const socket = res.socket as (Socket & { _httpMessage?: unknown }) | null;
  if (socket && socket._httpMessage === res) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off('socket', onSocket);
      res.off('close', onClose);
      resolve(ok);
    };
    const onSocket = () => done(true);
    const onClose = () => done(false);
    res.on('socket', onSocket);
    res.on('close', onClose);
  });
}
