/**
 * Where the client connects, and why a connection attempt failed before the WebSocket opened.
 *
 * - `normalizeEndpoint` accepts the server's base URL (`http(s)://host:port`, `ws(s)://host:port`)
 *   as well as the `/ws` URL, so the URL the CLI uses (`TPX_URL=http://…`) works in the SDK too.
 * - An upgrade the server answered with a 3xx or 4xx status (404: no WebSocket endpoint there;
 *   401/403: a proxy refuses; 301: use the final URL) will be answered the same way next time:
 *   retrying it forever would hide the mistake. `handshakeRejection` turns it into one fatal
 *   error with a hint. 408, 429 and every 5xx (e.g. 503 while a node drains) stay retryable.
 * - `ws` (Node < 22) reports the status in its error message. The WHATWG WebSocket of browsers
 *   and Node ≥ 22 hides it; in Node, `probeUpgradeStatus` then asks the server itself with one
 *   plain upgrade request over `node:http(s)`. Browsers cannot find out and keep retrying.
 */
import { TpxConnectionError } from './errors.js';

/** `http://h:p` → `ws://h:p/ws`; `https://h:p/` → `wss://h:p/ws`; `…/ws/` → `…/ws`; any other `ws(s)://…/path` is kept. Throws TypeError. */
export function normalizeEndpoint(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new TypeError(`TpxClient: invalid url "${input}" (expected e.g. https://realtime.example.com or wss://realtime.example.com/ws)`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new TypeError(`TpxClient: url must use ws://, wss://, http:// or https:// (got "${input}")`);
  }
  // `…/ws/` (copied from a browser or a proxy config) is the same endpoint as `…/ws`: the server
  // routes `/ws` only and would answer the slash with a 404.
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '') url.pathname = '/ws';
  else if (path.endsWith('/ws')) url.pathname = path;
  url.hash = '';
  return url.toString();
}

/** The SSE stream path (SPEC §2.10). */
export const STREAM_PATH = '/v1/events/stream';

/**
 * The SSE stream URL: `http(s)://h:p` → `http(s)://h:p/v1/events/stream`; a WebSocket URL is
 * mapped (`ws` → `http`, a final `/ws` → the stream path, keeping a proxy's prefix); any other
 * path is kept (a proxy's own route). Throws TypeError.
 */
export function normalizeStreamEndpoint(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new TypeError(`TpxClient: invalid url "${input}" (expected e.g. https://realtime.example.com)`);
  }
  if (url.protocol === 'ws:') url.protocol = 'http:';
  else if (url.protocol === 'wss:') url.protocol = 'https:';
  else if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`TpxClient: url must use http://, https://, ws:// or wss:// (got "${input}")`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '') url.pathname = STREAM_PATH;
  else if (path.endsWith('/ws')) url.pathname = path.slice(0, -3) + STREAM_PATH;
  url.hash = '';
  url.search = '';
  return url.toString();
}

/** The fatal error for an SSE request answered `status` without an error code of ours. */
export function streamRejection(url: string, status: number): TpxConnectionError {
  let message: string;
  if (status === 404 || status === 410) {
    message = `no event stream at ${url} (HTTP ${status}): is this a tpx-realtime server, and does the proxy in front of it forward ${STREAM_PATH}?`;
  } else if (status >= 300 && status < 400) {
    message = `the event stream at ${url} was redirected (HTTP ${status}): use the final URL (e.g. https:// instead of http://)`;
  } else {
    message = `the event stream at ${url} was refused (HTTP ${status})${status === 401 || status === 403 || status === 407 ? ': a proxy in front of tpx-realtime wants credentials' : ''}`;
  }
  return new TpxConnectionError('HANDSHAKE_REJECTED', message, { fatal: true, httpStatus: status });
}

/** The fatal error for an SSE request answered 2xx with something other than an event stream. */
export function notAStream(url: string, status: number, contentType: string): TpxConnectionError {
  return new TpxConnectionError(
    'NOT_AN_EVENT_STREAM',
    `${url} answered HTTP ${status} with ${contentType ? `"${contentType.split(';')[0]}"` : 'no content type'}, not an event stream ` +
      `(text/event-stream): give the tpx-realtime server's base URL (e.g. https://realtime.example.com), not a page of it`,
    { fatal: true, httpStatus: status },
  );
}

