/** How a failed key lookup is reported, the same on the WebSocket, `GET /v1/events` and the SSE stream. */
import { ErrorCode } from '@tpx-realtime/protocol';
import type { KeyLookup } from '../store/types.js';

type Reason = Extract<KeyLookup, { ok: false }>['reason'];

const FAILURES: Record<Reason, { code: ErrorCode; message: string }> = {
  invalid: { code: ErrorCode.AUTH_INVALID_API_KEY, message: 'Invalid API key' },
  inactive: { code: ErrorCode.AUTH_API_KEY_INACTIVE, message: 'API key is inactive' },
  expired: { code: ErrorCode.AUTH_API_KEY_EXPIRED, message: 'API key has expired' },
};

export function authFailure(reason: Reason): { code: ErrorCode; message: string } {
  return FAILURES[reason];
}

/**
 * HTTP status of an `AUTH_…` code (docs/decisions.md): 401 when the credential itself is not
 * valid (missing, unknown, malformed, past its expiry: RFC 6750 `invalid_token`), 403 when it is a
 * known key an operator deactivated (the server knows who asks and refuses). Undefined for other codes.
 */
export function authStatus(code: string): number | undefined {
  switch (code) {
    case ErrorCode.AUTH_INVALID_API_KEY:
    case ErrorCode.AUTH_API_KEY_EXPIRED:
      return 401;
    case ErrorCode.AUTH_API_KEY_INACTIVE:
      return 403;
    default:
      return undefined;
  }
}
