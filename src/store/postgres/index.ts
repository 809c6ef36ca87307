export { PostgresStore, type PostgresStoreOptions } from './store.js';
export { MIGRATIONS, LATEST_SCHEMA_VERSION } from './schema.js';
