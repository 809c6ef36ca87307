/**
 * An upgrade to a path other than /ws (404) is answered with socket.end() only
 * (gateway.ts handleUpgrade, also the 503 of the drain): the HTTP server's sockets allow
 * half-open, and after an 'upgrade' event nothing times the socket out, so a client that never
 * sends its FIN keeps the server's socket (and file descriptor) forever. `ws`'s abortHandshake
 * destroys the socket once the answer is written, as refuseUpgrade() here does for 400/405.
 * Seen: after the 404 and the server's FIN, the client keeps writing and never gets a reset; and
 * SIGTERM then no longer shuts the server down (SPEC §5: exits 0): the harness had to SIGKILL it
 * after 15 s, the held socket keeping the HTTP server from closing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { RawClient, upgradeRequest } from '../helpers/raw-ws.js';

afterAll(() => stopAll());

/** Keep writing (bounded) on a half-closed client: a server socket that was really closed answers with RST. */
async function serverClosedFully(c: RawClient, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (c.error !== null || c.closed) return true;
    c.socket.write('x');
    await new Promise((r) => setTimeout(r, 100));
  }
  return c.error !== null || c.closed;
}

describe('refused upgrades release the socket', () => {
  let server: TestServer;
  it('starts', async () => {
    server = await startTestServer();
  });

  it('control: a 400 refusal (bad key) is followed by a full close', async () => {
    const c = await RawClient.connect(server.port, { allowHalfOpen: true });
    c.socket.write(upgradeRequest(server.port).replace(/Sec-WebSocket-Key: [^\r]+/, 'Sec-WebSocket-Key: short'));
    await c.until(() => c.head !== null && c.ended, 5000, 'the 400 and the FIN');
    expect(c.head).toMatch(/^HTTP\/1\.1 400/);
    expect(await serverClosedFully(c, 3000)).toBe(true);
    c.destroy();
  });

  it('an upgrade to another path (404) is followed by a full close, not a half-open socket held forever', async () => {
    const c = await RawClient.connect(server.port, { allowHalfOpen: true });
    c.socket.write(upgradeRequest(server.port, '/nope'));
    await c.until(() => c.head !== null && c.ended, 5000, 'the 404 and the FIN');
    expect(c.head).toMatch(/^HTTP\/1\.1 404/);
    expect(await serverClosedFully(c, 3000)).toBe(true);
    c.destroy();
  });

  it('SIGTERM still exits 0 while a client holds the socket of a refused (404) upgrade', async () => {
    const c = await RawClient.connect(server.port, { allowHalfOpen: true });
    c.socket.write(upgradeRequest(server.port, '/nope'));
    await c.until(() => c.head !== null && c.ended, 5000, 'the 404 and the FIN');
    c.socket.write('x'); // a client still talking on its half of the connection
    const exit = await server.stop('SIGTERM'); // the harness SIGKILLs after 15 s
    c.destroy();
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
