/**
 * One HTTP attempt: send the request, classify what came back, keep an excerpt of the answer.
 * Redirects are never followed (a 3xx is a failure naming its location); an IP-literal host is
 * checked against the SSRF guard here (hostnames are checked at connect time by the agent's
 * guarded lookup).
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { RESPONSE_EXCERPT_BYTES } from '../store/shared/deliveries.js';
import type { Reason } from './policy.js';
import type { WebhookRequest } from './request.js';
import { forbiddenAddressReason, urlHost } from './ssrf.js';

/** Bytes of a non-2xx response body kept in the attempt's error text. */
const ERROR_BODY_BYTES = 256;
/** Response bytes read to keep the connection reusable; beyond this it is closed instead. */
const DRAIN_LIMIT = 64 * 1024;

export interface AttemptResult {
  status: number | null;
  error: string | null;
  reason: Reason;
  retryAfter: string | undefined;
  latencyMs: number;
  /** The first ≤ 1 KiB of the response body, as text (null without a body). */
  excerpt: string | null;
}

export interface AttemptOptions {
  agent: Dispatcher;
  timeoutMs: number;
  /** TPX_WEBHOOK_ALLOW_PRIVATE: skip the address checks (development, tests). */
  allowPrivate: boolean;
}

export function classifyStatus(status: number): Reason {
  if (status >= 200 && status < 300) return '2xx';
  if (status >= 300 && status < 400) return '3xx';
  if (status === 410) return '410';
  if (status === 429) return '429';
  if (status === 503) return '503';
  return status < 500 ? '4xx' : '5xx';
}

export async function sendAttempt(req: WebhookRequest, opts: AttemptOptions): Promise<AttemptResult> {
  const started = performance.now();
  const done = (r: Omit<AttemptResult, 'latencyMs' | 'excerpt'> & { excerpt?: string | null }): AttemptResult => ({
    excerpt: null,
    ...r,
    latencyMs: performance.now() - started,
  });
  try {
    if (!opts.allowPrivate) {
      const host = urlHost(new URL(req.url));
      if (isIP(host)) {
        const why = forbiddenAddressReason(host);
        if (why) return done({ status: null, error: `refused: address ${host} is ${why} (SSRF guard)`, reason: 'unsafe_address', retryAfter: undefined });
      }
    }
    // The agent's own request(): what undici's top-level request(url, { dispatcher }) does after
    // splitting the URL, without loading undici in this module (the dispatcher loads it lazily).
    const url = new URL(req.url);
    const res = await opts.agent.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: 'POST',
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(opts.timeoutMs),
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    const status = res.statusCode;
    const ra = res.headers['retry-after'];
    const retryAfter = Array.isArray(ra) ? ra[0] : ra;
    const reason = classifyStatus(status);
    const excerpt = await readExcerpt(res.body);
    if (reason === '2xx') return done({ status, error: null, reason, retryAfter, excerpt });
    let error: string;
    if (reason === '3xx') {
      const loc = res.headers.location;
      error = `HTTP ${status}: redirect not followed${loc ? ` (location ${String(loc).slice(0, 200)})` : ''}`;
    } else {
      const snippet = excerpt === null ? '' : Buffer.from(excerpt, 'utf8').subarray(0, ERROR_BODY_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
      error = `HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
    }
    return done({ status, error, reason, retryAfter, excerpt });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code;
    const name = e.name;
    if (code === 'UNSAFE_WEBHOOK_URL' || e.cause?.code === 'UNSAFE_WEBHOOK_URL' || /SSRF|refused addresses/.test(e.message)) {
      return done({ status: null, error: `refused: ${e.message} (SSRF guard)`, reason: 'unsafe_address', retryAfter: undefined });
    }
    if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
      return done({ status: null, error: `timeout after ${opts.timeoutMs} ms`, reason: 'timeout', retryAfter: undefined });
    }
    return done({ status: null, error: `${code ?? name ?? 'Error'}: ${e.message}`.slice(0, 500), reason: 'network', retryAfter: undefined });
  }
}

/**
 * The first RESPONSE_EXCERPT_BYTES of the body as text (a partial character at the cut is
 * dropped). The rest is read and discarded up to DRAIN_LIMIT so the connection can be reused;
 * a larger body closes it instead.
 */
export async function readExcerpt(body: AsyncIterable<Buffer>): Promise<string | null> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  try {
    for await (const chunk of body) {
      if (keptBytes < RESPONSE_EXCERPT_BYTES) {
        const part = chunk.subarray(0, RESPONSE_EXCERPT_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      total += chunk.length;
      if (total > DRAIN_LIMIT) break;
    }
  } catch {
    /* a body that fails midway still has its excerpt */
  }
  if (keptBytes === 0) return null;
  // In stream mode the decoder holds back a character the cut split (instead of emitting U+FFFD).
  return new TextDecoder().decode(Buffer.concat(kept), { stream: total > keptBytes });
}
