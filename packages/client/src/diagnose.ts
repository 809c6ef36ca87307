/**
 * Why a connection attempt failed below HTTP, and whether trying again can help.
 *
 * Retrying is right when the network or the server is briefly away (refused, reset, timed out).
 * A TLS mistake is answered the same way on every attempt: the wrong scheme for the port
 * (`http://` against a TLS server, `https://` against a plain one), a certificate this runtime
 * does not trust, a name the certificate does not cover, no TLS version in common. Retrying those
 * in silence hides the mistake (issue 11 "fails loudly"), so `tlsMistake` turns them into one
 * fatal error whose message says what to change. An expired (or not yet valid) certificate is the
 * server operator's to fix and fixes itself once they renew it: loud, but retried.
 *
 * What the platform reports: Node's `ws` and `fetch` give the OpenSSL/Node error code (in
 * `error.cause` for fetch). A server that speaks TLS answers a plain request by closing the
 * connection (a "socket hang up"): `probeSpeaksTls` then tries one TLS handshake to tell that
 * apart from a flaky network. The WHATWG WebSocket (browsers, Node ≥ 22) reports nothing; in Node
 * the client's handshake probe (endpoint.ts) brings back the error of a plain `node:https` request.
 */
import { TpxConnectionError } from './errors.js';

/** The errors behind `err`: itself, its `cause`s, an event's `error`, an AggregateError's `errors`. */
export function causeChain(err: unknown): Array<{ code?: string; message: string }> {
  const chain: Array<{ code?: string; message: string }> = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number) => {
    if (value === undefined || value === null || depth > 6 || seen.has(value)) return;
    seen.add(value);
    if (typeof value === 'string') {
      chain.push({ message: value });
      return;
    }
    if (typeof value !== 'object') return;
    const v = value as { code?: unknown; message?: unknown; cause?: unknown; error?: unknown; errors?: unknown };
    const message = typeof v.message === 'string' ? v.message : '';
    const code = typeof v.code === 'string' ? v.code : undefined;
    if (message || code) chain.push(code === undefined ? { message } : { code, message });
    visit(v.cause, depth + 1);
    visit(v.error, depth + 1);
    if (Array.isArray(v.errors)) for (const e of v.errors) visit(e, depth + 1);
  };
  visit(err, 0);
  return chain;
}

/**
 * The most telling description of a failure: the deepest message, with its code when the message
 * does not already show it ("fetch failed" says less than "connect ECONNREFUSED 127.0.0.1:8080").
 */
export function describeCause(err: unknown): string | undefined {
  const chain = causeChain(err).filter((c) => c.message || c.code);
  const last = chain.at(-1);
  if (!last) return undefined;
  const message = last.message.split('\n')[0]!.trim();
  if (!last.code || message.includes(last.code)) return message || last.code;
  return message ? `${message} (${last.code})` : last.code;
}

/** Failures where no server answered at all: a probe would learn nothing. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export function isUnreachable(err: unknown): boolean {
  return causeChain(err).some((c) => c.code !== undefined && UNREACHABLE.has(c.code));
}

/** Nothing listens on that port (yet): a server that is down or restarting, or the wrong port. */
export function isRefused(err: unknown): boolean {
  return causeChain(err).some((c) => c.code === 'ECONNREFUSED');
}

/** The peer closed the connection without an answer: what a TLS server does to a plain request. */
export function isHangUp(err: unknown): boolean {
  return causeChain(err).some(
    (c) => c.code === 'ECONNRESET' || c.code === 'UND_ERR_SOCKET' || c.code === 'EPIPE' || /socket hang up|other side closed/i.test(c.message),
  );
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
]);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const WRONG_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);

/** `ws://h/ws` → `wss://h/ws`, `http://h/x` → `https://h/x` (and back with `toTls = false`). */
function withScheme(url: string, toTls: boolean): string {
  const u = new URL(url);
  const map: Record<string, string> = toTls ? { 'ws:': 'wss:', 'http:': 'https:' } : { 'wss:': 'ws:', 'https:': 'http:' };
  u.protocol = map[u.protocol] ?? u.protocol;
  return u.toString();
}

export function isTlsUrl(url: string): boolean {
  const p = new URL(url).protocol;
  return p === 'wss:' || p === 'https:';
}

