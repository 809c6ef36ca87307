/**
 * Admin API for webhook endpoints and deliveries (SPEC §3.2, docs/webhooks.md). Registered by the
 * server inside the admin-authenticated scope with prefix '/admin'.
 *
 * Secrets: the endpoint's current secret is returned by create, get, list, patch and rotate (the
 * admin API is operator-only; operators configure partners with it). The previous secret of a
 * rotation is never returned, only when it stops signing (`previous_secret_expires_at`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../config/duration.js';
import type { Config } from '../../config/index.js';
import { EVENT_TYPES } from '@tpx-realtime/protocol';
import type {
  AccountStore,
  Delivery as StoredDelivery,
  DeliveryAttempt as StoredAttempt,
  DeliveryDetail as StoredDeliveryDetail,
  DeliveryQueue,
  WebhookEndpoint,
  WebhookPatch,
} from '../../store/types.js';
import type { WebhookDispatcher } from '../../webhooks/dispatcher.js';
import { buildWebhookRequest, type WebhookRequest } from '../../webhooks/request.js';
import { generateSecret, isValidSecret, SECRET_RULE } from '../../webhooks/signing.js';
import { checkWebhookUrl, MAX_WEBHOOK_URL_LENGTH, UnsafeUrlError } from '../../webhooks/ssrf.js';
import { HttpError, mapStoreError, notFound } from '../errors.js';
import { ADMIN, ADMIN_ERRORS, BAD_BODY, BODY_ERRORS, component, dateTime, errorReply, json, noContent, pathId, RESOURCE_ID, type ZodTypeProvider } from '../schema.js';

export interface WebhookRoutesOptions {
  /** The delivery queue, and accounts for existence checks. */
  store: DeliveryQueue & Pick<AccountStore, 'getAccount'>;
  config: Config;
  dispatcher: Pick<WebhookDispatcher, 'notify'>;
}

const secretSchema = z.string().refine(isValidSecret, `must be ${SECRET_RULE}`);
const urlSchema = z.string().trim().min(1).max(MAX_WEBHOOK_URL_LENGTH);
const description = z.string().trim().max(500).nullish();

const WebhookCreate = z.strictObject({
  url: urlSchema.describe('https:// (or http://) URL the deliveries are POSTed to; private and loopback addresses are refused unless TPX_WEBHOOK_ALLOW_PRIVATE'),
  secret: secretSchema.optional().describe('Signing secret: whsec_<base64> (Standard Webhooks: the key is the decoded bytes) or your own string (the key is its UTF-8 bytes); default: a new random whsec_ secret'),
  description,
});
const WebhookUpdate = z.strictObject({
  url: urlSchema.optional(),
  enabled: z.boolean().optional(),
  description,
  secret: secretSchema
    .optional()
    .describe('A new signing secret, used from the next attempt on (no grace period: POST …/rotate-secret keeps the previous one signing too for a while)'),
});
const RotateBody = z.strictObject({
  grace_period: z
    .union([z.string(), z.number().int().nonnegative()])
    .optional()
    .refine((v) => v === undefined || typeof v === 'number' || safeDuration(v) !== null, 'must be a duration like 24h, 30m, 0')
    .describe('How long the previous secret keeps signing too: a duration (24h, 30m, 0) or milliseconds; default TPX_WEBHOOK_SECRET_GRACE'),
  secret: secretSchema.optional().describe('The new secret; default: a new random one'),
});
const iso = z.iso.datetime({ offset: true });
const DeliveryQuery = z.object({
  account_id: z.string().regex(RESOURCE_ID).optional(),
  webhook_id: z.string().regex(RESOURCE_ID).optional(),
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  msg_id: z.string().min(1).max(200).optional(),
  msg_type: z.enum(EVENT_TYPES).optional(),
  since: iso.optional(),
  until: iso.optional(),
  limit: z.coerce.number<string>().int().min(1).max(1000).optional().describe('Most deliveries (default 100)'),
});
const RetryRange = z.strictObject({ since: iso.optional(), until: iso.optional() });

