/**
 * Write the protocol's JSON Schemas to docs/schemas/<name>.json.
 * Run: `npx tsx scripts/export-schemas.ts [outDir]` (default docs/schemas).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchemas } from '../src/protocol/json-schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(root, process.argv[2] ?? 'docs/schemas');

async function main(): Promise<void> {
  const schemas = protocolJsonSchemas();
  await mkdir(outDir, { recursive: true });
  // Remove stale generated files so a renamed schema does not linger.
  for (const file of await readdir(outDir)) {
    if (file.endsWith('.json') && !(file.slice(0, -5) in schemas)) await rm(path.join(outDir, file));
  }
  for (const [name, schema] of Object.entries(schemas)) {
    await writeFile(path.join(outDir, `${name}.json`), `${JSON.stringify(schema, null, 2)}\n`);
  }
  process.stdout.write(`wrote ${Object.keys(schemas).length} schemas to ${path.relative(root, outDir) || '.'}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