/** The hint for a plain URL whose port speaks TLS (found by `probeSpeaksTls`). */
export function tlsRequired(url: string): TpxConnectionError {
  return new TpxConnectionError(
    'TLS_REQUIRED',
    `${url} closed the connection without an answer and speaks TLS on that port: use ${withScheme(url, true)} (https:// or wss://, not http:// or ws://)`,
    { fatal: true },
  );
}

/**
 * The TLS mistake `err` shows, as an error with a hint: fatal unless the certificate is merely
 * out of its validity period. `undefined` when `err` is not a TLS failure.
 */
export function tlsMistake(url: string, err: unknown): TpxConnectionError | undefined {
  const chain = causeChain(err);
  if (chain.length === 0) return undefined;
  const host = new URL(url).host;
  const found = (test: (c: { code?: string; message: string }) => boolean) => chain.find(test);
  const detail = (c: { code?: string; message: string }) => `${c.code ?? 'TLS'}: ${c.message.split('\n')[0]!.trim()}`;

  const untrusted = found((c) => c.code !== undefined && UNTRUSTED.has(c.code));
  if (untrusted) {
    return new TpxConnectionError(
      'TLS_CERT_UNTRUSTED',
      `the TLS certificate of ${host} is not trusted by this runtime (${detail(untrusted)}): if the server uses a private CA or a ` +
        'self-signed certificate, start Node with NODE_EXTRA_CA_CERTS=/path/to/ca.pem (browsers: trust that CA in the system store); ' +
        'if it should be publicly trusted, the server may be missing an intermediate certificate in TPX_TLS_CERT',
      { fatal: true, cause: err },
    );
  }
  const wrongName = found((c) => c.code !== undefined && WRONG_NAME.has(c.code));
  if (wrongName) {
    return new TpxConnectionError(
      'TLS_CERT_NAME_MISMATCH',
      `the TLS certificate of ${host} is not valid for that name (${detail(wrongName)}): connect with a host name the certificate lists`,
      { fatal: true, cause: err },
    );
  }
  const outOfDate = found((c) => c.code !== undefined && OUT_OF_DATE.has(c.code));
  if (outOfDate) {
    return new TpxConnectionError(
      'TLS_CERT_EXPIRED',
      `the TLS certificate of ${host} is outside its validity period (${detail(outOfDate)}): the server's operator must renew it ` +
        '(retrying meanwhile; also check this machine’s clock)',
      { cause: err },
    );
  }
  const notTls = found((c) => c.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || c.code === 'ERR_SSL_HTTP_REQUEST' || /wrong version number|SSL routines.*http request/i.test(c.message));
  if (notTls && isTlsUrl(url)) {
    return new TpxConnectionError(
      'TLS_NOT_SPOKEN',
      `${host} does not speak TLS on that port (${detail(notTls)}): use ${withScheme(url, false)} (http:// or ws://) for a plain server, or the port that serves TLS`,
      { fatal: true, cause: err },
    );
  }
  const handshake = found((c) => (c.code !== undefined && (c.code.startsWith('ERR_SSL_') || c.code === 'EPROTO')) || /SSL routines|alert protocol version/i.test(c.message));
  if (handshake) {
    return new TpxConnectionError(
      'TLS_HANDSHAKE_FAILED',
      `the TLS handshake with ${host} failed (${detail(handshake)}): no TLS version or cipher in common, or the server wants a client certificate`,
      { fatal: true, cause: err },
    );
  }
  return undefined;
}

/** The part of `node:tls` the probe uses (structural: the SDK needs no @types/node). */
interface NodeTlsLike {
  connect(options: { host: string; port: number; servername?: string; rejectUnauthorized: boolean }): {
    once(event: 'secureConnect', listener: () => void): unknown;
    once(event: 'error', listener: (err: unknown) => void): unknown;
    destroy(): void;
  };
}

/**
 * Node only: does `url`'s port complete a TLS handshake? (Certificate not checked: the question is
 * only which protocol the port speaks.) False on any failure, off Node, or after `timeoutMs`.
 */
export async function probeSpeaksTls(url: string, timeoutMs = 3_000): Promise<boolean> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) return false;
  let tls: NodeTlsLike;
  try {
    const specifier = 'node:tls'; // variable and ignored: browser bundlers never include it
    tls = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as NodeTlsLike;
  } catch {
    return false;
  }
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (u.protocol === 'ws:' || u.protocol === 'http:' ? 80 : 443));
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(isIp ? {} : { servername: host }) });
    const done = (speaksTls: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(speaksTls);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}
