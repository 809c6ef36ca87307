/** Webhook endpoint semantics both stores share: new endpoints, patches and endpoint health. */
import { randomUUID } from 'node:crypto';
import type { EndpointEffect, RecordAttemptOutcome, WebhookEndpoint, WebhookPatch } from '../types.js';
import { formatDurationMs, normalizeIso } from './time.js';

/** A new, enabled endpoint as both stores insert it. */
export function newWebhookEndpoint(accountId: string, input: { url: string; secret: string; description?: string | null }): WebhookEndpoint {
  const now = new Date().toISOString();
  return {
    webhook_id: randomUUID(),
    account_id: accountId,
    url: input.url,
    secret: input.secret,
    previous_secret: null,
    previous_secret_expires_at: null,
    enabled: true,
    disabled_reason: null,
    description: input.description ?? null,
    failing_since: null,
    created_at: now,
    updated_at: now,
  };
}

/** `cur` with the fields present in `patch` applied (undefined = unchanged), dates normalised. */
export function applyWebhookPatch(cur: WebhookEndpoint, patch: WebhookPatch): WebhookEndpoint {
  const pick = <K extends keyof WebhookPatch>(k: K, fallback: WebhookEndpoint[K]) => (patch[k] !== undefined ? patch[k] : fallback) as WebhookEndpoint[K];
  return {
    ...cur,
    url: pick('url', cur.url),
    secret: pick('secret', cur.secret),
    previous_secret: pick('previous_secret', cur.previous_secret),
    previous_secret_expires_at:
      patch.previous_secret_expires_at !== undefined ? normalizeIso(patch.previous_secret_expires_at, 'previous_secret_expires_at') : cur.previous_secret_expires_at,
    enabled: pick('enabled', cur.enabled),
    disabled_reason: pick('disabled_reason', cur.disabled_reason),
    description: pick('description', cur.description),
    failing_since: patch.failing_since !== undefined ? normalizeIso(patch.failing_since, 'failing_since') : cur.failing_since,
    updated_at: new Date().toISOString(),
  };
}

/** The part of an endpoint that attempts change. */
export interface EndpointHealth {
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: string | null;
  updated_at: string;
}

/**
 * An attempt's endpoint effect applied to the endpoint as stored (see EndpointEffect). Health
 * flips (failing_since) are the dispatcher's bookkeeping and leave updated_at alone; disabling
 * is a change of configuration and sets it. An endpoint already disabled is not disabled again.
 */
export function applyEndpointEffect(cur: EndpointHealth, effect: EndpointEffect | undefined, nowIso: string): { next: EndpointHealth; disabled: RecordAttemptOutcome['disabled'] } {
  if (!effect) return { next: cur, disabled: null };
  if (effect.kind === 'healthy') return { next: cur.failing_since === null ? cur : { ...cur, failing_since: null }, disabled: null };
  if (effect.kind === 'disable') {
    if (!cur.enabled) return { next: cur, disabled: null };
    return { next: { ...cur, enabled: false, disabled_reason: effect.reason, updated_at: nowIso }, disabled: { cause: 'gone', reason: effect.reason } };
  }
  const since = cur.failing_since ?? effect.at;
  const failing = since === cur.failing_since ? cur : { ...cur, failing_since: since };
  const limit = effect.disable_after_ms;
  if (!failing.enabled || limit <= 0 || Date.parse(effect.at) - Date.parse(since) < limit) return { next: failing, disabled: null };
  const reason = `failing continuously since ${since} (longer than ${formatDurationMs(limit)})`;
  return { next: { ...failing, enabled: false, disabled_reason: reason, updated_at: nowIso }, disabled: { cause: 'failing', reason } };
}

export const sameHealth = (a: EndpointHealth, b: EndpointHealth): boolean =>
  a.enabled === b.enabled && a.disabled_reason === b.disabled_reason && a.failing_since === b.failing_since && a.updated_at === b.updated_at;
