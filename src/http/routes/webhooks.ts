/**
 * Admin API for webhook endpoints and deliveries (SPEC §3.2, docs/webhooks.md). Registered by the
 * server inside the admin-authenticated scope with prefix '/admin'.
 *
 * Secrets: the endpoint's current secret is returned by create, get, list, patch and rotate (the
 * admin API is operator-only; operators configure partners with it). The previous secret of a
 * rotation is never returned, only when it stops signing (`previous_secret_expires_at`).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../config/duration.js';
import type { Config } from '../../config/index.js';
import { EVENT_TYPES } from '@tpx-realtime/protocol';
import type { AccountStore, Delivery, DeliveryAttempt, DeliveryDetail, DeliveryQueue, WebhookEndpoint, WebhookPatch } from '../../store/types.js';
import type { WebhookDispatcher } from '../../webhooks/dispatcher.js';
import { buildWebhookRequest, type WebhookRequest } from '../../webhooks/request.js';
import { generateSecret, isValidSecret } from '../../webhooks/signing.js';
import { checkWebhookUrl, MAX_WEBHOOK_URL_LENGTH, UnsafeUrlError } from '../../webhooks/ssrf.js';
import { HttpError, notFound } from '../errors.js';
import { fieldsOf, parseBody } from '../validation.js';

export interface WebhookRoutesOptions {
  /** The delivery queue, and accounts for existence checks. */
  store: DeliveryQueue & Pick<AccountStore, 'getAccount'>;
  config: Config;
  dispatcher: Pick<WebhookDispatcher, 'notify'>;
}

const ID = /^[0-9a-zA-Z_-]{1,64}$/;
const secretSchema = z.string().refine(isValidSecret, 'must be whsec_ followed by base64 of at least 24 random bytes');
const urlSchema = z.string().trim().min(1).max(MAX_WEBHOOK_URL_LENGTH);
const description = z.string().trim().max(500).nullish();