const Webhook = component(
  'Webhook',
  z.object({
    webhook_id: z.string(),
    account_id: z.string(),
    url: z.string(),
    secret: z.string().describe('Current signing secret (whsec_…)'),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable().describe('Why it was disabled (by an operator, after failing too long, 410 Gone)'),
    description: z.string().nullable(),
    failing_since: dateTime().nullable().describe('Start of the current run of failed attempts (null while healthy)'),
    previous_secret_expires_at: dateTime().nullable().describe('During a rotation: when the previous secret stops signing'),
    created_at: dateTime(),
    updated_at: dateTime(),
  }),
  'A webhook endpoint of an account',
);
const Delivery = component(
  'Delivery',
  z.object({
    delivery_id: z.string(),
    webhook_id: z.string(),
    webhook_url: z.string().describe("The endpoint's current URL"),
    account_id: z.string(),
    msg_id: z.string(),
    msg_type: z.enum(EVENT_TYPES),
    seq: z.number().int().min(1),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempt_count: z.number().int().min(0),
    next_attempt_at: dateTime().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: dateTime(),
    completed_at: dateTime().nullable(),
  }),
  'One event to one endpoint, retried until acknowledged or failed',
);
const DeliveryAttempt = component(
  'DeliveryAttempt',
  z.object({
    attempt_id: z.string(),
    attempted_at: dateTime(),
    status_code: z.number().int().nullable(),
    latency_ms: z.number().min(0),
    error: z.string().nullable(),
    outcome: z.enum(['succeeded', 'retry', 'failed']),
    response_excerpt: z.string().nullable().describe('The first ≤ 1 KiB of the response body'),
  }),
);
const DeliveryDetail = z.object({
  delivery: Delivery,
  attempts: z.array(DeliveryAttempt),
  request: z
    .object({ url: z.string(), headers: z.record(z.string(), z.string()), body: z.string() })
    .nullable()
    .describe('The latest attempt\'s request (or the next one), signed as sent; null once the event left the log'),
});

const AccountParams = z.object({ account_id: pathId('Account') });
const WebhookParams = z.object({ webhook_id: pathId('Webhook') });
/** Under an account: a webhook of another account (or an id that cannot exist) is not found either. */
const AccountWebhookParams = z.object({ account_id: pathId('Webhook'), webhook_id: pathId('Webhook') });
const DeliveryParams = z.object({ delivery_id: pathId('Delivery') });

const notFoundReply = (what: string) => errorReply(`NOT_FOUND: no such ${what}`);
type WebhookBody = z.infer<typeof Webhook>;

function safeDuration(v: string): number | null {
  try {
    return parseDuration(v);
  } catch {
    return null;
  }
}

