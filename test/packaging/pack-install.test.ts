/**
 * The packages a partner installs (issue 11 item 1), tested the way a partner uses them:
 * `npm pack` each package, install the protocol and SDK tarballs into a scratch project in a
 * temp dir (from the npm cache when possible), type-check a snippet with `tsc`, and receive an
 * event from a server started from this repository. Also checks what the server tarball ships
 * and that the SDK's install pulls nothing of the server. Logs the SDK's install footprint.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAccountWithKey, publish, REPO_ROOT, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { samplePayload } from '../helpers/payloads.js';

const run = promisify(execFile);
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const SERVER_ONLY = ['better-sqlite3', 'fastify', 'pg', 'ioredis', 'pino', 'prom-client', 'commander', 'undici', 'tpx-realtime'];

/** The environment of a child npm/node: without the npm_* variables of an enclosing `npm test`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !k.startsWith('TPX_') && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('npm', args, { cwd, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

async function nodeScript(file: string, cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [file], { cwd, env: cleanEnv(env), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

interface PackResult {
  name: string;
  filename: string;
  files: Array<{ path: string }>;
}

/** Packages under node_modules (scoped and nested included) and their total size on disk. */
function footprint(nodeModules: string): { packages: string[]; bytes: number } {
  const packages: string[] = [];
  let bytes = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) bytes += statSync(full).size;
    }
  };
  const scan = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        scan(full);
        continue;
      }
      if (existsSync(path.join(full, 'package.json'))) {
        packages.push(JSON.parse(readFileSync(path.join(full, 'package.json'), 'utf8')).name as string);
        scan(path.join(full, 'node_modules'));
      }
    }
  };
  scan(nodeModules);
  walk(nodeModules);
  return { packages: packages.sort(), bytes };
}

let server: TestServer;
let work: string;
let project: string;
const packs = new Map<string, PackResult>();

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'tpx-pack-'));
  // npm pack runs each package's build (prepack / prepare), so the tarballs hold fresh dist/.
  const out = await npm(['pack', '--json', '--pack-destination', work, '--workspace', 'packages/protocol', '--workspace', 'packages/client'], REPO_ROOT);
  const root = await npm(['pack', '--json', '--pack-destination', work], REPO_ROOT);
  for (const p of [...(JSON.parse(out) as PackResult[]), ...(JSON.parse(root) as PackResult[])]) packs.set(p.name, p);
  project = path.join(work, 'partner-app');
  rmSync(project, { recursive: true, force: true });
  await run('mkdir', ['-p', project]);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'partner-app', private: true, type: 'module' }, null, 2));
  server = await startTestServer();
});

afterAll(async () => {
  await stopAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('the server tarball ships the built CLI, the console and no sources or tests', () => {
    const files = packs.get('tpx-realtime')!.files.map((f) => f.path);
    for (const f of ['package.json', 'bin/tpx.js', 'dist/src/cli/main.js', 'dist/src/server.js', 'console/index.html', 'README.md']) expect(files, f).toContain(f);
    expect(files.filter((f) => /^(src|test|bench|packages|docs)\//.test(f) || f.endsWith('.map') || f.endsWith('.tsbuildinfo'))).toEqual([]);
  });

  it('the protocol and SDK tarballs hold dist (JS + types) and sources, without build state', () => {
    for (const name of ['@tpx-realtime/protocol', '@tpx-realtime/client']) {
      const files = packs.get(name)!.files.map((f) => f.path);
      for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'src/index.ts']) expect(files, `${name}: ${f}`).toContain(f);
      expect(files.filter((f) => f.includes('tsbuildinfo') || f.startsWith('test/'))).toEqual([]);
    }
    expect(packs.get('@tpx-realtime/protocol')!.files.map((f) => f.path)).toContain('dist/core.js');
  });
});

