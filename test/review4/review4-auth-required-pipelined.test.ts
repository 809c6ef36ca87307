/**
 * SPEC §2.5: "Until a connection is authenticated only authenticate, ping and pong are accepted;
 * any other message gets AUTH_REQUIRED". ws-inbound.ts answers a malformed subscribe AUTH_REQUIRED
 * only when no other message is queued or running: a client that pipelines a valid subscribe and a
 * malformed one (no authenticate anywhere) gets INVALID_MESSAGE for the second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { clientFrame, RawClient } from '../helpers/raw-ws.js';

const text = (obj: unknown) => clientFrame(1, JSON.stringify(obj));

describe('review4: AUTH_REQUIRED for every subscribe before authentication, pipelined or not', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await stopAll();
  });

  it('a valid and a malformed subscribe in one write both get AUTH_REQUIRED', async () => {
    const c = await RawClient.open(server.port);
    c.send(
      Buffer.concat([
        text({ msg_type: 'subscribe', payload: { rooms: ['ALL'] } }),
        text({ msg_type: 'subscribe', payload: {} }),
        text({ msg_type: 'unsubscribe', payload: { rooms: 'nope' } }),
      ]),
    );
    const errors = await waitFor(() => {
      const e = c.texts().filter((f) => f.msg_type === 'error');
      return e.length >= 3 ? e : undefined;
    }, 5000, 'three error frames');
    expect(errors.map((e) => e.payload.code)).toEqual(['AUTH_REQUIRED', 'AUTH_REQUIRED', 'AUTH_REQUIRED']);
    c.destroy();
  });
});
