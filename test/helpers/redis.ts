/**
 * A private, throw-away redis-server for tests (loopback only, no persistence).
 *
 *   const redis = await startRedis();      // { url: 'redis://127.0.0.1:PORT', port, ... }
 *   await redis.down();  ...  await redis.up();   // outage, comes back EMPTY on the same port
 *   await redis.restart();                        // down + up
 *   redis.pause(); ... redis.resume();            // SIGSTOP / SIGCONT: hung, connections open
 *   afterAll(() => redis.stop());
 *
 * `--save '' --appendonly no` means a restarted server holds nothing: exactly the "Redis restarted
 * empty" case SPEC §7 requires the system to survive. An `exit` hook kills whatever a crashed
 * test left behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, sleep, track, untrack, type LiveServer } from './child-servers.js';

const START_TIMEOUT_MS = 15_000;

export interface TestRedis {
  url: string;
  port: number;
  /** Kill the server (SIGKILL: an abrupt outage). */
  down(): Promise<void>;
  /** Start it again, empty, on the same port. */
  up(): Promise<void>;
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its TCP connections still open (a stalled dependency). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  stop(): Promise<void>;
}


function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpx-redis-'));
  const port = await freePort();
  let out = '';
  let current: LiveServer | null = null;

  const up = async (): Promise<void> => {
    if (current) return;
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-100_000)));
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-100_000)));
    current = { proc, dir };
    track(current);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        untrack(current);
        current = null;
        throw new Error(`redis-server exited during start-up (code ${proc.exitCode}):\n${out}`);
      }
      if (await pingOnce(port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${START_TIMEOUT_MS} ms:\n${out}`);
      await sleep(50);
    }
  };

  const down = async (): Promise<void> => {
    const c = current;
    if (!c) return;
    current = null;
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      const exited = new Promise<void>((r) => c.proc.once('exit', () => r()));
      c.proc.kill('SIGKILL');
      await exited;
    }
    untrack(c);
  };

  try {
    await up();
  } catch (err) {
    await down().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    down,
    up,
    async restart() {
      await down();
      await up();
    },
    pause() {
      current?.proc.kill('SIGSTOP');
    },
    resume() {
      current?.proc.kill('SIGCONT');
    },
    async stop() {
      await down();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
