/**
 * The Store seam (DESIGN.md): the only source of truth. Two implementations share this
 * interface: embedded SQLite (default) and PostgreSQL (shared, multi-node). Callers never
 * see SQL. Every method is async so that a network-backed store fits without touching callers.
 */
import type { EventType } from '@tpx-realtime/protocol';

export interface Account {
  account_id: string;
  name: string | null;
  /** Slug used as `destination_id` in webhook bodies; falls back to account_id when null. */
  partner_id: string | null;
  /** Event types this account may access (default: all 11). */
  rooms: EventType[];
  created_at: string;
}

export type ApiKeyStatus = 'active' | 'inactive';

export interface ApiKey {
  key_id: string;
  account_id: string;
  name: string | null;
  /** First characters of the token (e.g. `tp_live_AbC1`), safe to display; never the secret. */
  token_prefix: string;
  status: ApiKeyStatus;
  expires_at: string | null;
  created_at: string;
  last_used_at: string | null;
}

/** Outcome of resolving a presented token. */
export type KeyLookup =
  | { ok: true; key: ApiKey; account: Account }
  | { ok: false; reason: 'invalid' | 'inactive' | 'expired' };

export interface NewEvent {
  msg_id: string;
  msg_type: EventType;
  /** The payload already serialized once, exactly as it goes on the wire. */
  payload_json: string;
  source_id: string | null;
  /** Accounts the event is addressed to, or 'broadcast' for every account that may access the type. */
  target: string[] | 'broadcast';
  /** Epoch milliseconds at acceptance. */
  created_at_ms: number;
}

/** One event as it exists in one account's stream. */
export interface AccountEvent {
  account_id: string;
  seq: number;
  msg_id: string;
  msg_type: EventType;
  payload_json: string;
  source_id: string | null;
  created_at_ms: number;
}

export interface AppendResult {
  msg_id: string;
  /** Number of accounts the event is delivered to (addressed and allowed to access the type). */
  recipients: number;
  /** True when msg_id had been accepted before: nothing new was stored or should be delivered. */
  duplicate: boolean;
  /** The per-account copies created by this append (empty when duplicate). */
  events: AccountEvent[];
  /** Number of webhook deliveries created in the same transaction. */
  deliveries: number;
}

export class UnknownAccountsError extends Error {
  constructor(readonly accountIds: string[]) {
    super(`Unknown account ids: ${accountIds.join(', ')}`);
    this.name = 'UnknownAccountsError';
  }
}

/** Input the store refuses (unknown event type in rooms, malformed date, unknown account…). */
export class StoreValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreValidationError';
  }
}

/** A uniqueness rule would be broken (e.g. partner_id already used by another account). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}

export interface ReadEventsQuery {
  account_id: string;
  after_seq: number;
  /** Restrict to these types; null means every type. */
  types: ReadonlySet<EventType> | null;
  limit: number;
}

export interface ReadEventsResult {
  events: AccountEvent[];
  /** Highest seq ever pruned from this account's log (0 when nothing was pruned). */
  pruned_through: number;
  /** Highest seq currently assigned in this account's stream. */
  last_seq: number;
}

// ---------- webhooks ----------

export interface WebhookEndpoint {
  webhook_id: string;
  account_id: string;
  url: string;
  /** Current signing secret (`whsec_…`). */
  secret: string;
  /** During rotation: the previous secret, still signing until previous_secret_expires_at. */
  previous_secret: string | null;
  previous_secret_expires_at: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  description: string | null;
  /** When the current unbroken run of failures began (null while healthy); drives auto-disable. */
  failing_since: string | null;
  created_at: string;
  updated_at: string;
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface Delivery {
  delivery_id: string;
  webhook_id: string;
  account_id: string;
  msg_id: string;
  msg_type: EventType;
  seq: number;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  completed_at: string | null;
}

export interface DeliveryAttempt {
  attempt_id: string;
  delivery_id: string;
  attempted_at: string;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  outcome: 'succeeded' | 'retry' | 'failed';
}

/** A due delivery handed to one dispatcher under a lease, with everything needed to send it. */
export interface ClaimedDelivery {
  delivery: Delivery;
  endpoint: WebhookEndpoint;
  account: Pick<Account, 'account_id' | 'partner_id'>;
  event: AccountEvent;
}

/** What the dispatcher decided after one attempt. */
export type AttemptResolution =
  | { status: 'succeeded' }
  | { status: 'pending'; next_attempt_at: string }
  | { status: 'failed' };

/** One attempt to record with `Store.recordAttempts` (same fields as `recordAttempt`'s arguments). */
export interface RecordAttemptItem {
  deliveryId: string;
  owner: string;
  attempt: Omit<DeliveryAttempt, 'attempt_id' | 'delivery_id'>;
  resolution: AttemptResolution;
}

export interface AccountPatch {
  name?: string | null;
  partner_id?: string | null;
  rooms?: EventType[];
}

export interface WebhookPatch {
  url?: string;
  enabled?: boolean;
  disabled_reason?: string | null;
  description?: string | null;
  secret?: string;
  previous_secret?: string | null;
  previous_secret_expires_at?: string | null;
  failing_since?: string | null;
}

/**
 * The store. Webhook dispatch needs more than CRUD (claiming due deliveries with a lease,
 * recording attempts); those methods live on the same interface below so one transaction
 * boundary covers "event + its deliveries" (SPEC §4: persisted before 202).
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Create tables / run migrations. Idempotent; safe when several nodes start at once. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Cheap round-trip used by /readyz. */
  ping(): Promise<void>;

