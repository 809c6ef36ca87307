/** How a failed key lookup is reported, the same on the WebSocket and on `GET /v1/events`. */
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
