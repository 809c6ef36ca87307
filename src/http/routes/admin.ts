/** Admin API (SPEC §3.2): accounts, API keys and live connections. Mounted under /admin. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Bus } from '../../bus/types.js';
import type { Gateway } from '../../gateway/gateway.js';
import { ALL_ROOM, EVENT_TYPES, type EventType } from '@tpx-realtime/protocol';
import type { Store } from '../../store/types.js';
import { HttpError, notFound } from '../errors.js';
import { parseBody } from '../validation.js';

const roomsSchema = z
  .array(z.enum([...EVENT_TYPES, ALL_ROOM]))
  .max(32)
  .transform((rooms): EventType[] => (rooms.includes(ALL_ROOM) ? [...EVENT_TYPES] : [...new Set(rooms as EventType[])]));
const partnerId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$/, 'must be a slug of letters, digits, _ . - (max 64)');
const AccountCreate = z.strictObject({
  name: z.string().trim().min(1).max(200).nullish(),
  partner_id: partnerId.nullish(),
  rooms: roomsSchema.optional(),
});
const AccountPatch = AccountCreate;
const KeyCreate = z.strictObject({
  name: z.string().trim().min(1).max(200).nullish(),
  expires_at: z.iso.datetime({ offset: true }).nullish(),
});
const UUIDish = /^[0-9a-zA-Z_-]{1,64}$/;

/** Translate the store's typed errors into HTTP answers without importing the implementation. */
function mapStoreError(err: unknown): never {
  const name = (err as Error)?.name;
  if (name === 'StoreConflictError') throw new HttpError(409, 'CONFLICT', (err as Error).message);
  if (name === 'StoreValidationError') throw new HttpError(400, 'VALIDATION_FAILED', (err as Error).message);
  throw err;
}

export function adminRoutes(app: FastifyInstance, deps: { store: Store; bus: Bus; gateway: Gateway; nodeId: string }): void {
  const { store, bus, gateway } = deps;
  const requireId = (id: string, what: string) => {
    if (!UUIDish.test(id)) throw notFound(what);
  };

  // ---- accounts
  app.post('/accounts', async (request, reply) => {
    const body = parseBody(AccountCreate, request.body);
    const account = await store.createAccount({ name: body.name ?? null, partner_id: body.partner_id ?? null, rooms: body.rooms }).catch(mapStoreError);
    reply.code(201);
    return account;
  });

  app.get('/accounts', async (request) => {
    const q = request.query as { limit?: string; after?: string };
    const limit = q.limit ? Math.min(1000, Math.max(1, Number(q.limit) || 100)) : 1000;
    const accounts = await store.listAccounts({ limit, after: q.after });
    return { accounts };
  });

  app.get('/accounts/:account_id', async (request) => {
    const { account_id } = request.params as { account_id: string };
    requireId(account_id, 'Account');
    const account = await store.getAccount(account_id);
    if (!account) throw notFound('Account');
    return account;
  });

  app.patch('/accounts/:account_id', async (request) => {
    const { account_id } = request.params as { account_id: string };
    requireId(account_id, 'Account');
    const body = parseBody(AccountPatch, request.body);
    const account = await store.updateAccount(account_id, body).catch(mapStoreError);
    if (!account) throw notFound('Account');
    gateway.hub.accountChanged(account);
    // Answered once every node has refreshed its view of the account (bus or access-change log).
    await gateway.accountChanged(account_id);
    return account;
  });

  app.delete('/accounts/:account_id', async (request, reply) => {
    const { account_id } = request.params as { account_id: string };
    requireId(account_id, 'Account');
    const deleted = await store.deleteAccount(account_id);
    if (!deleted) throw notFound('Account');
    gateway.hub.accountDeleted(account_id);
    // Answered once every node has closed the account's connections (bus or access-change log).
    await gateway.accountDeleted(account_id);
    reply.code(204);
  });

  // ---- api keys
  app.post('/accounts/:account_id/api-keys', async (request, reply) => {
    const { account_id } = request.params as { account_id: string };
    requireId(account_id, 'Account');
    const body = parseBody(KeyCreate, request.body);
    if (!(await store.getAccount(account_id))) throw notFound('Account');
    const { key, token } = await store.createApiKey(account_id, {
      name: body.name ?? null,
      expires_at: body.expires_at ? new Date(body.expires_at).toISOString() : null,
    });
    reply.code(201);
    reply.header('cache-control', 'no-store');
    return { ...key, token };
  });

  app.get('/accounts/:account_id/api-keys', async (request) => {
    const { account_id } = request.params as { account_id: string };
    requireId(account_id, 'Account');
    if (!(await store.getAccount(account_id))) throw notFound('Account');
    return { api_keys: await store.listApiKeys(account_id) };
  });

  app.get('/api-keys/:key_id', async (request) => {
    const { key_id } = request.params as { key_id: string };
    requireId(key_id, 'API key');
    const key = await store.getApiKey(key_id);
    if (!key) throw notFound('API key');
    return key;
  });

  app.post('/api-keys/:key_id/deactivate', async (request) => {
    const { key_id } = request.params as { key_id: string };
    requireId(key_id, 'API key');
    const key = await store.setApiKeyStatus(key_id, 'inactive');
    if (!key) throw notFound('API key');
    // Answered once every node has closed the key's connections (bus or access-change log, SPEC §2.5).
    const disconnected = await gateway.revokeKey(key_id, key.account_id, 'inactive');
    return { ...key, disconnected };
  });

  app.post('/api-keys/:key_id/activate', async (request) => {
    const { key_id } = request.params as { key_id: string };
    requireId(key_id, 'API key');
    const key = await store.setApiKeyStatus(key_id, 'active');
    if (!key) throw notFound('API key');
    await gateway.keyEnabled(key_id);
    return key;
  });

  app.delete('/api-keys/:key_id', async (request, reply) => {
    const { key_id } = request.params as { key_id: string };
    requireId(key_id, 'API key');
    const key = await store.deleteApiKey(key_id);
    if (!key) throw notFound('API key');
    await gateway.revokeKey(key_id, key.account_id, 'revoked');
    reply.code(204);
  });

  // ---- live connections of every node (SPEC §7): each node answers over the bus
  app.get('/connections', async (request) => {
    const q = request.query as { account_id?: string };
    const { nodes, missing } = await bus.collectPresence(1500);
    const connections = nodes
      .flatMap((n) => n.connections)
      .filter((c) => !q.account_id || c.account_id === q.account_id);
    return { connections, count: connections.length, nodes: nodes.map((n) => n.node), unreachable_nodes: missing };
  });

  // ---- close one connection, on whichever node holds it
  app.post('/connections/:connection_id/disconnect', async (request) => {
    const { connection_id } = request.params as { connection_id: string };
    requireId(connection_id, 'Connection');
    if (!(await gateway.disconnect(connection_id))) throw notFound('Connection');
    return { disconnected: true };
  });
}
