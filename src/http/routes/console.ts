/**
 * The operator web console (docs/console.md): static files from the repository's `console/`
 * directory, served at `GET /console` and `GET /console/<file>`.
 *
 * - Only the whitelisted files below are served; any other name is a 404, so there is no path
 *   to traverse (the request never reaches the file system with a user-chosen name).
 * - The static files need no authentication: they hold no data. Every data call the page makes
 *   carries the operator's admin token (`Authorization: Bearer …`), kept in sessionStorage.
 * - `Content-Security-Policy: default-src 'self'` forbids inline scripts/styles and any foreign
 *   origin, so even a rendering bug cannot turn stored data into script.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from '../schema.js';

/** Served files and their content types: add a file here when you add it to console/. */
const FILES: ReadonlyMap<string, string> = new Map([
  ['index.html', 'text/html; charset=utf-8'],
  ['console.css', 'text/css; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['api.js', 'text/javascript; charset=utf-8'],
  ['dom.js', 'text/javascript; charset=utf-8'],
  ['accounts.js', 'text/javascript; charset=utf-8'],
  ['connections.js', 'text/javascript; charset=utf-8'],
  ['deliveries.js', 'text/javascript; charset=utf-8'],
  ['overview.js', 'text/javascript; charset=utf-8'],
  ['chart.js', 'text/javascript; charset=utf-8'],
  ['tail.js', 'text/javascript; charset=utf-8'],
  ['send.js', 'text/javascript; charset=utf-8'],
  ['favicon.svg', 'image/svg+xml'],
]);

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Small files that change with deploys: always revalidate, never serve a stale console.
  'cache-control': 'no-cache',
} as const;

/**
 * The `console/` directory: `src/http/routes` (tsx) is three levels below the repository root,
 * `dist/src/http/routes` (built) four.
 */
export function consoleDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../console'), path.resolve(here, '../../../../console')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? candidates[0];
}

export function consoleRoutes(app: FastifyInstance, opts: { dir?: string } = {}): void {
  const dir = opts.dir ?? consoleDir();

  const send = async (reply: FastifyReply, name: string) => {
    const type = FILES.get(name);
    if (!type) {
      reply.code(404).headers(SECURITY_HEADERS);
      return { error: 'No such console file', code: 'NOT_FOUND' };
    }
    let body: Buffer;
    try {
      body = await readFile(path.join(dir, name));
    } catch {
      reply.code(404).headers(SECURITY_HEADERS);
      return { error: 'Console file missing from this installation', code: 'NOT_FOUND' };
    }
    reply.headers(SECURITY_HEADERS).type(type);
    return reply.send(body);
  };

  // Static files for people, not an API: left out of the OpenAPI document.
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const hidden = { schema: { hide: true } };
  // A person who opens the server's address lands in the console (the APIs live under /v1, /admin).
  routes.get('/', hidden, (_request, reply) => reply.redirect('/console', 302));
  routes.get('/console', hidden, (_request, reply) => send(reply, 'index.html'));
  routes.get('/console/', hidden, (_request, reply) => send(reply, 'index.html'));
  routes.get('/console/:file', { schema: { hide: true, params: z.object({ file: z.string() }) } }, (request, reply) => send(reply, request.params.file));
}
