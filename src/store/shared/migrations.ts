/** Forward-only migrations, the same rule for both stores' schemas. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** The migrations to apply to a database at version `current`; refuses a schema newer than this build. */
export function pendingMigrations(current: number, migrations: readonly Migration[]): Migration[] {
  const latest = migrations.length ? migrations[migrations.length - 1].version : 0;
  if (current > latest) throw new Error(`Database schema version ${current} is newer than this build supports (${latest}); upgrade tpx-realtime`);
  return migrations.filter((m) => m.version > current);
}