/** Public shape of an endpoint. */
export function presentWebhook(w: WebhookEndpoint): WebhookBody {
  return {
    webhook_id: w.webhook_id,
    account_id: w.account_id,
    url: w.url,
    secret: w.secret,
    enabled: w.enabled,
    disabled_reason: w.disabled_reason,
    description: w.description,
    failing_since: w.failing_since,
    previous_secret_expires_at: w.previous_secret && w.previous_secret_expires_at ? w.previous_secret_expires_at : null,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}

/** Public shape of a delivery (with the endpoint's URL as `webhook_url`). */
function presentDelivery(d: StoredDelivery): z.infer<typeof Delivery> {
  return { ...d };
}

function presentAttempt(a: StoredAttempt): z.infer<typeof DeliveryAttempt> {
  return {
    attempt_id: a.attempt_id,
    attempted_at: a.attempted_at,
    status_code: a.status_code,
    latency_ms: a.latency_ms,
    error: a.error,
    outcome: a.outcome,
    response_excerpt: a.response_excerpt,
  };
}

/**
 * The request of the latest attempt, or of the next one when none was made yet: re-derived from
 * the event, the endpoint and the attempt's time exactly as the dispatcher builds it (signed with
 * the endpoint's current secrets; the secrets themselves never appear). Null once the event has
 * left the log.
 */
function requestOf(found: StoredDeliveryDetail, sourceId: string): WebhookRequest | null {
  if (found.event === null) return null;
  const last = found.attempts.at(-1);
  const atMs = last ? Date.parse(last.attempted_at) : Date.now();
  return buildWebhookRequest({ endpoint: found.endpoint, account: found.account, event: found.event }, atMs, sourceId);
}

export const webhookAdminRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (app, opts) => {
  const { store, config, dispatcher } = opts;
  const routes = app.withTypeProvider<ZodTypeProvider>();

  const checkUrl = async (url: string): Promise<string> => {
    try {
      return (await checkWebhookUrl(url, { allowPrivate: config.webhookAllowPrivate })).toString();
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new HttpError(400, 'UNSAFE_WEBHOOK_URL', `Webhook URL refused: ${err.message}`, { field: 'url' });
      throw err;
    }
  };
  // Ids in the path are checked by the route schemas (pathId): these look the resources up.
  const requireAccount = async (accountId: string) => {
    const account = await store.getAccount(accountId);
    if (!account) throw notFound('Account');
    return account;
  };
  const requireWebhook = async (webhookId: string, accountId?: string) => {
    const w = await store.getWebhook(webhookId);
    if (!w || (accountId !== undefined && w.account_id !== accountId)) throw notFound('Webhook');
    return w;
  };

  /** Store the patch; a store conflict or refusal answers 409/400, a webhook deleted meanwhile 404. */
  const updateWebhook = async (webhookId: string, patch: WebhookPatch) => {
    const updated = await store.updateWebhook(webhookId, patch).catch(mapStoreError);
    if (!updated) throw notFound('Webhook');
    return updated;
  };

  // ---- endpoints

  routes.post(
    '/accounts/:account_id/webhooks',
    {
      schema: {
        ...ADMIN,
        tags: ['Webhooks'],
        summary: 'Create a webhook endpoint',
        params: AccountParams,
        body: WebhookCreate,
        response: {
          201: json('The endpoint, with its secret', Webhook),
          400: errorReply('VALIDATION_FAILED (fields), INVALID_JSON, or UNSAFE_WEBHOOK_URL (the URL resolves to a refused address)'),
          404: notFoundReply('account'),
          409: errorReply('CONFLICT'),
          ...BODY_ERRORS,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const { account_id } = request.params;
      await requireAccount(account_id);
      const body = request.body;
      const url = await checkUrl(body.url);
      const created = await store
        .createWebhook(account_id, { url, secret: body.secret ?? generateSecret(), description: body.description ?? null })
        .catch(mapStoreError);
      reply.code(201);
      return presentWebhook(created);
    },
  );

  routes.get(
    '/accounts/:account_id/webhooks',
    {
      schema: {
        ...ADMIN,
        tags: ['Webhooks'],
        summary: "List an account's webhook endpoints",
        params: AccountParams,
        response: { 200: json('The endpoints', z.object({ webhooks: z.array(Webhook) })), 404: notFoundReply('account'), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { account_id } = request.params;
      await requireAccount(account_id);
      const list = await store.listWebhooks(account_id);
      return { webhooks: list.map(presentWebhook) };
    },
  );

  routes.get(
    '/accounts/:account_id/webhooks/:webhook_id',
    {
      schema: {
        ...ADMIN,
        tags: ['Webhooks'],
        summary: 'Get a webhook endpoint of an account',
        params: AccountWebhookParams,
        response: { 200: json('The endpoint', Webhook), 404: notFoundReply('webhook in this account'), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { account_id, webhook_id } = request.params;
      return presentWebhook(await requireWebhook(webhook_id, account_id));
    },
  );

  routes.get(
    '/webhooks/:webhook_id',
    {
      schema: { ...ADMIN, tags: ['Webhooks'], summary: 'Get a webhook endpoint', params: WebhookParams, response: { 200: json('The endpoint', Webhook), 404: notFoundReply('webhook'), ...ADMIN_ERRORS } },
    },
    async (request) => {
      const { webhook_id } = request.params;
      return presentWebhook(await requireWebhook(webhook_id));
    },
  );

  // PATCH and DELETE exist at both paths (SPEC §3.2: "GET, PATCH, DELETE alike" under the
  // account). The account-scoped form answers 404 for a webhook of another account.
  type WebhookParams = { webhook_id: string; account_id?: string };

  const patchWebhook = async ({ webhook_id, account_id }: WebhookParams, body: z.infer<typeof WebhookUpdate>) => {
    const current = await requireWebhook(webhook_id, account_id);
    const patch: WebhookPatch = {};
    if (body.url !== undefined) patch.url = await checkUrl(body.url);
    if (body.description !== undefined) patch.description = body.description;
    if (body.secret !== undefined && body.secret !== current.secret) {
      Object.assign(patch, { secret: body.secret, previous_secret: null, previous_secret_expires_at: null });
    }
    if (body.enabled === true) {
      // Re-enabling starts a fresh health record: no reason, no failure streak.
      Object.assign(patch, { enabled: true, disabled_reason: null, failing_since: null });
    } else if (body.enabled === false && current.enabled) {
      Object.assign(patch, { enabled: false, disabled_reason: 'disabled by an operator' });
    }
    const updated = await updateWebhook(webhook_id, patch);
    if (updated.enabled) dispatcher.notify();
    return presentWebhook(updated);
  };

  const deleteWebhook = async ({ webhook_id, account_id }: WebhookParams): Promise<void> => {
    if (account_id !== undefined) await requireWebhook(webhook_id, account_id);
    if (!(await store.deleteWebhook(webhook_id))) throw notFound('Webhook');
  };

  const patchSchema = {
    ...ADMIN,
    tags: ['Webhooks'],
    summary: 'Change a webhook endpoint',
    description: 'enabled: true re-enables it with a fresh health record; url is checked as on create.',
    body: WebhookUpdate,
    response: {
      200: json('The endpoint', Webhook),
      400: errorReply('VALIDATION_FAILED (fields), INVALID_JSON, or UNSAFE_WEBHOOK_URL'),
      404: notFoundReply('webhook'),
      ...BODY_ERRORS,
      ...ADMIN_ERRORS,
    },
  };
  const deleteSchema = { ...ADMIN, tags: ['Webhooks'], summary: 'Delete a webhook endpoint', response: { 204: noContent('Deleted'), 404: notFoundReply('webhook'), ...ADMIN_ERRORS } };
  routes.patch('/webhooks/:webhook_id', { schema: { ...patchSchema, params: WebhookParams } }, async (request) => patchWebhook(request.params, request.body));
  routes.patch('/accounts/:account_id/webhooks/:webhook_id', { schema: { ...patchSchema, params: AccountWebhookParams } }, async (request) =>
    patchWebhook(request.params, request.body),
  );
  routes.delete('/webhooks/:webhook_id', { schema: { ...deleteSchema, params: WebhookParams } }, async (request, reply) => {
    await deleteWebhook(request.params);
    reply.code(204);
  });
  routes.delete('/accounts/:account_id/webhooks/:webhook_id', { schema: { ...deleteSchema, params: AccountWebhookParams } }, async (request, reply) => {
    await deleteWebhook(request.params);
    reply.code(204);
  });

  routes.post(
    '/webhooks/:webhook_id/rotate-secret',
    {
      schema: {
        ...ADMIN,
        tags: ['Webhooks'],
        summary: "Rotate a webhook endpoint's signing secret",
        description: 'During the grace period deliveries carry two signatures, with the new and the previous secret.',
        params: WebhookParams,
        body: RotateBody,
        response: { 200: json('The endpoint, with its new secret', Webhook), 400: BAD_BODY, 404: notFoundReply('webhook'), ...BODY_ERRORS, ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { webhook_id } = request.params;
      const current = await requireWebhook(webhook_id);
      const body = request.body;
      const graceMs =
        body.grace_period === undefined ? config.webhookSecretGraceMs : typeof body.grace_period === 'number' ? body.grace_period : safeDuration(body.grace_period)!;
      const secret = body.secret ?? generateSecret();
      if (secret === current.secret) throw new HttpError(400, 'VALIDATION_FAILED', 'The new secret must differ from the current one', { fields: [{ field: 'secret', message: 'same as current' }] });
      const patch: WebhookPatch =
        graceMs > 0
          ? { secret, previous_secret: current.secret, previous_secret_expires_at: new Date(Date.now() + graceMs).toISOString() }
          : { secret, previous_secret: null, previous_secret_expires_at: null };
      return presentWebhook(await updateWebhook(webhook_id, patch));
    },
  );

  // ---- deliveries

  routes.get(
    '/deliveries',
    {
      schema: {
        ...ADMIN,
        tags: ['Deliveries'],
        summary: 'List webhook deliveries',
        querystring: DeliveryQuery,
        response: {
          200: json('Deliveries, newest first', z.object({ deliveries: z.array(Delivery) })),
          400: errorReply('VALIDATION_FAILED: a query parameter is invalid (fields)'),
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const deliveries = await store.listDeliveries({ ...q, limit: q.limit ?? 100 });
      return { deliveries: deliveries.map(presentDelivery) };
    },
  );

  routes.get(
    '/deliveries/:delivery_id',
    {
      schema: {
        ...ADMIN,
        tags: ['Deliveries'],
        summary: 'Get a delivery with its attempts and its request',
        params: DeliveryParams,
        response: { 200: json('The delivery', DeliveryDetail), 404: notFoundReply('delivery'), ...ADMIN_ERRORS },
      },
    },
    async (request) => {
      const { delivery_id } = request.params;
      const found = await store.getDelivery(delivery_id);
      if (!found) throw notFound('Delivery');
      return { delivery: presentDelivery(found.delivery), attempts: found.attempts.map(presentAttempt), request: requestOf(found, config.sourceId) };
    },
  );

  routes.post(
    '/deliveries/:delivery_id/retry',
    {
      schema: {
        ...ADMIN,
        tags: ['Deliveries'],
        summary: 'Retry a delivery now',
        description: 'A failed (or pending) delivery is attempted again at once, with a fresh attempt schedule.',
        params: DeliveryParams,
        response: { 202: json('Queued', Delivery), 404: notFoundReply('delivery'), ...ADMIN_ERRORS },
      },
    },
    async (request, reply) => {
      const { delivery_id } = request.params;
      const delivery = await store.retryDelivery(delivery_id);
      if (!delivery) throw notFound('Delivery');
      dispatcher.notify();
      reply.code(202);
      return presentDelivery(delivery);
    },
  );

  routes.post(
    '/accounts/:account_id/deliveries/retry',
    {
      schema: {
        ...ADMIN,
        tags: ['Deliveries'],
        summary: "Retry an account's failed deliveries",
        description: 'Every failed delivery of the account created in [since, until) is queued again.',
        params: AccountParams,
        body: RetryRange,
        response: {
          202: json('Queued', z.object({ retried: z.number().int().min(0).describe('Deliveries queued again') })),
          400: BAD_BODY,
          404: notFoundReply('account'),
          ...BODY_ERRORS,
          ...ADMIN_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const { account_id } = request.params;
      await requireAccount(account_id);
      const body = request.body;
      const retried = await store.retryFailedDeliveries({ account_id, since: body.since, until: body.until });
      if (retried > 0) dispatcher.notify();
      reply.code(202);
      return { retried };
    },
  );
};
