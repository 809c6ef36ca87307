/** HTTP errors with the SPEC §3 body `{ error, code }`; thrown by routes, rendered by the app's error handler. */
import type { ErrorCode } from '@tpx-realtime/protocol';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | string,
    message: string,
    /** Extra fields merged into the body (e.g. `fields`, `account_ids`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toBody(): Record<string, unknown> {
    return { error: this.message, code: this.code, ...this.details };
  }
}

export const notFound = (what: string) => new HttpError(404, 'NOT_FOUND', `${what} not found`);
export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new HttpError(400, 'VALIDATION_FAILED', message, details);

/** A store's refusal as the HTTP answer: StoreConflictError 409 CONFLICT, StoreValidationError 400; anything else rethrown. */
export function mapStoreError(err: unknown): never {
  const name = (err as Error)?.name;
  if (name === 'StoreConflictError') throw new HttpError(409, 'CONFLICT', (err as Error).message);
  if (name === 'StoreValidationError') throw new HttpError(400, 'VALIDATION_FAILED', (err as Error).message);
  throw err;
}
