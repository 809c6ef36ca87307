/**
 * TLS on the one port (SPEC §5): `TPX_TLS_CERT` (PEM chain, leaf first) and `TPX_TLS_KEY`.
 *
 * - Start-up: both files are read and checked (parsable certificate, not expired, key matching
 *   it, key file not readable by other users); any problem stops the server with a message naming
 *   the variable and the file.
 * - SIGHUP: both files are read again and checked the same way, then installed with
 *   `server.setSecureContext()`. Only handshakes that start afterwards use them: open
 *   connections (HTTP keep-alive, WebSockets) keep their session and are never dropped. A file
 *   that fails a check leaves the current certificate in place and the reason is logged.
 * - Plain HTTP sent to the TLS port fails the handshake (the socket is closed without an HTTP
 *   answer) and is counted in `tpx_tls_handshake_errors_total`. See docs/deployment.md.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Facts about the leaf certificate, for logs and metrics. */
  subject: string;
  notAfter: Date;
  fingerprint256: string;
}

/** Why a certificate/key pair cannot be used; the message names the variable and the file. */
export class TlsMaterialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsMaterialError';
  }
}

/**
 * Mode bits a private key file may have beyond the owner's: group read (PostgreSQL's rule for a
 * root-owned key: Debian's `ssl-cert` group, Kubernetes secrets mounted with an `fsGroup` and
 * `defaultMode: 0440`). Anything else (world-readable, group-writable) is refused.
 */
const KEY_MODE_ALLOWED = 0o640;

/** Refuse a key file other users of the machine can read (or change), as PostgreSQL and OpenSSH do. */
async function checkKeyMode(keyFile: string): Promise<void> {
  if (process.platform === 'win32') return; // no POSIX modes
  let mode: number;
  try {
    mode = (await stat(keyFile)).mode & 0o777;
  } catch (err) {
    throw new TlsMaterialError(`TPX_TLS_KEY (${keyFile}) cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & ~KEY_MODE_ALLOWED) === 0) return;
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  const who = mode & 0o007 ? 'readable by every user of the machine' : 'writable by its group';
  throw new TlsMaterialError(
    `TPX_TLS_KEY (${keyFile}) has mode ${octal}: the private key is ${who}. Restrict it with \`chmod 600 ${keyFile}\` ` +
      '(or 640 with a group the server runs in; in Kubernetes, mount the secret with defaultMode 0440 and an fsGroup)',
  );
}

/** Read and check a certificate chain and its key. Throws TlsMaterialError with a precise reason. */
export async function loadTlsMaterial(files: TlsFiles, now = Date.now()): Promise<TlsMaterial> {
  const read = async (file: string, variable: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new TlsMaterialError(`${variable} (${file}) cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const [cert, key] = await Promise.all([read(files.certFile, 'TPX_TLS_CERT'), read(files.keyFile, 'TPX_TLS_KEY')]);
  await checkKeyMode(files.keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsMaterialError(`TPX_TLS_CERT (${files.certFile}) holds no PEM certificate: ${(err as Error).message}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsMaterialError(`TPX_TLS_KEY (${files.keyFile}) holds no usable PEM private key (an encrypted key is not supported): ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`TPX_TLS_KEY (${files.keyFile}) does not match the certificate in TPX_TLS_CERT (${files.certFile})`);
  }
  try {
    // What the server will do with them: also checks the rest of the chain parses.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new TlsMaterialError(`TPX_TLS_CERT/TPX_TLS_KEY refused by OpenSSL: ${(err as Error).message}`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now) {
    // Never installed, at start as on SIGHUP: every client would refuse it anyway, and a start
    // that fails names the file to renew instead of a server nobody can connect to.
    throw new TlsMaterialError(`TPX_TLS_CERT (${files.certFile}) expired at ${notAfter.toISOString()}: renew it`);
  }
  return { cert, key, subject: leaf.subject.replace(/\n/g, ', '), notAfter, fingerprint256: leaf.fingerprint256 };
}

const describe = (m: TlsMaterial) => ({ subject: m.subject, not_after: m.notAfter.toISOString(), fingerprint256: m.fingerprint256 });

/**
 * Owns the live certificate of one HTTPS server: reload on demand (SIGHUP), one reload at a
 * time, metrics for expiry and reload outcomes.
 */
export class TlsReloader {
  private current: TlsMaterial;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly notAfter: Gauge;
  private readonly reloads: Counter<'result'>;

  constructor(
    private readonly files: TlsFiles,
    initial: TlsMaterial,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.current = initial;
    this.notAfter = new Gauge({
      name: 'tpx_tls_certificate_not_after_seconds',
      help: 'Expiry of the served TLS certificate (unix seconds)',
      registers: [registry],
    });
    this.reloads = new Counter({ name: 'tpx_tls_reloads_total', help: 'Certificate reloads (SIGHUP) by result (ok|error)', labelNames: ['result'], registers: [registry] });
    this.notAfter.set(initial.notAfter.getTime() / 1000);
    this.warnIfExpiring(initial);
  }

  /** Watch one server: count and close failed handshakes (plain HTTP, wrong protocol, bad client). */
  attach(server: Server, registry: Registry): void {
    const handshakeErrors = new Counter({ name: 'tpx_tls_handshake_errors_total', help: 'TLS handshakes that failed (plain HTTP on the TLS port, protocol or cipher mismatch)', registers: [registry] });
    server.on('tlsClientError', (err, socket) => {
      handshakeErrors.inc();
      this.logger.debug({ err: err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
      socket.destroy();
    });
  }

  get material(): TlsMaterial {
    return this.current;
  }

  /**
   * Read the files again and install them on `server` when they pass the checks; otherwise keep
   * the current certificate and log why. Resolves true when the new certificate is in use.
   */
  reload(server: Server): Promise<boolean> {
    const run = async () => {
      let next: TlsMaterial;
      try {
        next = await loadTlsMaterial(this.files);
        server.setSecureContext({ cert: next.cert, key: next.key });
      } catch (err) {
        this.reloads.inc({ result: 'error' });
        this.logger.error(
          { reason: (err as Error).message, kept: describe(this.current) },
          'TLS reload failed: keeping the current certificate',
        );
        return false;
      }
      this.current = next;
      this.notAfter.set(next.notAfter.getTime() / 1000);
      this.reloads.inc({ result: 'ok' });
      this.logger.info(describe(next), 'TLS certificate reloaded');
      this.warnIfExpiring(next);
      return true;
    };
    const result = this.queue.then(run, run);
    this.queue = result;
    return result;
  }

  private warnIfExpiring(m: TlsMaterial): void {
    const days = (m.notAfter.getTime() - Date.now()) / 86_400_000;
    if (days < 14) this.logger.warn({ ...describe(m), days_left: Math.floor(days) }, days <= 0 ? 'TLS certificate has expired' : 'TLS certificate expires soon');
  }
}
