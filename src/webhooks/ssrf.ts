/**
 * SSRF guard for webhook endpoints (SPEC §5 TPX_WEBHOOK_ALLOW_PRIVATE).
 *
 * Two checks, both needed:
 *  1. At endpoint creation/update: the URL is well-formed (http/https, no credentials, ≤ 2048
 *     chars) and every address its host resolves to is public (`checkWebhookUrl`).
 *  2. At send time: the socket connects only to an address that passed the check. The dispatcher
 *     gives undici a `lookup` hook (`guardedLookup`) that resolves, drops forbidden addresses and
 *     fails when none is left, so a DNS answer that changed since creation (DNS rebinding) cannot
 *     reach an internal address. IP-literal hosts never go through `lookup`, so they are checked
 *     directly (`assertLiteralAllowed`).
 *
 * Refused: unspecified 0/8, loopback, RFC 1918 private, CGNAT (100.64/10), link-local, IETF/
 * benchmark/documentation ranges, multicast, reserved and broadcast (240/4). IPv6 is allowed only
 * in global unicast 2000::/3, minus Teredo 2001::/32, the rest of the IETF block 2001::/23,
 * documentation 2001:db8::/32 and 3fff::/20, and 6to4 2002::/16 embedding a refused IPv4. Every
 * form of IPv4 inside IPv6 outside 2000::/3 is refused whatever the IPv4: mapped ::ffff:0:0/96
 * (also written ::ffff:7f00:1), translated ::ffff:0:0:0/96, compatible ::/96, NAT64 64:ff9b::/96
 * and 64:ff9b:1::/48. IPv4 literals in any spelling (decimal 2130706433, octal 0177.0.0.1, hex
 * 0x7f.1, short 127.1) reach this check already normalized by the WHATWG URL parser.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

export const MAX_WEBHOOK_URL_LENGTH = 2048;

export class UnsafeUrlError extends Error {
  readonly code = 'UNSAFE_WEBHOOK_URL';
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeUrlError';
  }
}

// ---------- address classification

type V4Range = [number, number, string]; // base (uint32), prefix length, label
const V4_RANGES: V4Range[] = [
  [ip4('0.0.0.0'), 8, 'unspecified'],
  [ip4('10.0.0.0'), 8, 'private'],
  [ip4('100.64.0.0'), 10, 'cgnat'],
  [ip4('127.0.0.0'), 8, 'loopback'],
  [ip4('169.254.0.0'), 16, 'link-local'],
  [ip4('172.16.0.0'), 12, 'private'],
  [ip4('192.0.0.0'), 24, 'ietf-reserved'],
  [ip4('192.0.2.0'), 24, 'documentation'],
  [ip4('192.88.99.0'), 24, 'relay-anycast'],
  [ip4('192.168.0.0'), 16, 'private'],
  [ip4('198.18.0.0'), 15, 'benchmark'],
  [ip4('198.51.100.0'), 24, 'documentation'],
  [ip4('203.0.113.0'), 24, 'documentation'],
  [ip4('224.0.0.0'), 4, 'multicast'],
  [ip4('240.0.0.0'), 4, 'reserved'],
];

function ip4(text: string): number {
  const p = text.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

function classifyV4(n: number): string | null {
  for (const [base, len, label] of V4_RANGES) {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if ((n & mask) >>> 0 === base) return label;
  }
  return null;
}

/** Parse an IPv6 text (with optional zone and embedded dotted quad) into 8 hextets. */
function parseV6(text: string): number[] | null {
  let s = text.replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    // Rewrite a trailing dotted quad as two hextets: ::ffff:1.2.3.4 → ::ffff:102:304
    if (isIP(maybeV4) !== 4) return null;
    const n = ip4(maybeV4);
    s = s.slice(0, lastColon + 1) + (n >>> 16).toString(16) + ':' + (n & 0xffff).toString(16);
  }
  const parts = s.split('::');
  if (parts.length > 2) return null;
  const head = parts[0] ? parts[0].split(':') : [];
  const rest = parts.length === 2 && parts[1] ? parts[1].split(':') : [];
  const toNum = (h: string) => (/^[0-9a-fA-F]{1,4}$/.test(h) ? parseInt(h, 16) : NaN);
  const headN = head.map(toNum);
  const restN = rest.map(toNum);
  let words: number[];
  if (parts.length === 2) {
    const fill = 8 - headN.length - restN.length;
    if (fill < 0) return null;
    words = [...headN, ...new Array<number>(fill).fill(0), ...restN];
  } else {
    words = headN;
  }
  if (words.length !== 8 || words.some((w) => !Number.isInteger(w))) return null;
  return words;
}

