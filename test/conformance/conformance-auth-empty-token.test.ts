/**
 * SPEC §2.5 / §2.7: "Unknown or malformed token → `AUTH_INVALID_API_KEY` … After an authentication
 * error the server closes the connection with close code 4001." An empty token string is a
 * malformed token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { closeAllClients, WsTestClient } from '../helpers/ws-client.js';

describe('SPEC §2.5 malformed (empty) token', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Auth timeout well beyond the wait below, so a 4002 cannot stand in for the 4001.
    server = await startTestServer({ env: { TPX_AUTH_TIMEOUT_MS: '20000' } });
  });
  afterAll(async () => {
    await closeAllClients();
    await stopAll();
  });

  it('authenticate with token "" → AUTH_INVALID_API_KEY and close 4001', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    const answer = await c.authenticateRaw('');
    expect(answer.msg_type).toBe('error');
    expect(answer.payload.code).toBe('AUTH_INVALID_API_KEY');
    const close = await c.waitClosed(3000).catch(() => ({ code: -1, reason: 'still open after 3 s' }));
    expect(close.code).toBe(4001);
  });
});
