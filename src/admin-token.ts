/**
 * The admin token (SPEC §5): TPX_ADMIN_TOKEN when set; otherwise generated on first start and kept
 * in `<data dir>/admin-token` (mode 0600) so restarts keep working and `tpx` can read it locally.
 * Nodes sharing a database must be given TPX_ADMIN_TOKEN explicitly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin-token';

export async function resolveAdminToken(configured: string | null, dataDir: string): Promise<{ token: string; generated: boolean; file: string | null }> {
  if (configured) return { token: configured, generated: false, file: null };
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing) return { token: existing, generated: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const token = `tpx_admin_${randomBytes(32).toString('base64url')}`;
  try {
    await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
    return { token, generated: true, file };
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: (await readFile(file, 'utf8')).trim(), generated: false, file };
    throw err;
  }
}
