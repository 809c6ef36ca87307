/**
 * `ws://host/ws/` (a trailing slash, as copied from a browser or a proxy config) means the same
 * endpoint as `ws://host/ws`: the SDK and the CLI connect instead of failing with a 404 from the
 * server, which routes `/ws` only (SPEC §2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpxClient } from '../../packages/client/src/client.js';
import { normalizeEndpoint, normalizeStreamEndpoint } from '../../packages/client/src/endpoint.js';
import { resolveUrl, wsUrlFor } from '../../src/cli/context.js';
import { createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';

describe('normalizeEndpoint', () => {
  it('drops the slashes after a final /ws, keeping a proxy prefix and the query', () => {
    expect(normalizeEndpoint('ws://h:1/ws/')).toBe('ws://h:1/ws');
    expect(normalizeEndpoint('wss://h/ws//')).toBe('wss://h/ws');
    expect(normalizeEndpoint('https://h/realtime/ws/?x=1')).toBe('wss://h/realtime/ws?x=1');
    expect(normalizeEndpoint('ws://h:1/ws')).toBe('ws://h:1/ws');
    expect(normalizeEndpoint('ws://h:1/')).toBe('ws://h:1/ws');
    expect(normalizeEndpoint('wss://h/custom/')).toBe('wss://h/custom/'); // a proxy's own route is kept
    expect(normalizeStreamEndpoint('ws://h:1/ws/')).toBe('http://h:1/v1/events/stream');
  });
});

describe('CLI server URL', () => {
  it('takes the WebSocket URL (with or without a trailing slash) for the base URL', () => {
    for (const url of ['ws://127.0.0.1:8080/ws/', 'ws://127.0.0.1:8080/ws', 'http://127.0.0.1:8080/ws/', 'http://127.0.0.1:8080/']) {
      expect(resolveUrl({ url }, {})).toBe('http://127.0.0.1:8080');
    }
    expect(resolveUrl({ url: 'wss://rt.example/tpx/ws/' }, {})).toBe('https://rt.example/tpx');
    expect(wsUrlFor(resolveUrl({ url: 'wss://rt.example/tpx/ws/' }, {}))).toBe('wss://rt.example/tpx/ws');
  });
});

describe('SDK against a real server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  }, 60_000);
  afterAll(() => stopAll());

  it('connects to ws://host/ws/', async () => {
    const { token } = await createAccountWithKey(server);
    const client = new TpxClient({ url: `${server.wsUrl}/`, token });
    try {
      await client.connect();
      expect(client.state).toBe('open');
    } finally {
      await client.close();
    }
  }, 30_000);
});
