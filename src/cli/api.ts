/**
 * Small fetch client for the publish and admin APIs (SPEC §3). Any non-2xx answer becomes a
 * CliError with a one-line message built from the `{ error, code }` body (plus the failing
 * fields or unknown ids when the server lists them); connection failures name the URL.
 */
import { CliError } from './errors.js';
import { tpx } from './invocation.js';

export interface ApiErrorBody {
  error?: string;
  code?: string;
  [k: string]: unknown;
}

export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message, 1);
    this.name = 'ApiError';
  }
}

function describeDetails(body: ApiErrorBody): string {
  const parts: string[] = [];
  const fields = body.fields ?? body.errors;
  if (Array.isArray(fields) && fields.length > 0) {
    const list = fields
      .slice(0, 8)
      .map((f) => {
        if (typeof f === 'string') return f;
        if (f && typeof f === 'object') {
          const o = f as Record<string, unknown>;
          const p = o.path ?? o.field ?? o.name;
          const m = o.message ?? o.error;
          return [p, m].filter((x) => x !== undefined && x !== '').join(': ');
        }
        return String(f);
      })
      .filter(Boolean);
    if (list.length) parts.push(list.join('; ') + (fields.length > 8 ? `; … (${fields.length - 8} more)` : ''));
  }
  for (const key of ['account_ids', 'rooms', 'ids']) {
    const v = body[key];
    if (Array.isArray(v) && v.length > 0) parts.push(`${key}: ${v.join(', ')}`);
  }
  return parts.length ? ` (${parts.join('; ')})` : '';
}

export function formatApiError(status: number, body: unknown, text: string): string {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as ApiErrorBody;
    if (typeof b.error === 'string' || typeof b.code === 'string') {
      const code = b.code ? `${b.code}: ` : '';
      return `${code}${b.error ?? 'request failed'}${describeDetails(b)} [HTTP ${status}]`;
    }
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | null,
  ) {}

  async request<T = unknown>(method: string, path: string, body?: unknown, query?: Record<string, string | undefined>): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: payload });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(`cannot reach the server at ${this.baseUrl} (${why}); is \`${tpx()} serve\` running? Use --url or TPX_URL.`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const b = parsed as ApiErrorBody | undefined;
      throw new ApiError(res.status, typeof b === 'object' && b ? b.code : undefined, formatApiError(res.status, parsed, text));
    }
    return parsed as T;
  }

  get<T = unknown>(path: string, query?: Record<string, string | undefined>): Promise<T> {
    return this.request<T>('GET', path, undefined, query);
  }
  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }
  patch<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  delete<T = unknown>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }
}
