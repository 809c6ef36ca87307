/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the routes' own schemas
 * (src/http/schema.ts): @fastify/swagger walks the routes, fastify-type-provider-zod turns their
 * zod schemas into JSON Schema 2020-12. Served at `GET /openapi.json` and written to
 * docs/openapi.json by `npm run openapi` (a test fails when the two differ).
 *
 * Built on demand, off the start-up path: the app only records its routes as they are added
 * (the document's libraries, YAML included, cost tens of milliseconds to load); the first
 * request of the document replays them into a scratch Fastify instance that carries
 * @fastify/swagger, and the result is kept.
 */
import type { FastifyInstance, HTTPMethods, RouteOptions } from 'fastify';
import type { jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { z } from 'zod';

export const OPENAPI_PATH = '/openapi.json';

const TAGS = [
  { name: 'Partner', description: "A partner's own event log, read with its API key: the HTTP page read and the Server-Sent Events stream (SPEC §2.8, §2.10)" },
  { name: 'Publish', description: 'Used by platform services to publish events (SPEC §3.1), with the admin token' },
  { name: 'Accounts', description: 'Admin API: accounts (SPEC §3.2)' },
  { name: 'API keys', description: 'Admin API: API keys of an account (SPEC §3.2)' },
  { name: 'Webhooks', description: 'Admin API: webhook endpoints (SPEC §3.2, §4; docs/webhooks.md)' },
  { name: 'Deliveries', description: 'Admin API: webhook deliveries and their attempts (SPEC §3.2, §4)' },
  { name: 'Connections', description: 'Admin API: live WebSocket and SSE connections of every node (SPEC §3.2, §7)' },
  { name: 'Operator', description: 'Admin API used by the operator console (docs/console.md)' },
  { name: 'Operations', description: 'Health, readiness, metrics and this document (SPEC §3.3)' },
];

const DESCRIPTION = [
  'The HTTP interfaces of tpx-realtime (SPEC.md §3), all on the port that also serves the WebSocket `/ws` (docs/asyncapi.yaml).',
  '',
  'JSON in and out. Every error is an HTTP status with `{ "error": "<text>", "code": "<CODE>" }` and, for some codes,',
  'more fields (`fields` for VALIDATION_FAILED and PAYLOAD_TOO_LARGE, `rooms` for INVALID_ROOM, `account_ids` for UNKNOWN_ACCOUNT).',
  '',
  'Generated from the route schemas (src/http/routes/*.ts) by `npm run openapi`; the server serves the same document at `GET /openapi.json`.',
].join('\n');

interface RecordedRoute {
  method: HTTPMethods | HTTPMethods[];
  url: string;
  schema: RouteOptions['schema'];
}

/**
 * Records every route as it is added, and serves the document. Call before any route is added.
 * A route that declares neither its replies nor `hide: true` is refused at start-up: nothing
 * reaches the API undocumented.
 */
export function registerOpenApi(app: FastifyInstance): void {
  const routes: RecordedRoute[] = [];
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { hide?: boolean; response?: unknown } | undefined;
    if (!schema?.hide && !schema?.response) {
      throw new Error(`${String(route.method)} ${route.url} declares no schema: every route declares its replies (src/http/schema.ts), or hide: true`);
    }
    // HEAD twins of GET routes are Fastify's doing, not operations of their own.
    if (route.method !== 'HEAD') routes.push({ method: route.method, url: route.url, schema: route.schema });
  });
  let document: Promise<Document> | null = null;
  app.get(
    OPENAPI_PATH,
    {
      schema: {
        tags: ['Operations'],
        summary: 'This document (OpenAPI 3.1)',
        response: { 200: { description: 'The OpenAPI document', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } } },
      },
    },
    async () => {
      // Built once, on first use; a failed build is tried again on the next request.
      document ??= buildDocument(routes).catch((err: unknown) => {
        document = null;
        throw err;
      });
      return (await document) as { openapi: string };
    },
  );
}

async function buildDocument(routes: readonly RecordedRoute[]): Promise<Document> {
  const [{ default: Fastify }, { default: fastifySwagger }, { jsonSchemaTransform, jsonSchemaTransformObject }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('fastify-type-provider-zod'),
  ]);
  const scratch = Fastify({ logger: false });
  // Nothing is served here: the schemas are only read.
  scratch.setValidatorCompiler(() => () => true);
  scratch.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await scratch.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'tpx-realtime HTTP API', version: '0.1.0', description: DESCRIPTION },
      servers: [{ url: 'http://localhost:8080', description: '`tpx serve` defaults (https:// with TPX_TLS_CERT/TPX_TLS_KEY)' }],
      tags: TAGS,
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token (TPX_ADMIN_TOKEN): publish and admin APIs' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: "A partner's API key (tp_live_…)" },
          apiKeyQuery: {
            type: 'apiKey',
            in: 'query',
            name: 'api_key',
            description: "A partner's API key as a query parameter, for clients that cannot send headers (EventSource); never logged",
          },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: (documentObject) => tidy(jsonSchemaTransformObject(documentObject)),
  });
  for (const route of routes) scratch.route({ ...route, exposeHeadRoute: false, handler: async () => null });
  await scratch.ready();
  try {
    return scratch.swagger() as Document;
  } finally {
    await scratch.close();
  }
}

type Document = ReturnType<typeof jsonSchemaTransformObject>;

/**
 * fastify-type-provider-zod emits every registered component twice (`X` for replies, `XInput`
 * for requests), used or not. Keep one where both are the same, and only those the paths use.
 */
function tidy(doc: Document): Document {
  const { components, ...rest } = doc as Document & { components?: { schemas?: Record<string, unknown> } };
  const schemas = components?.schemas ?? {};
  // `XInput` becomes `X` where the replies do not use a different `X`.
  const before = referenced(rest, schemas);
  const rename = new Map<string, string>();
  for (const name of before) {
    const plain = name.endsWith('Input') ? name.slice(0, -'Input'.length) : null;
    if (plain && (!before.has(plain) || JSON.stringify(schemas[name]) === JSON.stringify(schemas[plain]))) rename.set(name, plain);
  }
  const renamed = rewriteRefs(rest, rename) as typeof rest;
  const merged = rewriteRefs(schemas, rename) as Record<string, unknown>;
  for (const [from, to] of rename) merged[to] = merged[from];
  const used = referenced(renamed, merged);
  const kept = Object.fromEntries(Object.keys(merged).sort().filter((n) => used.has(n)).map((n) => [n, merged[n]]));
  return { ...renamed, components: { ...components, schemas: kept } } as Document;
}

/** Component names reachable from the paths (through other components too). */
function referenced(doc: object, schemas: Record<string, unknown>): Set<string> {
  const used = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        const name = v.slice('#/components/schemas/'.length);
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(v);
    }
  };
  visit((doc as { paths?: unknown }).paths);
  return used;
}

function rewriteRefs(value: unknown, rename: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, rename));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        const name = v.slice('#/components/schemas/'.length);
        return [k, `#/components/schemas/${rename.get(name) ?? name}`];
      }
      return [k, rewriteRefs(v, rename)];
    }),
  );
}
