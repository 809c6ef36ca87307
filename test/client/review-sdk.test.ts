/**
 * Review (issue 11 "a client that fails loudly", connect() semantics), against the real server:
 * - `connect()` then `close()` (a service stopping right after start, a test's teardown, a UI
 *   effect cleanup) crashes a Node 20 process: the socket the factory made after close() is
 *   terminated while CONNECTING without an 'error' listener, and `ws` throws the unhandled
 *   'error' event ("WebSocket was closed before the connection was established").
 *   client.ts openSocket: `if (gen !== this.gen) { safeClose(ws, …) }` before any handler is set.
 * - `connect()` called again from a `closed` listener is rejected at once with the previous
 *   error while the new attempt is running (shutdown() rejects every waiter after emitting closed).
 * - SSE pointed at a URL that answers 200 with a page (not an event stream: a console, a proxy's
 *   login page) is retried forever without an `error` (onStreamRefused treats 2xx as retryable).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import type { TpxError } from '../../packages/client/src/errors.js';
import { REPO_ROOT, sleep, startTestServer, stopAll, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(() => stopAll());

/** Run an ES module snippet in a fresh Node process (the SDK from source); exit code and output. */
function runSnippet(code: string, timeoutMs = 15_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, output });
    });
  });
}

describe('connect() / close() semantics', () => {
  it('close() right after connect() does not crash the process (Node 20, ws)', async () => {
    const result = await runSnippet(`
      import { TpxClient } from './packages/client/src/index.ts';
      const client = new TpxClient({ url: ${JSON.stringify(server.url)}, token: 'tp_live_anything' });
      const connecting = client.connect();
      await client.close();
      console.log('connect settled:', await connecting.then(() => 'resolved', (e) => 'rejected ' + e.code));
      await new Promise((r) => setTimeout(r, 500));
      console.log('still alive');
    `);
    expect(result.output).toContain('still alive');
    expect(result.code, result.output).toBe(0);
  }, 30_000);

  it('connect() called again from a closed listener settles with the outcome of the new attempt, not the old error', async () => {
    // The server refuses the first attempt's key; the listener starts another attempt at once.
    const client = new TpxClient({ url: server.url, token: 'tp_live_unknown_key', reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    client.on('error', () => undefined);
    let again: Promise<string> | undefined;
    let stateWhenSettled = '';
    client.on('closed', () => {
      again ??= client.connect().then(
        () => 'resolved',
        (e: TpxError) => {
          stateWhenSettled = client.state;
          return `rejected ${e.code}`;
        },
      );
    });
    await client.connect().catch(() => undefined);
    await again;
    await client.close();
    // A rejection must mean "this attempt failed": the client must not be connecting at that moment.
    expect(stateWhenSettled).not.toBe('connecting');
  }, 20_000);
});

describe('SSE fails loudly', () => {
  it('a URL that answers 200 with something other than an event stream is an error, not endless silent retries', async () => {
    const client = new TpxClient({ url: `${server.url}/console`, token: 'tp_live_anything', transport: 'sse', reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const errors: TpxError[] = [];
    let reconnects = 0;
    client.on('error', (e) => void errors.push(e));
    client.on('reconnecting', () => void reconnects++);
    void client.connect();
    await sleep(2_000);
    await client.close();
    expect({ errors: errors.map((e) => e.code), reconnects: Math.min(reconnects, 1) }).toEqual({ errors: [expect.any(String)], reconnects: 0 });
  }, 20_000);
});
