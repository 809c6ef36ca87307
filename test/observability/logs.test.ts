/**
 * Log format: JSON lines when stdout is a pipe (log shippers, tests), readable lines when it is
 * a terminal. The terminal case runs the real `tpx serve` under `script`, which gives it a pty.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatRecord } from '../../src/observability/pretty.js';
import { REPO_ROOT, startTestServer, stopAll, waitFor } from '../helpers/server.js';

afterAll(() => stopAll());

describe('readable log lines', () => {
  it('formats a record as time, level, message and key=value fields, clipping long values', () => {
    const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', msg: 'webhook attempt failed', url: 'https://p.example/hook', status: 503, error: 'x'.repeat(500), nested: { a: 1 } });
    const out = formatRecord(line, false);
    expect(out.endsWith('\n')).toBe(true);
    expect(out.split('\n')).toHaveLength(2);
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  webhook attempt failed url=https:\/\/p\.example\/hook status=503 error=x+… nested=\{"a":1\}\n$/);
    expect(out.length).toBeLessThan(300);
    expect(out).not.toContain('pid=');
    expect(out).not.toContain('\x1b[');
    expect(formatRecord(line, true)).toContain('\x1b[33mWARN');
  });

  it('puts an error stack on indented lines and passes non-JSON through', () => {
    const out = formatRecord(JSON.stringify({ level: 50, time: 0, msg: 'unhandled error', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.js:1:1)' } }), false);
    expect(out).toContain('ERROR unhandled error\n    Error: boom\n        at f (x.js:1:1)\n');
    expect(formatRecord('plain text', false)).toBe('plain text\n');
  });
});

describe('the server picks the format from stdout', () => {
  it('writes JSON lines to a pipe', async () => {
    const server = await startTestServer();
    const listening = server.logs().find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ level: 30, url: server.url, console_url: `${server.url}/console` });
  });

  it('writes readable lines to a terminal (and TPX_LOG_FORMAT=json forces JSON there)', async () => {
    // Wait for the log record itself: the banner on stderr (same pty) also says "listening", and
    // pino's asynchronous stdout may flush after it.
    const runOnTty = async (extraEnv: Record<string, string>, record: RegExp) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'tpx-tty-'));
      const command = `${JSON.stringify(process.execPath)} --conditions=tpx-source --import tsx src/cli/main.ts serve`;
      const proc = spawn('script', ['-qfec', command, '/dev/null'], {
        cwd: REPO_ROOT,
        env: { ...process.env, TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_DATA_DIR: dataDir, TPX_ADMIN_TOKEN: 'adm_tty_test', TPX_DATABASE_URL: '', TPX_REDIS_URL: '', ...extraEnv },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout!.on('data', (c) => (out += String(c)));
      try {
        await waitFor(() => record.test(out), 30_000, 'the listening record on the tty');
        return out;
      } finally {
        // The pty's foreground process gets SIGTERM through `script`'s child: stop the server itself.
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
        rmSync(dataDir, { recursive: true, force: true });
      }
    };
    const pretty = await runOnTty({}, /INFO.* listening /);
    // eslint-disable-next-line no-control-regex
    const line = pretty.replace(/\x1b\[[0-9;]*m/g, '').split(/\r?\n/).find((l) => / INFO  listening /.test(l))!;
    expect(pretty).toContain('\x1b[32mINFO'); // coloured on a terminal
    expect(line).toMatch(/\d\d:\d\d:\d\d\.\d{3} .*INFO.* listening .*url=.*http:\/\/127\.0\.0\.1:\d+/);
    expect(line).not.toContain('{"level"');
    const json = await runOnTty({ TPX_LOG_FORMAT: 'json' }, /"msg":"listening"/);
    expect(json).toMatch(/\{"level":30,.*"msg":"listening"/);
  }, 90_000);
});

describe('GET /', () => {
  it('redirects to the console', async () => {
    const server = await startTestServer();
    const res = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/console');
    const followed = await fetch(`${server.url}/`);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toMatch(/^text\/html/);
  });
});
