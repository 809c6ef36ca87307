/**
 * Shared integration-test harness: starts a real `tpx serve` child process on loopback
 * (port 0), discovers the port from the pino `"msg":"listening"` log line, and offers
 * thin admin/publish API helpers.
 *
 *   const server = await startTestServer({ env: { TPX_PING_INTERVAL_MS: '300' } });
 *   const account = await createAccount(server);
 *   const key = await createKey(server, account.account_id);
 *   ...
 *   afterAll(() => stopAll());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const MAX_OUTPUT_CHARS = 2_000_000;

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse an existing data directory (otherwise a fresh mkdtemp dir is created). */
  dataDir?: string;
  /** Admin token to use (otherwise a random one). */
  adminToken?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TestServer {
  url: string;
  wsUrl: string;
  port: number;
  adminToken: string;
  dataDir: string;
  proc: ChildProcess;
  /** All stdout+stderr collected so far (across restarts). */
  output(): string;
  /** Parsed pino JSON lines from stdout (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>>;
  /** Send a signal (default SIGTERM) and wait for exit; SIGKILL after 15 s. */
  stop(signal?: NodeJS.Signals): Promise<ExitInfo>;
  kill9(): Promise<void>;
  /** Stop (SIGTERM) if running, then start again with the same data dir and token. */
  restart(extraEnv?: Record<string, string>): Promise<void>;
  /** Resolves once the current process has exited. */
  exited(): Promise<ExitInfo>;
}

const running = new Set<TestServer>();
const ownedDirs = new Set<string>();

interface Spawned {
  proc: ChildProcess;
  port: number;
  url: string;
  exit: Promise<ExitInfo>;
}

function spawnServer(env: Record<string, string>, append: (s: string) => void, getOutput: () => string): Promise<Spawned> {
  // TPX_TEST_SERVER_ENTRY (optional) replaces `src/cli/main.ts serve`, e.g. a built `bin/tpx.js serve`.
  const entry = process.env.TPX_TEST_SERVER_ENTRY ? process.env.TPX_TEST_SERVER_ENTRY.split(' ') : ['src/cli/main.ts', 'serve'];
  const proc = spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', ...entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exitInfo: ExitInfo | null = null;
  const exit = new Promise<ExitInfo>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    proc.once('error', (err) => {
      append(`\n[harness] spawn error: ${err.message}\n`);
      exitInfo = { code: null, signal: null };
      resolve(exitInfo);
    });
  });
  return new Promise<Spawned>((resolve, reject) => {
    let lineBuf = '';
    let done = false;
    const finish = (err: Error | null, value?: Spawned) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        if (exitInfo === null) proc.kill('SIGKILL');
        reject(err);
      } else resolve(value!);
    };
    const timer = setTimeout(() => {
      finish(new Error(`test server did not log "listening" within ${START_TIMEOUT_MS} ms. Output:\n${getOutput().slice(-20_000)}`));
    }, START_TIMEOUT_MS);
    proc.stdout!.setEncoding('utf8');
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => append(chunk));
    proc.stdout!.on('data', (chunk: string) => {
      append(chunk);
      if (done) return;
      lineBuf += chunk;
      let nl: number;
      while ((nl = lineBuf.indexOf('\n')) >= 0) {
        const line = lineBuf.slice(0, nl).trim();
        lineBuf = lineBuf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          if (rec.msg === 'listening') {
            let port = typeof rec.port === 'number' ? rec.port : Number(rec.port);
            if (!Number.isInteger(port) || port <= 0) {
              const m = typeof rec.url === 'string' ? /:(\d+)(?:\/|$)/.exec(rec.url) : null;
              port = m ? Number(m[1]) : NaN;
            }
            if (!Number.isInteger(port) || port <= 0) {
              finish(new Error(`"listening" log line without a usable port: ${line}`));
              return;
            }
            finish(null, { proc, port, url: `http://127.0.0.1:${port}`, exit });
            return;
          }
        } catch {
          /* not JSON */
        }
      }
    });
    void exit.then((info) => {
      finish(new Error(`test server exited before listening (code ${info.code}, signal ${info.signal}). Output:\n${getOutput().slice(-20_000)}`));
    });
  });
}

export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  let dataDir = opts.dataDir;
  if (!dataDir) {
    dataDir = mkdtempSync(path.join(tmpdir(), 'tpx-test-'));
    ownedDirs.add(dataDir);
  }
  const adminToken = opts.adminToken ?? `adm_${randomBytes(24).toString('hex')}`;
  const baseEnv: Record<string, string> = {
    TPX_HOST: '127.0.0.1',
    TPX_PORT: '0',
    TPX_DATA_DIR: dataDir,
    TPX_ADMIN_TOKEN: adminToken,
    TPX_WEBHOOK_ALLOW_PRIVATE: 'true',
    TPX_LOG_LEVEL: 'info',
    // Stopping a server with clients still connected spreads their closes over this window
    // (SPEC §5, default 5 s): short here so that suites do not wait on it; drain tests set their own.
    TPX_SHUTDOWN_DRAIN_MS: '250',
    ...(opts.env ?? {}),
  };
  // Never inherit a shared-store / bus configuration from the developer's shell.
  if (!opts.env?.TPX_DATABASE_URL) baseEnv.TPX_DATABASE_URL = '';
  if (!opts.env?.TPX_REDIS_URL) baseEnv.TPX_REDIS_URL = '';

  let out = '';
  const append = (s: string) => {
    out += s;
    if (out.length > MAX_OUTPUT_CHARS) out = out.slice(out.length - MAX_OUTPUT_CHARS);
  };
  const getOutput = () => out;

  let current = await spawnServer(baseEnv, append, getOutput);
  let currentEnv = baseEnv;

  const server: TestServer = {
    url: current.url,
    wsUrl: `ws://127.0.0.1:${current.port}/ws`,
    port: current.port,
    adminToken,
    dataDir,
    proc: current.proc,
    output: getOutput,
    logs() {
      const res: Array<Record<string, unknown>> = [];
      for (const line of out.split('\n')) {
        const t = line.trim();
        if (!t.startsWith('{')) continue;
        try {
          res.push(JSON.parse(t) as Record<string, unknown>);
        } catch {
          /* ignore */
        }
      }
      return res;
    },
    exited() {
      return current.exit;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const proc = current.proc;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        running.delete(server);
        return current.exit;
      }
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const info = await current.exit;
      clearTimeout(timer);
      running.delete(server);
      return info;
    },
    async kill9() {
      const proc = current.proc;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await current.exit;
      running.delete(server);
    },
    async restart(extraEnv?: Record<string, string>) {
      await server.stop('SIGTERM');
      currentEnv = { ...currentEnv, ...(extraEnv ?? {}) };
      append(`\n[harness] ---- restart ----\n`);
      current = await spawnServer(currentEnv, append, getOutput);
      server.proc = current.proc;
      server.port = current.port;
      server.url = current.url;
      server.wsUrl = `ws://127.0.0.1:${current.port}/ws`;
      running.add(server);
    },
  };
  running.add(server);
  return server;
}

