/**
 * SPEC §2.7 / §5: "A client that sends more than `TPX_RATE_LIMIT_PER_SEC` messages per second gets
 * `RATE_LIMITED` and a close with 1008." With the limit at 10, a client that sends 16 messages
 * within one second (authenticate + 15 pings, in one burst) has sent more than 10 in a second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { closeAllClients, WsTestClient } from '../helpers/ws-client.js';

const LIMIT = 10;

describe('SPEC §2.7 rate limit: more than TPX_RATE_LIMIT_PER_SEC messages in one second', () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ env: { TPX_RATE_LIMIT_PER_SEC: String(LIMIT) } });
    ({ token } = await createAccountWithKey(server));
  });
  afterAll(async () => {
    await closeAllClients();
    await stopAll();
  });

  it('1.5× the limit sent within one second gets RATE_LIMITED and close 1008', async () => {
    const c = await WsTestClient.connect(server.wsUrl);
    await c.authenticate(token);
    const started = Date.now();
    for (let i = 0; i < LIMIT + 5; i++) c.send({ msg_type: 'ping' });
    expect(Date.now() - started).toBeLessThan(1000); // all sent well inside one second
    const close = await c.waitClosed(3000).catch(() => ({ code: -1, reason: 'still open after 3 s' }));
    const codes = c.history.filter((f) => f.msg_type === 'error').map((f) => f.payload.code);
    expect(codes).toContain('RATE_LIMITED');
    expect(close.code).toBe(1008);
  });
});
