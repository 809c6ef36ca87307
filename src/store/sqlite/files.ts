/**
 * The database holds webhook secrets and key hashes: its files are readable by the server's
 * user only (0600), in a directory only that user can enter (0700), like `admin-token`.
 *
 * SQLite creates the -wal and -shm files with the permissions of the database file, so it is
 * enough to create the database file 0600 before SQLite opens it. Files of an existing
 * installation that were created more open (the umask's 0644) are tightened at start.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Create (0700) or tighten a directory the server owns. */
export function secureDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0 && (process.getuid === undefined || st.uid === process.getuid())) chmodSync(dir, DIR_MODE);
}

/**
 * Before SQLite opens `filename`: its directory exists (created 0700 when missing), the database
 * file exists with 0600, and any WAL/shared-memory/journal file left from before is 0600 too.
 */
export function prepareDatabaseFiles(filename: string): void {
  const dir = path.dirname(path.resolve(filename));
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  closeSync(openSync(filename, 'a', FILE_MODE)); // creates it 0600 (an empty file is an empty database)
  for (const f of [filename, `${filename}-wal`, `${filename}-shm`, `${filename}-journal`]) {
    if (existsSync(f) && (statSync(f).mode & 0o777) !== FILE_MODE) chmodSync(f, FILE_MODE);
  }
}
