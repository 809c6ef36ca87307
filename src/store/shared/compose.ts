/**
 * How a backend presents its aggregates as one Store without a page of one-line delegations:
 * each aggregate is its own object (one file each), and the store object exposes their methods,
 * bound, under the seam's names. The member lists are checked against the interfaces at
 * compile time, so an aggregate cannot forget a method or gain a stray one.
 */
import type { AccountStore, DeliveryQueue, EventLog } from '../types.js';

type Exhaustive<I, L extends readonly (keyof I)[]> = [Exclude<keyof I, L[number]>] extends [never] ? L : never;

const exhaustive =
  <I>() =>
  <const L extends readonly (keyof I)[]>(list: Exhaustive<I, L>): L =>
    list;

export const ACCOUNT_STORE_MEMBERS = exhaustive<AccountStore>()([
  'createAccount',
  'getAccount',
  'listAccounts',
  'updateAccount',
  'deleteAccount',
  'createApiKey',
  'listApiKeys',
  'getApiKey',
  'setApiKeyStatus',
  'deleteApiKey',
  'lookupToken',
  'forgetCachedAuth',
  'getSetting',
  'setSettingIfAbsent',
]);

export const EVENT_LOG_MEMBERS = exhaustive<EventLog>()(['appendEvents', 'readEvents', 'pruneEvents', 'onLateCommit']);

export const DELIVERY_QUEUE_MEMBERS = exhaustive<DeliveryQueue>()([
  'createWebhook',
  'listWebhooks',
  'getWebhook',
  'updateWebhook',
  'deleteWebhook',
  'listDeliveries',
  'getDelivery',
  'claimDueDeliveries',
  'recordAttempts',
  'retryDelivery',
  'retryFailedDeliveries',
  'nextDueAt',
  'deliveryCounts',
]);

/** Define `members` of `part` on `target`, bound to `part`. */
export function expose<P extends object>(target: object, part: P, members: readonly (keyof P)[]): void {
  for (const name of members) {
    const fn = part[name];
    if (typeof fn !== 'function') throw new Error(`store part lacks ${String(name)}`);
    Object.defineProperty(target, name, { value: fn.bind(part), enumerable: false, configurable: true, writable: true });
  }
}

/** Expose the three aggregates on a store object. */
export function exposeAggregates(target: object, parts: { accounts: AccountStore; log: EventLog; deliveries: DeliveryQueue }): void {
  expose(target, parts.accounts, ACCOUNT_STORE_MEMBERS);
  expose(target, parts.log, EVENT_LOG_MEMBERS);
  expose(target, parts.deliveries, DELIVERY_QUEUE_MEMBERS);
}
