/**
 * Typed errors of the SDK. Every error carries a string `code`: the server's code for
 * errors the server reported (SPEC §2.7), an SDK code otherwise.
 */
import type { EventFrameLike } from './types.js';

export type TpxErrorKind = 'server' | 'auth' | 'connection' | 'protocol' | 'handler' | 'webhook';

export class TpxError extends Error {
  readonly kind: TpxErrorKind;
  readonly code: string;
  /** True when the client stopped because of this error (no further reconnects). */
  readonly fatal: boolean;
  constructor(kind: TpxErrorKind, code: string, message: string, options: { fatal?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TpxError';
    this.kind = kind;
    this.code = code;
    this.fatal = options.fatal ?? false;
  }
}

/** An `error` frame from the server (e.g. `INVALID_ROOM`, `NO_VALID_ROOMS`, `RATE_LIMITED`). */
export class TpxServerError extends TpxError {
  /** The frame's whole payload (extra fields such as `rooms` included). */
  readonly details: Record<string, unknown>;
  constructor(code: string, message: string, details: Record<string, unknown> = {}, fatal = false, kind: TpxErrorKind = 'server') {
    super(kind, code, message, { fatal });
    this.name = 'TpxServerError';
    this.details = details;
  }
}

/**
 * Authentication failed or the key was deactivated/revoked/expired: the server closed with
 * 4001. Fatal: the client does not retry (a new key is needed). `code` is the server's
 * `AUTH_…` code when it sent one, else `AUTH_FAILED`.
 */
export class TpxAuthError extends TpxServerError {
  readonly closeCode: number | undefined;
  constructor(code: string, message: string, details: Record<string, unknown> = {}, closeCode?: number) {
    super(code, message, details, true, 'auth');
    this.name = 'TpxAuthError';
    this.closeCode = closeCode;
  }
}

/**
 * The connection dropped or could not be established (retried unless `fatal`). Fatal codes:
 * `HANDSHAKE_REJECTED` (the upgrade was answered with a 3xx/4xx status, in `httpStatus`: wrong
 * URL, or a proxy refusing WebSockets), `NOT_AN_EVENT_STREAM` (SSE: a 2xx page instead of a
 * stream), `TLS_*` (a TLS mistake: see the message's hint), `NO_WEBSOCKET` (no WebSocket
 * implementation in this runtime), `MAX_ATTEMPTS`.
 */
export class TpxConnectionError extends TpxError {
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  /** HTTP status the server answered the upgrade with, when known. */
  readonly httpStatus: number | undefined;
  constructor(
    code: string,
    message: string,
    options: { closeCode?: number; closeReason?: string; fatal?: boolean; cause?: unknown; httpStatus?: number } = {},
  ) {
    super('connection', code, message, options);
    this.name = 'TpxConnectionError';
    this.closeCode = options.closeCode;
    this.closeReason = options.closeReason;
    this.httpStatus = options.httpStatus;
  }
}

/** The server sent something the SDK cannot understand (the frame is skipped). */
export class TpxProtocolError extends TpxError {
  constructor(message: string, cause?: unknown) {
    super('protocol', 'PROTOCOL_ERROR', message, { cause });
    this.name = 'TpxProtocolError';
  }
}

/** An application handler threw or rejected while processing `event`. */
export class TpxHandlerError extends TpxError {
  readonly event: EventFrameLike;
  constructor(event: EventFrameLike, cause: unknown) {
    super('handler', 'HANDLER_FAILED', `handler for ${event.msg_type} ${event.msg_id} failed: ${describe(cause)}`, { cause });
    this.name = 'TpxHandlerError';
    this.event = event;
  }
}

/** Webhook request rejected: bad signature, stale timestamp, malformed body. */
export class WebhookVerificationError extends TpxError {
  constructor(code: 'WEBHOOK_MISSING_HEADERS' | 'WEBHOOK_BAD_SIGNATURE' | 'WEBHOOK_BAD_TIMESTAMP' | 'WEBHOOK_BAD_BODY', message: string) {
    super('webhook', code, message);
    this.name = 'WebhookVerificationError';
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
