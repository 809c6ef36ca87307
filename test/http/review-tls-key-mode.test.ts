/**
 * Review (issue 12 TLS, BRIEF "security by default"): a TLS private key readable by every user of
 * the machine (mode 0644, e.g. copied with a default umask) is accepted without a word, at start
 * and on SIGHUP. PostgreSQL refuses to start on such a key ("private key file … has group or
 * world access"); OpenSSH refuses such keys too. Expected: refuse, or at least warn (level ≥ 40)
 * naming TPX_TLS_KEY and its mode.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, stopAll } from '../helpers/server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tpx-rv-keymode-'));
const file = (name: string) => path.join(dir, name);

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS key file permissions', () => {
  it('a world-readable TPX_TLS_KEY is refused or warned about', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    chmodSync(file('key.pem'), 0o644);
    let output: string;
    try {
      const server = await startTestServer({ env: { TPX_TLS_CERT: file('cert.pem'), TPX_TLS_KEY: file('key.pem') } });
      const warned = server.logs().filter((l) => Number(l.level) >= 40 && /TPX_TLS_KEY|key/i.test(JSON.stringify(l)) && /mode|permission|readable|0644|world/i.test(JSON.stringify(l)));
      output = warned.length > 0 ? 'warned' : `accepted silently; warnings: ${JSON.stringify(server.logs().filter((l) => Number(l.level) >= 40))}`;
    } catch (err) {
      output = /TPX_TLS_KEY/.test(String(err)) && /mode|permission|readable|world/i.test(String(err)) ? 'refused' : `failed otherwise: ${String(err).slice(0, 500)}`;
    }
    expect(['refused', 'warned']).toContain(output);
  }, 60_000);
});