describe('a partner project installs the SDK from the tarballs', () => {
  it('installs the SDK with the protocol and nothing of the server; reports its footprint', async () => {
    const tarballs = ['@tpx-realtime/protocol', '@tpx-realtime/client'].map((n) => path.join(work, packs.get(n)!.filename));
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], project);
    const { packages, bytes } = footprint(path.join(project, 'node_modules'));
    console.log(`[sdk footprint] ${packages.length} packages, ${(bytes / 1e6).toFixed(2)} MB on disk: ${packages.join(', ')}`);
    expect(packages).toEqual(['@tpx-realtime/client', '@tpx-realtime/protocol', 'zod']);
    for (const name of SERVER_ONLY) expect(packages).not.toContain(name);
  });

  it('type-checks a partner snippet against the installed declarations with tsc (typos in payloads do not compile)', async () => {
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', noEmit: true, lib: ['ES2023', 'DOM'], types: [], skipLibCheck: false },
        files: ['snippet.ts'],
      }),
    );
    writeFileSync(
      path.join(project, 'snippet.ts'),
      [
        "import { TpxClient, TpxAuthError, loose, verifyWebhook, type TpxEvent, type GapInfo } from '@tpx-realtime/client';",
        "import { samplePayload, validateEventPayload } from '@tpx-realtime/protocol';",
        "const client = new TpxClient({ url: 'https://realtime.example.com', token: 'tp_live_x', rooms: ['BID_REQUEST', 'PAYMENT_SETTLED'] });",
        "client.on('BID_REQUEST', (e) => { const q: number = e.payload.item_details.quantity; void q; });",
        '// @ts-expect-error a typo in a payload field does not compile',
        "client.on('BID_REQUEST', (e) => void e.payload.conversation_idd);",
        "client.on('event', (e: TpxEvent) => void loose(e.payload).partner_tier);",
        "client.on('gap', (g: GapInfo) => void (g.to_seq - g.from_seq));",
        "client.on('error', (err) => { if (err instanceof TpxAuthError) console.error(err.code); });",
        '// @ts-expect-error rooms are checked',
        "client.subscribe(['BID_REQUESTS']);",
        'export const ok: boolean = validateEventPayload("BID_REQUEST", samplePayload("BID_REQUEST")).ok;',
        'export const verified = verifyWebhook({ headers: {}, body: "" }, { secret: "whsec_x" }).then((e) => e.seq);',
        'await client.connect().catch(() => undefined);',
        '',
      ].join('\n'),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', project], { cwd: project, env: cleanEnv() }).then(
      () => ({ ok: true, out: '' }),
      (e: { stdout?: string }) => ({ ok: false, out: e.stdout ?? '' }),
    );
    expect(r.out).toBe('');
    expect(r.ok).toBe(true);
  });

  it('runs without zod: the SDK loads only the zod-free protocol core (zod is for the payload types and schemas)', async () => {
    const zod = path.join(project, 'node_modules', 'zod');
    renameSync(zod, `${zod}.hidden`);
    try {
      writeFileSync(
        path.join(project, 'no-zod.mjs'),
        [
          "import { TpxClient, Deduplicator, EVENT_TYPES } from '@tpx-realtime/client';",
          "const c = new TpxClient({ url: 'http://127.0.0.1:9', token: 'tp_live_x', rooms: ['ALL'] });",
          "console.log(EVENT_TYPES.length, typeof Deduplicator, c.state);",
          'await c.close();',
        ].join('\n'),
      );
      const r = await nodeScript('no-zod.mjs', project, {});
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('11 function idle');
    } finally {
      renameSync(`${zod}.hidden`, zod);
    }
  });

  it('receives an event from a running server (Node < 22: fails loudly without ws, works once ws is installed)', async () => {
    const { accountId, token } = await createAccountWithKey(server);
    writeFileSync(
      path.join(project, 'receive.mjs'),
      [
        "import { TpxClient } from '@tpx-realtime/client';",
        "const client = new TpxClient({ url: process.env.TPX_URL, token: process.env.TPX_API_KEY, rooms: ['ALL'], reconnect: { maxAttempts: 3 } });",
        "client.on('error', (err) => console.error(`error ${err.code}: ${err.message}`));",
        "client.on('event', async (e) => { console.log(JSON.stringify({ msg_id: e.msg_id, seq: e.seq, type: e.msg_type, conv: e.payload.conversation_id })); await client.close(); });",
        "client.on('open', () => console.error('open'));",
        'try { await client.connect(); } catch (err) { process.exitCode = 3; }',
        '',
      ].join('\n'),
    );
    const env = { TPX_URL: server.url, TPX_API_KEY: token };
    const receiveOne = async () => {
      const child = nodeScript('receive.mjs', project, env);
      // Publish once the script is subscribed: poll the server's connection list for this account.
      for (let i = 0; i < 300; i++) {
        const res = await fetch(`${server.url}/admin/connections`, { headers: { authorization: `Bearer ${server.adminToken}` } });
        const list = ((await res.json()) as { connections: Array<{ account_id: string }> }).connections;
        if (list.some((c) => c.account_id === accountId)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const sent = await publish(server, { msg_type: 'BID_REQUEST', account_ids: [accountId], payload: samplePayload('BID_REQUEST') });
      return { sent, result: await child };
    };

    if (NODE_MAJOR < 22) {
      const noWs = await nodeScript('receive.mjs', project, env);
      expect(noWs.code).toBe(3);
      expect(noWs.stderr).toMatch(/error NO_WEBSOCKET: .*npm install ws/);
      await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', 'ws@^8.18.0'], project);
      const { packages, bytes } = footprint(path.join(project, 'node_modules'));
      console.log(`[sdk footprint, Node ${NODE_MAJOR} with ws] ${packages.length} packages, ${(bytes / 1e6).toFixed(2)} MB on disk`);
    }
    const { sent, result } = await receiveOne();
    expect(result.stderr).toContain('open');
    const got = JSON.parse(result.stdout.trim()) as { msg_id: string; seq: number; type: string; conv: string };
    expect(got).toMatchObject({ msg_id: sent.msg_id, type: 'BID_REQUEST', seq: 1 });
    expect(result.code).toBe(0);
  });
});

describe('an operator installs the server tarball', () => {
  // npm's EBADENGINE warning names a package whose engines.node refuses the running Node. Our
  // root `overrides` do not apply to a project that installs us, so what fastify pulls in must
  // accept Node 20 on its own (cookie@2, via light-my-request ≥ 6.8, wants Node ≥ 22).
  it('installs with the workspace tarballs without any engine warning on this Node', async () => {
    const app = path.join(work, 'operator-app');
    await run('mkdir', ['-p', app]);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'operator-app', private: true }, null, 2));
    const tarballs = ['@tpx-realtime/protocol', '@tpx-realtime/client', 'tpx-realtime'].map((n) => path.join(work, packs.get(n)!.filename));
    // --ignore-scripts: the engine check does not depend on the native build, which takes a minute.
    const { stderr } = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...tarballs], {
      cwd: app,
      env: cleanEnv(),
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(stderr.split('\n').filter((l) => /EBADENGINE|Unsupported engine/.test(l)).join('\n')).toBe('');
  }, 180_000);
});
