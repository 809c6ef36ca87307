/**
 * A clean install (issue 12): no engine warning on the Node versions `engines` names, and no
 * lockfile rewrite on a fresh clone.
 *
 * - Every locked package's `engines.node` must accept every version our `engines.node` accepts
 *   (npm's EBADENGINE is this check against the running Node; here it covers the whole range).
 *   cookie@2 (through fastify → light-my-request) wanted Node ≥ 22: the `overrides` entry pins
 *   cookie@1.1.1, which has the same `stringifySetCookie` light-my-request calls.
 * - npm < 11.11 drops the `libc` fields npm ≥ 11.11 writes for per-platform optional packages,
 *   rewriting package-lock.json on a fresh clone: `devEngines` refuses those npm versions.
 * - The real thing: clone the committed tree, `npm install`, and `git status` must be clean.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/server.js';

// semver as fastify resolves it (a direct dependency of fastify; not one of ours).
const semver = createRequire(createRequire(path.join(REPO_ROOT, 'package.json')).resolve('fastify'))('semver') as typeof import('semver');
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8'));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('engines', () => {
  it('names the tested Node lines, and every locked package accepts all of them', () => {
    expect(pkg.engines.node).toBe('^20.19.0 || ^24.0.0');
    expect(semver.satisfies(process.version, pkg.engines.node)).toBe(true);
    const refusing = Object.entries(lock.packages as Record<string, { engines?: { node?: string } }>)
      .filter(([name, meta]) => name && meta.engines?.node && !semver.subset(pkg.engines.node, meta.engines.node))
      .map(([name, meta]) => `${name} wants node ${meta.engines!.node}`);
    expect(refusing).toEqual([]);
  });

  it('light-my-request works with the pinned cookie (fastify.inject with cookies)', async () => {
    const app = Fastify();
    app.get('/', async (request) => ({ cookie: request.headers.cookie }));
    const res = await app.inject({ method: 'GET', url: '/', cookies: { session: 'a b', other: 'x' } });
    expect(res.json()).toEqual({ cookie: 'session=a%20b; other=x' });
    await app.close();
  });

  it('refuses npm versions that would rewrite the lockfile', () => {
    expect(pkg.devEngines.packageManager).toEqual({ name: 'npm', version: '>=11.11.0', onFail: 'error' });
    const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim();
    expect(semver.satisfies(npmVersion, pkg.devEngines.packageManager.version)).toBe(true);
  });
});

describe('fresh clone', () => {
  it('npm install leaves git status clean and prints no engine warning', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tpx-clone-'));
    dirs.push(dir);
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', REPO_ROOT, dir]);
    // Scripts (the better-sqlite3 build) are not what this is about: skip them to stay fast.
    const install = spawnSync('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 240_000 });
    expect(install.status, install.stderr).toBe(0);
    expect(`${install.stdout}\n${install.stderr}`).not.toMatch(/EBADENGINE|EBADDEVENGINES/);
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: dir, encoding: 'utf8' })).toBe('');
  }, 300_000);
});