/** The `/ws` URL the user probably meant, when `url` is not already one. */
export function suggestedEndpoint(url: string): string | undefined {
  const u = new URL(url);
  if (u.pathname.replace(/\/+$/, '').endsWith('/ws')) return undefined;
  u.pathname = '/ws';
  u.search = '';
  return u.toString();
}

/** Statuses after which another attempt would get the same answer. */
export function isFatalHandshakeStatus(status: number): boolean {
  if (status >= 300 && status < 400) return true;
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/** The fatal error for an upgrade answered with `status`, with a hint on what to change. */
export function handshakeRejection(url: string, status: number): TpxConnectionError {
  let message: string;
  if (status === 404 || status === 410) {
    const suggestion = suggestedEndpoint(url);
    message = suggestion
      ? `no WebSocket endpoint at ${url} (HTTP ${status}); did you mean ${suggestion}?`
      : `no WebSocket endpoint at ${url} (HTTP ${status}): is this a tpx-realtime server, and does the proxy in front of it forward WebSocket upgrades?`;
  } else if (status === 401 || status === 403 || status === 407) {
    message =
      `the WebSocket upgrade at ${url} was refused (HTTP ${status}) before it reached tpx-realtime, which authenticates ` +
      'with the API key inside the connection: a proxy or firewall in front of it blocks WebSockets or wants credentials';
  } else if (status >= 300 && status < 400) {
    message = `the WebSocket upgrade at ${url} was redirected (HTTP ${status}): use the final URL (e.g. wss:// instead of ws://)`;
  } else {
    message = `the WebSocket upgrade at ${url} was refused (HTTP ${status})`;
  }
  return new TpxConnectionError('HANDSHAKE_REJECTED', message, { fatal: true, httpStatus: status });
}

/** The HTTP status `ws` puts in its handshake error ("Unexpected server response: 404"). */
export function statusFromSocketError(err: unknown): number | undefined {
  const text = err instanceof Error ? err.message : typeof err === 'string' ? err : undefined;
  const m = text ? /Unexpected server response: (\d{3})/.exec(text) : null;
  return m ? Number(m[1]) : undefined;
}

/** The part of `node:http` / `node:https` the probe uses (structural: the SDK needs no @types/node). */
interface NodeHttpLike {
  request(
    options: { protocol: string; hostname: string; port: string | number; path: string; method: string; headers: Record<string, string> },
    onResponse: (res: { statusCode?: number; resume(): void }) => void,
  ): {
    on(event: 'upgrade', listener: (res: unknown, socket: { destroy(): void }) => void): unknown;
    on(event: 'error', listener: (err: unknown) => void): unknown;
    end(): void;
    destroy(): void;
  };
}

/** What the handshake probe learnt: the status the server answered, or why the request failed. */
export interface UpgradeProbe {
  status?: number;
  error?: unknown;
}

/**
 * Node only: send the upgrade request our WebSocket sent, read the status the server answers.
 * 101 (the server accepts upgrades now) gives `{}`: retry as usual. A request that failed gives
 * its error (a TLS mistake shows there when the WebSocket itself reported nothing).
 */
export async function probeUpgradeStatus(url: string, timeoutMs = 5_000): Promise<UpgradeProbe> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) return {};
  const u = new URL(url);
  const secure = u.protocol === 'wss:';
  let mod: NodeHttpLike;
  try {
    // A variable specifier, marked ignored, so browser bundlers never try to include node:http.
    const specifier = secure ? 'node:https' : 'node:http';
    mod = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as NodeHttpLike;
  } catch {
    return {};
  }
  const key = btoa(String.fromCharCode(...globalThis.crypto.getRandomValues(new Uint8Array(16))));
  return new Promise<UpgradeProbe>((resolve) => {
    let settled = false;
    const done = (result: UpgradeProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = mod.request(
      {
        protocol: secure ? 'https:' : 'http:',
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port || (secure ? 443 : 80),
        path: u.pathname + u.search,
        method: 'GET',
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': key,
        },
      },
      (res) => {
        res.resume();
        done(res.statusCode === undefined ? {} : { status: res.statusCode });
      },
    );
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      done({});
    });
    req.on('error', (error) => done({ error }));
    const timer = setTimeout(() => done({}), timeoutMs);
    req.end();
  });
}
