/**
 * What the private test servers (PostgreSQL in pg.ts, redis-server in redis.ts) share: a free
 * loopback port, a pause, and an `exit` hook that kills every server still registered and
 * removes its directory, so a crashed test leaves no process or temp dir behind.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';

export interface LiveServer {
  proc: ChildProcess;
  dir: string;
}

const live = new Set<LiveServer>();

process.once('exit', () => {
  for (const l of live) {
    try {
      l.proc.kill('SIGKILL');
    } catch {
      /* ignore */
    }
    try {
      rmSync(l.dir, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
});

/** Register a running server for the exit hook; call untrack() once it is stopped. */
export function track(server: LiveServer): void {
  live.add(server);
}

export function untrack(server: LiveServer): void {
  live.delete(server);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
