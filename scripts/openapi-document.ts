/**
 * The OpenAPI document as a running server serves it (`GET /openapi.json`), formatted as
 * docs/openapi.json holds it. Shared by `npm run openapi` and the test that keeps the file in sync.
 */
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { OPENAPI_PATH } from '../src/http/openapi.js';
import { startServer } from '../src/server.js';

export async function fetchOpenApiDocument(dataDir: string): Promise<string> {
  const config = loadConfig({ TPX_DATA_DIR: dataDir, TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: 'tpx_admin_openapi_export_token' });
  const server = await startServer(config, { logger: pino({ level: 'silent' }) });
  try {
    const res = await fetch(server.url + OPENAPI_PATH);
    if (res.status !== 200) throw new Error(`GET ${OPENAPI_PATH} answered ${res.status}: ${await res.text()}`);
    return `${JSON.stringify(await res.json(), null, 2)}\n`;
  } finally {
    await server.close();
  }
}
