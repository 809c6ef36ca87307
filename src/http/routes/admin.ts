/** Admin API (SPEC §3.2): accounts, API keys and live connections. Mounted under /admin. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Bus } from '../../bus/types.js';
import type { Gateway } from '../../gateway/gateway.js';
import { ALL_ROOM, EVENT_TYPES, type EventType } from '@tpx-realtime/protocol';
import type { Store } from '../../store/types.js';
import { HttpError, mapStoreError, notFound } from '../errors.js';
import { ADMIN, ADMIN_ERRORS, BAD_BODY, BODY_ERRORS, component, dateTime, errorReply, json, noContent, pathId, type ZodTypeProvider } from '../schema.js';

const roomsSchema = z
  .array(z.enum([...EVENT_TYPES, ALL_ROOM]))
  .max(32)
  .transform((rooms): EventType[] => (rooms.includes(ALL_ROOM) ? [...EVENT_TYPES] : [...new Set(rooms as EventType[])]))
  .describe('Rooms (event types) the account may access; ALL for every one. Default: all');
const partnerId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$/, 'must be a slug of letters, digits, _ . - (max 64)')
  .describe('Slug sent as destination_id in webhook bodies (unique); null: the account_id is used');
const AccountCreate = z.strictObject({
  name: z.string().trim().min(1).max(200).nullish(),
  partner_id: partnerId.nullish(),
  rooms: roomsSchema.optional(),
});
const AccountPatch = AccountCreate;
const KeyCreate = z.strictObject({
  name: z.string().trim().min(1).max(200).nullish(),
  expires_at: z.iso.datetime({ offset: true }).nullish().describe('ISO-8601 date-time with offset; null or absent: never expires'),
});

const Account = component(
  'Account',
  z.object({
    account_id: z.string(),
    name: z.string().nullable(),
    partner_id: z.string().nullable(),
    rooms: z.array(z.enum(EVENT_TYPES)).describe('Event types the account may access'),
    created_at: dateTime(),
  }),
);
const ApiKey = component(
  'ApiKey',
  z.object({
    key_id: z.string(),
    account_id: z.string(),
    name: z.string().nullable(),
    token_prefix: z.string().describe('First characters of the token, safe to display; never the secret'),
    status: z.enum(['active', 'inactive']),
    expires_at: dateTime().nullable(),
    created_at: dateTime(),
    last_used_at: dateTime().nullable(),
  }),
  'An API key of an account; its token is shown once, when it is created',
);
const Connection = component(
  'Connection',
  z.looseObject({
    connection_id: z.string(),
    account_id: z.string().nullable(),
    account_name: z.string().nullable(),
    key_id: z.string().nullable(),
    rooms: z.array(z.string()),
    state: z.string().describe('authenticated for live connections; phase is exact'),
    phase: z.string(),
    connected_at: dateTime(),
    connected_since: dateTime(),
    last_seq: z.number().int().min(0).describe('Seq of the last event sent to it'),
    remote_address: z.string(),
    transport: z.enum(['websocket', 'sse']),
    node: z.string().describe('The node holding the connection'),
  }),
  'A live WebSocket or SSE connection',
);

const AccountParams = z.object({ account_id: pathId('Account') });
const KeyParams = z.object({ key_id: pathId('API key') });

const ACCOUNT_NOT_FOUND = errorReply('NOT_FOUND: no such account');
const KEY_NOT_FOUND = errorReply('NOT_FOUND: no such API key');

/** Translate the store's typed errors into HTTP answers without importing the implementation. */
export function adminRoutes(app: FastifyInstance, deps: { store: Store; bus: Bus; gateway: Gateway; nodeId: string }): void {
  const { store, bus, gateway } = deps;
  const routes = app.withTypeProvider<ZodTypeProvider>();

  // ---- accounts
  routes.post(
    '/accounts',
    {
      schema: {
        ...ADMIN,
        tags: ['Accounts'],
        summary: 'Create an account',
        body: AccountCreate,
        response: { 201: json('The account', Account), 400: BAD_BODY, 409: errorReply('CONFLICT: partner_id already used'), ...BODY_ERRORS, ...ADMIN_ERRORS },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const account = await store.createAccount({ name: body.name ?? null, partner_id: body.partner_id ?? null, rooms: body.rooms }).catch(mapStoreError);
      reply.code(201);
      return account;
    },
  );

  routes.get(
    '/accounts',
    {
      schema: {
        ...ADMIN,
        tags: ['Accounts'],
        summary: 'List accounts',
        querystring: z.object({
          limit: z.string().optional().describe('Most accounts (1 to 1000; a value out of range is clamped, one not a number means 100). Default 1000'),
          after: z.string().optional().describe('Cursor: the last account_id of the previous page'),
        }),
        response: { 200: json('Accounts in account_id order', z.object({ accounts: z.array(Account) })), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit ? Math.min(1000, Math.max(1, Number(q.limit) || 100)) : 1000;
      const accounts = await store.listAccounts({ limit, after: q.after });
      return { accounts };
    },
  );

  routes.get(
    '/accounts/:account_id',
    {
      schema: { ...ADMIN, tags: ['Accounts'], summary: 'Get an account', params: AccountParams, response: { 200: json('The account', Account), 404: ACCOUNT_NOT_FOUND, ...ADMIN_ERRORS } },
    },
    async (request) => {
      const { account_id } = request.params;
      const account = await store.getAccount(account_id);
      if (!account) throw notFound('Account');
      return account;
    },
  );

  routes.patch(
    '/accounts/:account_id',
    {
      schema: {
        ...ADMIN,
        tags: ['Accounts'],
        summary: 'Change an account',
        description: 'Fields absent are left as they are. Live connections follow a change of rooms at once, on every node.',
        params: AccountParams,
        body: AccountPatch,
        response: {
          200: json('The account', Account),
          400: BAD_BODY,
          404: ACCOUNT_NOT_FOUND,
          409: errorReply('CONFLICT: partner_id already used'),
          ...BODY_ERRORS,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const { account_id } = request.params;
      const body = request.body;
      const account = await store.updateAccount(account_id, body).catch(mapStoreError);
      if (!account) throw notFound('Account');
      gateway.hub.accountChanged(account);
      // Answered once every node has refreshed its view of the account (bus or access-change log).
      await gateway.accountChanged(account_id);
      return account;
    },
  );

  routes.delete(
    '/accounts/:account_id',
    {
      schema: {
        ...ADMIN,
        tags: ['Accounts'],
        summary: 'Delete an account',
        description: 'With its keys, webhooks and events; its connections are closed on every node.',
        params: AccountParams,
        response: { 204: noContent('Deleted'), 404: ACCOUNT_NOT_FOUND, ...ADMIN_ERRORS },
      },
    },
    async (request, reply) => {
      const { account_id } = request.params;
      const deleted = await store.deleteAccount(account_id);
      if (!deleted) throw notFound('Account');
      gateway.hub.accountDeleted(account_id);
      // Answered once every node has closed the account's connections (bus or access-change log).
      await gateway.accountDeleted(account_id);
      reply.code(204);
    },
  );

  // ---- api keys
  routes.post(
    '/accounts/:account_id/api-keys',
    {
      schema: {
        ...ADMIN,
        tags: ['API keys'],
        summary: 'Create an API key',
        description: 'The token is in this answer only (Cache-Control: no-store); the server keeps its hash.',
        params: AccountParams,
        body: KeyCreate,
        response: {
          201: json('The key with its token', ApiKey.extend({ token: z.string().describe('tp_live_…: shown once') })),
          400: BAD_BODY,
          404: ACCOUNT_NOT_FOUND,
          ...BODY_ERRORS,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const { account_id } = request.params;
      const body = request.body;
      if (!(await store.getAccount(account_id))) throw notFound('Account');
      const { key, token } = await store.createApiKey(account_id, {
        name: body.name ?? null,
        expires_at: body.expires_at ? new Date(body.expires_at).toISOString() : null,
      });
      reply.code(201);
      reply.header('cache-control', 'no-store');
      return { ...key, token };
    },
  );

  routes.get(
    '/accounts/:account_id/api-keys',
    {
      schema: {
        ...ADMIN,
        tags: ['API keys'],
        summary: "List an account's API keys (no tokens)",
        params: AccountParams,
        response: { 200: json('The keys', z.object({ api_keys: z.array(ApiKey) })), 404: ACCOUNT_NOT_FOUND, ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { account_id } = request.params;
      if (!(await store.getAccount(account_id))) throw notFound('Account');
      return { api_keys: await store.listApiKeys(account_id) };
    },
  );

  routes.get(
    '/api-keys/:key_id',
    { schema: { ...ADMIN, tags: ['API keys'], summary: 'Get an API key (no token)', params: KeyParams, response: { 200: json('The key', ApiKey), 404: KEY_NOT_FOUND, ...ADMIN_ERRORS } } },
    async (request) => {
      const { key_id } = request.params;
      const key = await store.getApiKey(key_id);
      if (!key) throw notFound('API key');
      return key;
    },
  );

  routes.post(
    '/api-keys/:key_id/deactivate',
    {
      schema: {
        ...ADMIN,
        tags: ['API keys'],
        summary: 'Deactivate an API key',
        description: "Answered once every node has closed the key's connections, over the bus or through the access-change log (SPEC §2.5).",
        params: KeyParams,
        response: {
          200: json('The key, and how many connections were closed', ApiKey.extend({ disconnected: z.number().int().min(0).describe('Connections closed, on every node') })),
          404: KEY_NOT_FOUND,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const { key_id } = request.params;
      const key = await store.setApiKeyStatus(key_id, 'inactive');
      if (!key) throw notFound('API key');
      // Answered once every node has closed the key's connections (bus or access-change log, SPEC §2.5).
      const disconnected = await gateway.revokeKey(key_id, key.account_id, 'inactive');
      return { ...key, disconnected };
    },
  );

  routes.post(
    '/api-keys/:key_id/activate',
    { schema: { ...ADMIN, tags: ['API keys'], summary: 'Activate an API key again', params: KeyParams, response: { 200: json('The key', ApiKey), 404: KEY_NOT_FOUND, ...ADMIN_ERRORS } } },
    async (request) => {
      const { key_id } = request.params;
      const key = await store.setApiKeyStatus(key_id, 'active');
      if (!key) throw notFound('API key');
      await gateway.keyEnabled(key_id);
      return key;
    },
  );

  routes.delete(
    '/api-keys/:key_id',
    {
      schema: {
        ...ADMIN,
        tags: ['API keys'],
        summary: 'Delete (revoke) an API key',
        description: 'Its connections are closed on every node before the answer.',
        params: KeyParams,
        response: { 204: noContent('Deleted'), 404: KEY_NOT_FOUND, ...ADMIN_ERRORS },
      },
    },
    async (request, reply) => {
      const { key_id } = request.params;
      const key = await store.deleteApiKey(key_id);
      if (!key) throw notFound('API key');
      await gateway.revokeKey(key_id, key.account_id, 'revoked');
      reply.code(204);
    },
  );

  // ---- live connections of every node (SPEC §7): each node answers over the bus
  routes.get(
    '/connections',
    {
      schema: {
        ...ADMIN,
        tags: ['Connections'],
        summary: 'List live connections of every node',
        querystring: z.object({ account_id: z.string().optional().describe("Only this account's connections") }),
        response: {
          200: json(
            'Connections of the nodes that answered within 1.5 s',
            z.object({
              connections: z.array(Connection),
              count: z.number().int().min(0),
              nodes: z.array(z.string()).describe('Nodes that answered'),
              unreachable_nodes: z.number().int().min(0).describe('Nodes known to the bus that did not answer in time'),
            }),
          ),
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { nodes, missing } = await bus.collectPresence(1500);
      // Each node describes its own connections (Connection.describe) and sends them over the bus as JSON.
      const connections = (nodes.flatMap((n) => n.connections) as z.infer<typeof Connection>[])
        .filter((c) => !q.account_id || c.account_id === q.account_id);
      return { connections, count: connections.length, nodes: nodes.map((n) => n.node), unreachable_nodes: missing };
    },
  );

  // ---- close one connection, on whichever node holds it
  routes.post(
    '/connections/:connection_id/disconnect',
    {
      schema: {
        ...ADMIN,
        tags: ['Connections'],
        summary: 'Close one connection, on whichever node holds it',
        params: z.object({ connection_id: pathId('Connection') }),
        response: { 200: json('Closed', z.object({ disconnected: z.literal(true) })), 404: errorReply('NOT_FOUND: no such live connection'), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { connection_id } = request.params;
      if (!(await gateway.disconnect(connection_id))) throw notFound('Connection');
      return { disconnected: true as const };
    },
  );
}