/** Stop every server started by this worker (SIGTERM, then SIGKILL) and remove owned temp dirs. */
export async function stopAll(): Promise<void> {
  const servers = [...running];
  await Promise.all(
    servers.map(async (s) => {
      try {
        await s.stop('SIGTERM');
      } catch {
        await s.kill9().catch(() => undefined);
      }
    }),
  );
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
  ownedDirs.clear();
}

// Last-resort cleanup so a crashed test run never leaves servers behind.
process.once('exit', () => {
  for (const s of running) {
    try {
      s.proc.kill('SIGKILL');
    } catch {
      /* ignore */
    }
  }
});

// ---------------------------------------------------------------------------
// HTTP helpers

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

export interface ApiOptions {
  /** Bearer token; defaults to the server's admin token. `null` sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
  /** Send this raw string as the body instead of JSON.stringify(body). */
  rawBody?: string;
}

export async function api<T = any>(
  server: Pick<TestServer, 'url' | 'adminToken'>,
  method: string,
  urlPath: string,
  body?: unknown,
  opts: ApiOptions = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? server.adminToken : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (opts.rawBody !== undefined) payload = opts.rawBody;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(server.url + urlPath, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  } else parsed = undefined;
  return { status: res.status, body: parsed as T, headers: res.headers, text };
}

function expectStatus(res: ApiResponse, expected: number | number[], what: string): void {
  const ok = Array.isArray(expected) ? expected.includes(res.status) : res.status === expected;
  if (!ok) throw new Error(`${what}: expected HTTP ${JSON.stringify(expected)}, got ${res.status}: ${res.text.slice(0, 2000)}`);
}

export interface Account {
  account_id: string;
  name: string | null;
  partner_id: string | null;
  rooms: string[];
  created_at: string;
  [k: string]: unknown;
}

export interface ApiKey {
  key_id: string;
  token: string;
  status: string;
  expires_at: string | null;
  [k: string]: unknown;
}

export async function createAccount(server: TestServer, body: Record<string, unknown> = {}): Promise<Account> {
  const res = await api<Account>(server, 'POST', '/admin/accounts', body);
  expectStatus(res, 201, 'POST /admin/accounts');
  return res.body;
}

export async function createKey(server: TestServer, accountId: string, body: Record<string, unknown> = {}): Promise<ApiKey> {
  const res = await api<ApiKey>(server, 'POST', `/admin/accounts/${accountId}/api-keys`, body);
  expectStatus(res, 201, `POST /admin/accounts/${accountId}/api-keys`);
  return res.body;
}

/** Account + one active key in one call. */
export async function createAccountWithKey(
  server: TestServer,
  accountBody: Record<string, unknown> = {},
  keyBody: Record<string, unknown> = {},
): Promise<{ account: Account; key: ApiKey; accountId: string; token: string }> {
  const account = await createAccount(server, accountBody);
  const key = await createKey(server, account.account_id, keyBody);
  return { account, key, accountId: account.account_id, token: key.token };
}

export interface PublishResult {
  msg_id: string;
  recipients: number;
  [k: string]: unknown;
}

/** POST /v1/events; throws unless 202. Use `api()` directly to test error answers. */
export async function publish(server: TestServer, body: Record<string, unknown>): Promise<PublishResult> {
  const res = await api<PublishResult>(server, 'POST', '/v1/events', body);
  expectStatus(res, 202, 'POST /v1/events');
  return res.body;
}

/** POST /v1/events/batch; returns the raw response (status is checked to be 2xx). */
export async function publishBatch(server: TestServer, events: Array<Record<string, unknown>>): Promise<ApiResponse> {
  const res = await api(server, 'POST', '/v1/events/batch', { events });
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`POST /v1/events/batch: expected 2xx, got ${res.status}: ${res.text.slice(0, 2000)}`);
  }
  return res;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value or the timeout elapses (then throws with `what`). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = 'condition', intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Retention tests: wait until every event of the key's account published so far is pruned (the
 * HTTP read of the log reports a gap and no events). Pruning runs every max(1 s, retention/10).
 */
export async function waitUntilPruned(server: Pick<TestServer, 'url' | 'adminToken'>, token: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    async () => {
      const r = await api(server, 'GET', '/v1/events?after_seq=0', undefined, { headers: { 'x-api-key': token }, token: null });
      return r.body.gap && r.body.events.length === 0;
    },
    timeoutMs,
    'events pruned',
    200,
  );
}