function classifyV6(w: number[]): string | null {
  const v4 = () => ((w[6] << 16) | w[7]) >>> 0;
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  if (zero(0, 8)) return 'unspecified';
  if (zero(0, 7) && w[7] === 1) return 'loopback';
  // IPv4 embedded in IPv6. Refused whatever the IPv4 address: the kernel (mapped) or a translator
  // on the path (NAT64, SIIT) turns them into IPv4 traffic we cannot vouch for, and no public
  // webhook endpoint needs them. The label names the embedded address's class when it has one.
  if (zero(0, 5) && w[5] === 0xffff) return embedded('ipv4-mapped', v4()); // ::ffff:0:0/96, any spelling
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return embedded('ipv4-translated', v4()); // ::ffff:0:0:0/96 (SIIT)
  if (zero(0, 6)) return 'ipv4-compatible'; // ::/96, deprecated ::a.b.c.d
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return embedded('nat64', v4()); // 64:ff9b::/96
  if (w[0] === 0x64 && w[1] === 0xff9b && w[2] === 1) return 'nat64-local'; // 64:ff9b:1::/48 (RFC 8215)
  if ((w[0] & 0xe000) !== 0x2000) {
    // Outside 2000::/3, the only range IANA allocates for global unicast.
    if (w[0] === 0x100 && zero(1, 4)) return 'discard';
    if ((w[0] & 0xfe00) === 0xfc00) return 'unique-local';
    if ((w[0] & 0xffc0) === 0xfe80) return 'link-local';
    if ((w[0] & 0xffc0) === 0xfec0) return 'site-local';
    if ((w[0] & 0xff00) === 0xff00) return 'multicast';
    return 'reserved';
  }
  if (w[0] === 0x2001 && w[1] === 0) return mapped(classifyV4(((~w[6] & 0xffff) << 16 | (~w[7] & 0xffff)) >>> 0)) ?? 'teredo'; // 2001::/32
  if (w[0] === 0x2001 && w[1] === 0xdb8) return 'documentation'; // 2001:db8::/32
  if (w[0] === 0x2001 && w[1] < 0x200) return 'ietf-protocol'; // 2001::/23: benchmarking 2001:2::/48, ORCHID, …
  if (w[0] === 0x3fff && w[1] < 0x1000) return 'documentation'; // 3fff::/20 (RFC 9637)
  if (w[0] === 0x2002) return mapped(classifyV4(((w[1] << 16) | w[2]) >>> 0)); // 6to4: judged by its IPv4
  return null;
}

function embedded(kind: string, v4: number): string {
  const label = classifyV4(v4);
  return label ? `ipv4-embedded ${label}` : kind;
}

function mapped(label: string | null): string | null {
  return label ? `ipv4-embedded ${label}` : null;
}

/**
 * Why an IP address must not be contacted (e.g. `loopback`, `private`), or null when it is a
 * public unicast address. Unparseable input is refused (`invalid`).
 */
export function forbiddenAddressReason(address: string): string | null {
  const a = address.replace(/^\[|\]$/g, '');
  const family = isIP(a.split('%')[0]);
  if (family === 4) return classifyV4(ip4(a));
  if (family === 6) {
    const w = parseV6(a);
    return w ? classifyV6(w) : 'invalid';
  }
  return 'invalid';
}

export function isForbiddenAddress(address: string): boolean {
  return forbiddenAddressReason(address) !== null;
}

// ---------- URL checks

/** Syntax checks only (no DNS). Returns the parsed URL or throws UnsafeUrlError. */
export function parseWebhookUrl(raw: string): URL {
  if (typeof raw !== 'string' || raw.length === 0) throw new UnsafeUrlError('URL is required');
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) throw new UnsafeUrlError(`URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('URL is not valid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UnsafeUrlError('URL scheme must be http or https');
  if (url.username || url.password) throw new UnsafeUrlError('URL must not contain credentials');
  if (!url.hostname) throw new UnsafeUrlError('URL has no host');
  return url;
}

/** The bare host of a URL (IPv6 brackets removed). */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

export type Resolver = (host: string) => Promise<string[]>;

const defaultResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve((addresses as LookupAddress[]).map((a) => a.address));
    });
  });

/**
 * Full check used when an endpoint is created or its URL changes: syntax, then (unless
 * allowPrivate) every resolved address must be public. Throws UnsafeUrlError.
 */
export async function checkWebhookUrl(raw: string, opts: { allowPrivate: boolean; resolve?: Resolver }): Promise<URL> {
  const url = parseWebhookUrl(raw);
  if (opts.allowPrivate) return url;
  const host = urlHost(url);
  if (isIP(host)) {
    assertLiteralAllowed(host);
    return url;
  }
  if (/^localhost\.?$|\.localhost\.?$/i.test(host)) throw new UnsafeUrlError(`host ${host} is loopback`);
  let addresses: string[];
  try {
    addresses = await (opts.resolve ?? defaultResolver)(host);
  } catch (err) {
    throw new UnsafeUrlError(`host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (addresses.length === 0) throw new UnsafeUrlError(`host ${host} does not resolve`);
  for (const a of addresses) {
    const reason = forbiddenAddressReason(a);
    if (reason) throw new UnsafeUrlError(`host ${host} resolves to a ${reason} address (${a})`);
  }
  return url;
}

export function assertLiteralAllowed(host: string): void {
  const reason = forbiddenAddressReason(host);
  if (reason) throw new UnsafeUrlError(`address ${host} is ${reason}`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `net.connect` lookup that only ever yields public addresses: pass as undici
 * `connect: { lookup: guardedLookup }`. Handles both the single-address and `all: true` forms.
 */
export function guardedLookup(hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void {
  const opts = typeof options === 'number' ? { family: options } : (options ?? {});
  dnsLookup(hostname, { family: opts.family ?? 0, all: true, verbatim: true } as { all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    const list = addresses as LookupAddress[];
    const allowed = list.filter((a) => !isForbiddenAddress(a.address));
    if (allowed.length === 0) {
      const first = list[0];
      const e = new UnsafeUrlError(
        `host ${hostname} resolves only to refused addresses${first ? ` (${first.address}: ${forbiddenAddressReason(first.address)})` : ''}`,
      ) as UnsafeUrlError & NodeJS.ErrnoException;
      return callback(e, '');
    }
    if (opts.all) return callback(null, allowed);
    callback(null, allowed[0].address, allowed[0].family);
  });
}
