/**
 * The nginx example of docs/deployment.md, run by a real nginx in front of a loopback upstream:
 * its logs must not record the API key an EventSource sends as `?api_key=` (SPEC §2.10), on
 * /v1/events/stream or /ws. The test takes the documented block as written, changing only what
 * a loopback test must (addresses, log path, the TLS lines).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/child-servers.js';
import { REPO_ROOT, waitFor } from '../helpers/server.js';

const SECRET = 'tp_live_DoNotLogMe0123456789abcdef';
let upstream: Server;
let nginx: ChildProcess | undefined;
let dir: string;
let port: number;

function documentedBlock(): string {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs/deployment.md'), 'utf8');
  const m = /\*\*nginx\*\*\s*```nginx\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('no nginx block in docs/deployment.md');
  return m[1]!;
}

beforeAll(async () => {
  upstream = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = (upstream.address() as AddressInfo).port;
  dir = mkdtempSync(path.join(tmpdir(), 'tpx-nginx-'));
  port = await freePort();
  const block = documentedBlock()
    .replace(/server \d+\.\d+\.\d+\.\d+:\d+;/g, `server 127.0.0.1:${up};`)
    .replace(/listen 443 ssl;/, `listen 127.0.0.1:${port};`)
    .replace(/^\s*(ssl_\w+|http2)\b.*$/gm, '')
    .replace(/\/var\/log\/nginx\//g, `${dir}/`);
  // Everything around the documented block: nginx's defaults (combined access log) where the
  // block says nothing, so a block without its own log format is caught.
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;
events {}
http {
  access_log ${dir}/default-access.log combined;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${block}
}
`,
  );
  nginx = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  nginx.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    async () => {
      if (nginx!.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    },
    10_000,
    'nginx',
  );
}, 30_000);

afterAll(async () => {
  if (nginx?.pid && nginx.exitCode === null) {
    nginx.kill('SIGTERM');
    await new Promise((r) => nginx!.once('exit', r));
  }
  await new Promise((r) => upstream?.close(r));
});

describe('docs/deployment.md nginx example', () => {
  it('does not write ?api_key= to any log (stream and /ws)', async () => {
    for (const p of [`/v1/events/stream?api_key=${SECRET}&rooms=ALL`, `/ws?api_key=${SECRET}`]) {
      const res = await fetch(`http://127.0.0.1:${port}${p}`);
      await res.arrayBuffer();
    }
    // nginx writes the access log line when the request ends; give it the moment it needs.
    await waitFor(() => readdirSync(dir).some((f) => f.endsWith('.log') && readFileSync(path.join(dir, f), 'utf8').includes('/ws')), 5_000, 'the log line');
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
    const all = logs.map((f) => readFileSync(path.join(dir, f), 'utf8')).join('\n');
    expect(all).toContain('/v1/events/stream');
    expect(all).not.toContain(SECRET);
  });
});
