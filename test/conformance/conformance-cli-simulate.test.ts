/**
 * SPEC §6: "`tpx simulate` (drive a realistic stream of auctions, outbids, results and payments)".
 * The command is named bare, with no required option (unlike `tpx publish <TYPE> --account <id>`):
 * run against a server with an account, it publishes events and exits 0 (to whom is the
 * implementation's choice; this test only asks that a stream was driven).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { runCli } from '../cli/run-cli.js';

describe('SPEC §6 `tpx simulate` without options', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await stopAll();
  });

  it('publishes events and exits 0', async () => {
    await createAccountWithKey(server, { name: 'sim' });
    const res = await runCli(['simulate', '--count', '5'], {
      env: { TPX_URL: server.url, TPX_ADMIN_TOKEN: server.adminToken },
      killAfterMs: 30_000,
    });
    expect(res.code, res.stderr).toBe(0);
    const metrics = await api(server, 'GET', '/metrics', undefined, { token: null });
    const published = metrics.text
      .split('\n')
      .filter((l) => l.startsWith('tpx_events_published_total'))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    expect(published).toBeGreaterThan(0);
  });

  it('on a server with no account: a clean error naming `tpx accounts create`, nothing published', async () => {
    const empty = await startTestServer();
    const res = await runCli(['simulate', '--count', '5'], {
      env: { TPX_URL: empty.url, TPX_ADMIN_TOKEN: empty.adminToken },
      killAfterMs: 30_000,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no accounts to simulate for: create one with `(npx )?tpx accounts create`/);
  });
});
