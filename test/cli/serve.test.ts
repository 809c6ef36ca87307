/**
 * `tpx serve`: stdout carries only JSON log lines, the banner goes to stderr with the generated
 * admin token, the client commands find that token in <data dir>/admin-token, and SIGTERM
 * exits 0.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, stopAll } from '../helpers/server.js';
import { runCli } from './run-cli.js';

// Each step spawns a CLI process; on a loaded 2-core machine that can take seconds.
vi.setConfig({ testTimeout: 120_000 });

afterAll(() => stopAll());

describe('tpx serve', () => {
  it('banner on stderr with the generated token; clients read the token file; SIGTERM exits 0', async () => {
    // Empty TPX_ADMIN_TOKEN = unset: the server generates one and saves it in the data dir.
    const server = await startTestServer({ env: { TPX_ADMIN_TOKEN: '' } });
    const proc = server.proc;
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d: string) => (stdout += d));
    proc.stderr!.on('data', (d: string) => (stderr += d));

    // The CLI finds the token through TPX_DATA_DIR alone.
    const r = await runCli(['accounts', 'create', '--name', 'via token file', '--json'], {
      env: { TPX_URL: server.url, TPX_DATA_DIR: server.dataDir, TPX_ADMIN_TOKEN: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).name).toBe('via token file');

    const all = server.output();
    expect(all).toMatch(/tpx-realtime is listening on http:\/\//);
    expect(all).toMatch(/Admin token \(generated, saved to .*admin-token\):\n\s+(\S+)/);
    const token = /Admin token \(generated[^\n]*\n\s+(\S+)/.exec(all)![1];
    const viaFlag = await runCli(['accounts', 'list', '--admin-token', token], { env: { TPX_URL: server.url } });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(all).toContain('tpx accounts create');
    expect(all).toContain('tpx keys create');
    expect(all).toMatch(/WebSocket:\s+ws:\/\/.*\/ws/);

    const info = await server.stop('SIGTERM');
    expect(info.code).toBe(0);
    // Everything on stdout is a JSON log line.
    for (const line of stdout.split('\n').filter((l) => l.trim())) expect(() => JSON.parse(line)).not.toThrow();
    expect(stdout).not.toContain('Admin token');
    expect(stderr + all).toContain('shutting down gracefully');
  });
});
