/**
 * Write docs/openapi.json: the OpenAPI 3.1 document the server generates from its route schemas
 * (src/http/openapi.ts), fetched from a real server started on a scratch data directory.
 * Run: `npm run openapi` (or `npx tsx --conditions=tpx-source scripts/export-openapi.ts [file]`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchOpenApiDocument } from './openapi-document.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.resolve(root, process.argv[2] ?? 'docs/openapi.json');

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tpx-openapi-'));
  try {
    const text = await fetchOpenApiDocument(dataDir);
    await writeFile(target, text);
    process.stdout.write(`wrote ${path.relative(root, target)}\n`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