const WebhookCreate = z.strictObject({ url: urlSchema, secret: secretSchema.optional(), description });
const WebhookUpdate = z.strictObject({ url: urlSchema.optional(), enabled: z.boolean().optional(), description });
const RotateBody = z.strictObject({
  grace_period: z
    .union([z.string(), z.number().int().nonnegative()])
    .optional()
    .refine((v) => v === undefined || typeof v === 'number' || safeDuration(v) !== null, 'must be a duration like 24h, 30m, 0'),
  secret: secretSchema.optional(),
});
const iso = z.iso.datetime({ offset: true });
const DeliveryQuery = z.object({
  account_id: z.string().regex(ID).optional(),
  webhook_id: z.string().regex(ID).optional(),
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  msg_id: z.string().min(1).max(200).optional(),
  msg_type: z.enum(EVENT_TYPES).optional(),
  since: iso.optional(),
  until: iso.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const RetryRange = z.strictObject({ since: iso.optional(), until: iso.optional() });

function safeDuration(v: string): number | null {
  try {
    return parseDuration(v);
  } catch {
    return null;
  }
}

/** Public shape of an endpoint. */
export function presentWebhook(w: WebhookEndpoint): Record<string, unknown> {
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
function presentDelivery(d: Delivery): Record<string, unknown> {
  return { ...d };
}

function presentAttempt(a: DeliveryAttempt): Record<string, unknown> {
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
function requestOf(found: DeliveryDetail, sourceId: string): WebhookRequest | null {
  if (found.event === null) return null;
  const last = found.attempts.at(-1);
  const atMs = last ? Date.parse(last.attempted_at) : Date.now();
  return buildWebhookRequest({ endpoint: found.endpoint, account: found.account, event: found.event }, atMs, sourceId);
}

function mapStoreError(err: unknown): never {
  const name = (err as Error)?.name;
  if (name === 'StoreConflictError') throw new HttpError(409, 'CONFLICT', (err as Error).message);
  if (name === 'StoreValidationError') throw new HttpError(400, 'VALIDATION_FAILED', (err as Error).message);
  throw err;
}

export const webhookAdminRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (app, opts) => {
  const { store, config, dispatcher } = opts;

  const checkUrl = async (url: string): Promise<string> => {
    try {
      return (await checkWebhookUrl(url, { allowPrivate: config.webhookAllowPrivate })).toString();
    } catch (err) {
      if (err instanceof UnsafeUrlError) throw new HttpError(400, 'UNSAFE_WEBHOOK_URL', `Webhook URL refused: ${err.message}`, { field: 'url' });
      throw err;
    }
  };
  const requireAccount = async (accountId: string) => {
    if (!ID.test(accountId)) throw notFound('Account');
    const account = await store.getAccount(accountId);
    if (!account) throw notFound('Account');
    return account;
  };
  const requireWebhook = async (webhookId: string, accountId?: string) => {
    if (!ID.test(webhookId)) throw notFound('Webhook');
    const w = await store.getWebhook(webhookId);
    if (!w || (accountId !== undefined && w.account_id !== accountId)) throw notFound('Webhook');
    return w;
  };

  // ---- endpoints

  app.post('/accounts/:account_id/webhooks', async (request, reply) => {
    const { account_id } = request.params as { account_id: string };
    await requireAccount(account_id);
    const body = parseBody(WebhookCreate, request.body);
    const url = await checkUrl(body.url);
    const created = await store
      .createWebhook(account_id, { url, secret: body.secret ?? generateSecret(), description: body.description ?? null })
      .catch(mapStoreError);
    reply.code(201);
    return presentWebhook(created);
  });

  app.get('/accounts/:account_id/webhooks', async (request) => {
    const { account_id } = request.params as { account_id: string };
    await requireAccount(account_id);
    const list = await store.listWebhooks(account_id);
    return { webhooks: list.map(presentWebhook) };
  });

  app.get('/accounts/:account_id/webhooks/:webhook_id', async (request) => {
    const { account_id, webhook_id } = request.params as { account_id: string; webhook_id: string };
    return presentWebhook(await requireWebhook(webhook_id, account_id));
  });

  app.get('/webhooks/:webhook_id', async (request) => {
    const { webhook_id } = request.params as { webhook_id: string };
    return presentWebhook(await requireWebhook(webhook_id));
  });

  // PATCH and DELETE exist at both paths (SPEC §3.2: "GET, PATCH, DELETE alike" under the
  // account). The account-scoped form answers 404 for a webhook of another account.
  type WebhookParams = { webhook_id: string; account_id?: string };

  const patchWebhook = async (request: FastifyRequest) => {
    const { webhook_id, account_id } = request.params as WebhookParams;
    const current = await requireWebhook(webhook_id, account_id);
    const body = parseBody(WebhookUpdate, request.body);
    const patch: WebhookPatch = {};
    if (body.url !== undefined) patch.url = await checkUrl(body.url);
    if (body.description !== undefined) patch.description = body.description;
    if (body.enabled === true) {
      // Re-enabling starts a fresh health record: no reason, no failure streak.
      Object.assign(patch, { enabled: true, disabled_reason: null, failing_since: null });
    } else if (body.enabled === false && current.enabled) {
      Object.assign(patch, { enabled: false, disabled_reason: 'disabled by an operator' });
    }
    const updated = await store.updateWebhook(webhook_id, patch).catch(mapStoreError);
    if (!updated) throw notFound('Webhook');
    if (updated.enabled) dispatcher.notify();
    return presentWebhook(updated);
  };

  const deleteWebhook = async (request: FastifyRequest, reply: FastifyReply) => {
    const { webhook_id, account_id } = request.params as WebhookParams;
    if (account_id !== undefined) await requireWebhook(webhook_id, account_id);
    if (!ID.test(webhook_id) || !(await store.deleteWebhook(webhook_id))) throw notFound('Webhook');
    return reply.code(204).send();
  };

  app.patch('/webhooks/:webhook_id', patchWebhook);
  app.patch('/accounts/:account_id/webhooks/:webhook_id', patchWebhook);
  app.delete('/webhooks/:webhook_id', deleteWebhook);
  app.delete('/accounts/:account_id/webhooks/:webhook_id', deleteWebhook);

  app.post('/webhooks/:webhook_id/rotate-secret', async (request) => {
    const { webhook_id } = request.params as { webhook_id: string };
    const current = await requireWebhook(webhook_id);
    const body = parseBody(RotateBody, request.body ?? {});
    const graceMs =
      body.grace_period === undefined ? config.webhookSecretGraceMs : typeof body.grace_period === 'number' ? body.grace_period : safeDuration(body.grace_period)!;
    const secret = body.secret ?? generateSecret();
    if (secret === current.secret) throw new HttpError(400, 'VALIDATION_FAILED', 'The new secret must differ from the current one', { fields: [{ field: 'secret', message: 'same as current' }] });
    const patch: WebhookPatch =
      graceMs > 0
        ? { secret, previous_secret: current.secret, previous_secret_expires_at: new Date(Date.now() + graceMs).toISOString() }
        : { secret, previous_secret: null, previous_secret_expires_at: null };
    const updated = await store.updateWebhook(webhook_id, patch).catch(mapStoreError);
    if (!updated) throw notFound('Webhook');
    return presentWebhook(updated);
  });

  // ---- deliveries

  app.get('/deliveries', async (request) => {
    const parsed = DeliveryQuery.safeParse(request.query ?? {});
    if (!parsed.success) {
      const fields = fieldsOf(parsed.error);
      throw new HttpError(400, 'VALIDATION_FAILED', `Invalid query: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
    }
    const q = parsed.data;
    const deliveries = await store.listDeliveries({ ...q, limit: q.limit ?? 100 });
    return { deliveries: deliveries.map((d) => presentDelivery(d)) };
  });

  app.get('/deliveries/:delivery_id', async (request) => {
    const { delivery_id } = request.params as { delivery_id: string };
    if (!ID.test(delivery_id)) throw notFound('Delivery');
    const found = await store.getDelivery(delivery_id);
    if (!found) throw notFound('Delivery');
    return { delivery: presentDelivery(found.delivery), attempts: found.attempts.map(presentAttempt), request: requestOf(found, config.sourceId) };
  });

  app.post('/deliveries/:delivery_id/retry', async (request, reply) => {
    const { delivery_id } = request.params as { delivery_id: string };
    if (!ID.test(delivery_id)) throw notFound('Delivery');
    const delivery = await store.retryDelivery(delivery_id);
    if (!delivery) throw notFound('Delivery');
    dispatcher.notify();
    reply.code(202);
    return presentDelivery(delivery);
  });

  app.post('/accounts/:account_id/deliveries/retry', async (request, reply) => {
    const { account_id } = request.params as { account_id: string };
    await requireAccount(account_id);
    const body = parseBody(RetryRange, request.body ?? {});
    const retried = await store.retryFailedDeliveries({ account_id, since: body.since, until: body.until });
    if (retried > 0) dispatcher.notify();
    reply.code(202);
    return { retried };
  });
};