  // settings (admin token hash and similar node-independent values)
  getSetting(key: string): Promise<string | null>;
  setSettingIfAbsent(key: string, value: string): Promise<string>;

  // accounts
  createAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Promise<Account>;
  getAccount(accountId: string): Promise<Account | null>;
  listAccounts(opts?: { limit?: number; after?: string }): Promise<Account[]>;
  updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null>;
  /** Deletes the account with its keys, webhooks, events and deliveries. */
  deleteAccount(accountId: string): Promise<boolean>;

  // api keys
  /** Returns the key record and the plain token (the only time it exists outside the caller). */
  createApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): Promise<{ key: ApiKey; token: string }>;
  listApiKeys(accountId: string): Promise<ApiKey[]>;
  getApiKey(keyId: string): Promise<ApiKey | null>;
  setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null>;
  /** Revoke = delete: the token can never authenticate again. */
  deleteApiKey(keyId: string): Promise<ApiKey | null>;
  /** Resolve a presented token (hash lookup + constant-time compare). `now` decides expiry. */
  lookupToken(token: string, now?: Date): Promise<KeyLookup>;

  // event log
  /** One transaction: idempotency check, per-account seq, event log rows, webhook deliveries. */
  appendEvent(event: NewEvent): Promise<AppendResult>;
  /** Same as appendEvent for many events in one transaction (batch publish). Throws UnknownAccountsError without storing anything. */
  appendEvents(events: NewEvent[]): Promise<AppendResult[]>;
  readEvents(query: ReadEventsQuery): Promise<ReadEventsResult>;
  /** Delete events older than the cutoff; returns how many account-event rows were removed. */
  pruneEvents(olderThanMs: number): Promise<number>;

  // webhook endpoints
  createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint>;
  listWebhooks(accountId: string): Promise<WebhookEndpoint[]>;
  getWebhook(webhookId: string): Promise<WebhookEndpoint | null>;
  updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null>;
  deleteWebhook(webhookId: string): Promise<boolean>;

  // deliveries (read side for the admin API)
  listDeliveries(filter: { account_id?: string; webhook_id?: string; status?: DeliveryStatus; since?: string; until?: string; limit?: number }): Promise<Delivery[]>;
  getDelivery(deliveryId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] } | null>;

  // deliveries (dispatcher side)
  /**
   * Lease up to `limit` due deliveries (status pending, next_attempt_at <= now, no live lease) to
   * `owner` for `leaseMs`, oldest due first and in seq order within an endpoint, at most
   * `perEndpointLimit` in flight per endpoint (counting live leases), enabled endpoints only.
   * A lease that expires (dispatcher died) makes the delivery claimable again.
   */
  claimDueDeliveries(opts: { now: Date; limit: number; leaseMs: number; owner: string; perEndpointLimit: number }): Promise<ClaimedDelivery[]>;
  /** Record one attempt and resolve the delivery in one transaction; releases the lease. Only the lease owner may record. */
  recordAttempt(deliveryId: string, owner: string, attempt: Omit<DeliveryAttempt, 'attempt_id' | 'delivery_id'>, resolution: AttemptResolution): Promise<boolean>;
  /**
   * `recordAttempt` for many attempts in one transaction (the dispatcher batches completions made
   * within a few milliseconds). Each item is checked and applied on its own, exactly as by
   * recordAttempt: result[i] is false when items[i].owner no longer holds that delivery's lease.
   * Throws StoreValidationError, writing nothing, when any item is malformed.
   */
  recordAttempts(items: RecordAttemptItem[]): Promise<boolean[]>;
  /** Manual retry: make one delivery (any status) pending and due now; attempt history is kept. */
  retryDelivery(deliveryId: string, now?: Date): Promise<Delivery | null>;
  /** Manual retry of all failed deliveries of an account created in [since, until]. Returns how many. */
  retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now?: Date): Promise<number>;
  /** Earliest next_attempt_at among pending deliveries of enabled endpoints (dispatcher sleep hint). */
  nextDueAt(): Promise<Date | null>;
  /** Counts for /metrics. */
  deliveryCounts(): Promise<{ pending: number; failed: number }>;
}
