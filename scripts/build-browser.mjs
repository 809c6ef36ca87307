#!/usr/bin/env node
/**
 * Browser bundle of the partner SDK: packages/client/src/index.ts → dist/browser/tpx-client.js
 * (ESM, platform browser). `ws` is external and only ever imported when the runtime has no
 * global WebSocket, which never happens in a browser, so the bundle does not contain it.
 *
 *   node scripts/build-browser.mjs [--minify] [--outfile path]
 */
import { build } from 'esbuild';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const minify = args.includes('--minify');
const outIdx = args.indexOf('--outfile');
const outfile = outIdx >= 0 ? path.resolve(args[outIdx + 1]) : path.join(root, 'dist', 'browser', 'tpx-client.js');

export async function buildBrowser({ outfile: out = outfile, minify: min = minify } = {}) {
  mkdirSync(path.dirname(out), { recursive: true });
  await build({
    entryPoints: [path.join(root, 'packages', 'client', 'src', 'index.ts')],
    conditions: ['tpx-source'],
    outfile: out,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    external: ['ws'],
    minify: min,
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const code = readFileSync(out, 'utf8');
  if (/require\(["']ws["']\)|from ["']ws["']|node_modules\/ws\//.test(code)) {
    throw new Error('browser bundle unexpectedly contains the "ws" package');
  }
  return { outfile: out, bytes: statSync(out).size };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('build-browser.mjs')) {
  const { outfile: out, bytes } = await buildBrowser();
  console.log(`built ${path.relative(root, out)} (${bytes} bytes)`);
}
