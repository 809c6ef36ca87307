/**
 * Review (issue 12, SPEC §5): SIGHUP is the certificate reload (`systemctl reload tpx`, certbot's
 * deploy hook). If it arrives while a SIGTERM drain runs — a renewal racing a deploy — the server
 * must keep draining and exit 0. server.ts removes its SIGHUP handler as the drain starts
 * (`process.off('SIGHUP', onSighup)`), so Node's default applies and the process dies at once,
 * killed by SIGHUP: the drain and the in-flight webhook attempts are cut short.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sleep, startTestServer, stopAll } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tpx-rv-hup-'));
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  writeFileSync(file('.keep'), '');
});

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('SIGHUP during a SIGTERM drain', () => {
  it('the drain goes on and the process exits 0', async () => {
    const server = await startTestServer({ env: { TPX_LOG_LEVEL: 'info', TPX_TLS_CERT: file('cert.pem'), TPX_TLS_KEY: file('key.pem'), TPX_SHUTDOWN_DRAIN_MS: '3000' } });
    // Twenty open connections: their closes are spread over the 3 s window (i·3000/20 ms).
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => {
        const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, { rejectUnauthorized: false });
        ws.on('error', () => undefined);
        return new Promise<WebSocket>((resolve, reject) => {
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        });
      }),
    );
    const exited = server.exited();
    server.proc.kill('SIGTERM');
    await sleep(500);
    server.proc.kill('SIGHUP'); // e.g. `systemctl reload tpx` from a certificate renewal
    const info = await Promise.race([exited, sleep(15_000).then(() => ({ code: null, signal: 'timeout' }))]);
    for (const ws of sockets) ws.terminate();
    expect(info).toEqual({ code: 0, signal: null });
  }, 30_000);
});
