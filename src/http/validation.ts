/** Turns zod issues into the `fields` list of a 400 body (one entry per failing field). */
import type { z } from 'zod';
import { HttpError } from './errors.js';

export function fieldsOf(error: z.ZodError, prefix = ''): { field: string; message: string }[] {
  return error.issues.map((issue) => ({
    field: prefix + (issue.path.length ? issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : (i ? '.' : '') + String(p))).join('') : 'body'),
    message: issue.message,
  }));
}

export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const fields = fieldsOf(result.error);
    throw new HttpError(400, 'VALIDATION_FAILED', `Invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
  }
  return result.data;
}
