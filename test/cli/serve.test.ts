/**
 * `tpx serve` and a first run: stdout carries only JSON log lines, the banner goes to stderr
 * with the generated admin token, the console URL and commands that work when pasted
 * (`npx tpx … --url <the real URL>`); the client commands find the token in
 * <data dir>/admin-token; a loopback webhook URL refused by the SSRF guard gets a hint; SIGTERM
 * exits 0.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { runCli } from './run-cli.js';

// Each step spawns a CLI process; on a loaded 2-core machine that can take seconds.
vi.setConfig({ testTimeout: 120_000 });

let server: TestServer;
let stdout = '';
let stderr = '';

beforeAll(async () => {
  // Empty TPX_ADMIN_TOKEN = unset: the server generates one and saves it in the data dir.
  // Private webhook URLs refused, as in production.
  server = await startTestServer({ env: { TPX_ADMIN_TOKEN: '', TPX_WEBHOOK_ALLOW_PRIVATE: 'false' } });
  server.proc.stdout!.on('data', (d: string) => (stdout += d));
  server.proc.stderr!.on('data', (d: string) => (stderr += d));
});
afterAll(() => stopAll());

describe('tpx serve', () => {
  it('the banner: URLs, the console, the generated token, and commands to paste with the real URL', async () => {
    const all = server.output();
    const base = `http://127.0.0.1:${server.port}`;
    expect(all).toContain(`tpx-realtime is listening on ${base}`);
    expect(all).toMatch(new RegExp(`WebSocket:\\s+ws://127\\.0\\.0\\.1:${server.port}/ws`));
    expect(all).toMatch(new RegExp(`Console:\\s+${base}/console`));
    expect(all).toMatch(/Admin token \(generated, saved to .*admin-token\):\n\s+(\S+)/);
    // The data dir is not ./data, so the banner says how the CLI gets the token.
    expect(all).toContain(`export TPX_ADMIN_TOKEN=$(cat ${server.dataDir}/admin-token)`);
    for (const cmd of ['accounts create', 'keys create --account <account_id>', 'listen --token <tp_live_…> --rooms ALL', 'publish BID_REQUEST', 'simulate']) {
      expect(all).toMatch(new RegExp(`\\n    npx tpx ${cmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.* --url ${base}\\n`));
    }
  });

  it('the client commands read the token file; each pasted banner command parses', async () => {
    // The CLI finds the token through TPX_DATA_DIR alone.
    const r = await runCli(['accounts', 'create', '--name', 'via token file', '--json'], {
      env: { TPX_URL: server.url, TPX_DATA_DIR: server.dataDir, TPX_ADMIN_TOKEN: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    const accountId = JSON.parse(r.stdout).account_id as string;
    const token = /Admin token \(generated[^\n]*\n\s+(\S+)/.exec(server.output())![1]!;
    // The banner's publish line, pasted with the placeholder filled in.
    const line = /\n {4}npx tpx (publish BID_REQUEST [^\n]*)\n/.exec(server.output())![1]!;
    const args = line.replace('<account_id>', accountId).split(' ');
    const viaBanner = await runCli([...args, '--admin-token', token]);
    expect(viaBanner.code, viaBanner.stderr).toBe(0);
    expect(viaBanner.stdout).toMatch(/^published BID_REQUEST msg_id=\S+ recipients=1\n$/);
  });

  it('a loopback webhook URL refused by the SSRF guard gets a hint: TPX_WEBHOOK_ALLOW_PRIVATE or webhooks forward', async () => {
    const env = { TPX_URL: server.url, TPX_DATA_DIR: server.dataDir };
    const acc = JSON.parse((await runCli(['accounts', 'create', '--json'], { env })).stdout).account_id as string;
    const r = await runCli(['webhooks', 'add', '--account', acc, '--url', 'http://localhost:3000/hook'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: UNSAFE_WEBHOOK_URL: .*\[HTTP 400\]\n/);
    expect(r.stderr).toContain('start the server with TPX_WEBHOOK_ALLOW_PRIVATE=true');
    expect(r.stderr).toContain('npx tpx webhooks forward --token <tp_live_…> --to http://localhost:3000/hook');
  });

  it('a webhook host that does not resolve gets a DNS hint, not the private-address one', async () => {
    const env = { TPX_URL: server.url, TPX_DATA_DIR: server.dataDir };
    const acc = JSON.parse((await runCli(['accounts', 'create', '--json'], { env })).stdout).account_id as string;
    const r = await runCli(['webhooks', 'add', '--account', acc, '--url', 'https://hooks.no-such-host.invalid/tpx'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: UNSAFE_WEBHOOK_URL: .*does not resolve.*\[HTTP 400\]\n/);
    expect(r.stderr).toContain('hint: the server could not resolve hooks.no-such-host.invalid');
    expect(r.stderr).not.toContain('TPX_WEBHOOK_ALLOW_PRIVATE');
  });

  it('SIGTERM exits 0; stdout holds only JSON log lines', async () => {
    const info = await server.stop('SIGTERM');
    expect(info.code).toBe(0);
    for (const line of stdout.split('\n').filter((l) => l.trim())) expect(() => JSON.parse(line)).not.toThrow();
    expect(stdout).not.toContain('Admin token');
    expect(stderr + server.output()).toContain('shutting down gracefully');
  });
});
