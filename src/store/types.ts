/**
 * The Store seam (DESIGN.md: "the store by aggregate"): the only source of truth, split into the
 * three aggregates it holds, so each component depends on the part it uses:
 *
 *   AccountStore   accounts, API keys (hashed) and token lookups       gateway, admin routes
 *   EventLog       the per-account event log: append, read, prune      publisher, gateway (replay)
 *   DeliveryQueue  webhook endpoints, deliveries, leases and attempts  dispatcher, webhook admin routes
 *
 * `Store` is their intersection plus the lifecycle. Two implementations: embedded SQLite
 * (default, src/store/sqlite) and PostgreSQL (shared, src/store/postgres); one file per aggregate
 * each, with every rule both must agree on written once as a pure function in src/store/shared.
 * Callers never see SQL. Every method is async so that a network-backed store fits the callers.
 *
 * One transaction still spans two aggregates on purpose: `EventLog.appendEvents` writes the
 * event and its webhook deliveries together (SPEC §3.1, §4: both durable before the 202).
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

/**
 * The store cannot serve right now (database unreachable or not answering in time, or the
 * storage failed a sync). Nothing was acknowledged; the caller may retry later. HTTP maps it to 503.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export interface ReadEventsQuery {
  account_id: string;
  after_seq: number;
  /** Restrict to these types; null means every type. */
  types: ReadonlySet<EventType> | null;
  limit: number;
  /**
   * Byte budget of the page: events are added while the payload bytes read so far stay below it
   * (at least one event is returned whatever its size). Unset: only `limit` bounds the page.
   */
  max_bytes?: number;
}

export interface ReadEventsResult {
  events: AccountEvent[];
  /** Highest seq ever pruned from this account's log (0 when nothing was pruned). */
  pruned_through: number;
  /** Highest seq currently assigned in this account's stream (and durable, see EventLog). */
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
  /** The endpoint's current URL (where the next attempt goes). */
  webhook_url: string;
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

export type AttemptOutcome = 'succeeded' | 'retry' | 'failed';

export interface DeliveryAttempt {
  attempt_id: string;
  delivery_id: string;
  attempted_at: string;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  outcome: AttemptOutcome;
  /** The first ≤ 1 KiB of the response body as text (null when there was no response or no body). */
  response_excerpt: string | null;
}

/** A due delivery handed to one dispatcher under a lease, with everything needed to send it. */
export interface ClaimedDelivery {
  delivery: Delivery;
  endpoint: WebhookEndpoint;
  account: Pick<Account, 'account_id' | 'partner_id'>;
  event: AccountEvent;
}

/** A delivery with its attempts and what its next (or latest) request is made of. */
export interface DeliveryDetail {
  delivery: Delivery;
  attempts: DeliveryAttempt[];
  endpoint: WebhookEndpoint;
  account: Pick<Account, 'account_id' | 'partner_id'>;
  /** Null once the event left the log (a succeeded delivery past retention). */
  event: AccountEvent | null;
}

/** What the dispatcher decided after one attempt. */
export type AttemptResolution =
  | { status: 'succeeded' }
  | { status: 'pending'; next_attempt_at: string }
  | { status: 'failed' };

/**
 * What one attempt means for its endpoint's health, applied in the attempt's own transaction
 * against the endpoint as stored then (never a stale snapshot):
 * - healthy: the failure streak ends (failing_since cleared);
 * - failing: the streak starts at `at` unless already running; when it has lasted at least
 *   `disable_after_ms` (> 0) the endpoint is disabled;
 * - disable: the endpoint is disabled at once with `reason` (e.g. 410 Gone).
 */
export type EndpointEffect =
  | { kind: 'healthy' }
  | { kind: 'failing'; at: string; disable_after_ms: number }
  | { kind: 'disable'; reason: string };

/** One attempt to record with `DeliveryQueue.recordAttempts`. */
export interface RecordAttemptItem {
  deliveryId: string;
  owner: string;
  attempt: Omit<DeliveryAttempt, 'attempt_id' | 'delivery_id' | 'response_excerpt'> & { response_excerpt?: string | null };
  resolution: AttemptResolution;
  /** Default: none (the endpoint is left as it is). */
  effect?: EndpointEffect;
}

export interface RecordAttemptOutcome {
  /** False when `owner` no longer held the delivery's lease: nothing was written for this item. */
  recorded: boolean;
  /** Set when this item's effect disabled the endpoint: why, and the reason text stored. */
  disabled: { cause: 'gone' | 'failing'; reason: string } | null;
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

export interface DeliveryFilter {
  account_id?: string;
  webhook_id?: string;
  status?: DeliveryStatus;
  msg_id?: string;
  msg_type?: EventType;
  /** ISO-8601 bounds on the delivery's creation time (inclusive). */
  since?: string;
  until?: string;
  /** Default 100. */
  limit?: number;
}

export interface ClaimOptions {
  now: Date;
  limit: number;
  leaseMs: number;
  owner: string;
  perEndpointLimit: number;
}

// ---------- the aggregates ----------

/** Accounts, their API keys and token resolution. */
export interface AccountStore {
  createAccount(input: { name?: string | null; partner_id?: string | null; rooms?: EventType[] }): Promise<Account>;
  getAccount(accountId: string): Promise<Account | null>;
  listAccounts(opts?: { limit?: number; after?: string }): Promise<Account[]>;
  updateAccount(accountId: string, patch: AccountPatch): Promise<Account | null>;
  /** Deletes the account with its keys, webhooks, events and deliveries. */
  deleteAccount(accountId: string): Promise<boolean>;

  /** Returns the key record and the plain token (the only time it exists outside the caller). */
  createApiKey(accountId: string, input: { name?: string | null; expires_at?: string | null }): Promise<{ key: ApiKey; token: string }>;
  listApiKeys(accountId: string): Promise<ApiKey[]>;
  getApiKey(keyId: string): Promise<ApiKey | null>;
  setApiKeyStatus(keyId: string, status: ApiKeyStatus): Promise<ApiKey | null>;
  /** Revoke = delete: the token can never authenticate again. */
  deleteApiKey(keyId: string): Promise<ApiKey | null>;
  /** Resolve a presented token (hash lookup + constant-time compare). `now` decides expiry. */
  lookupToken(token: string, now?: Date): Promise<KeyLookup>;
  /**
   * Another node changed keys or accounts (a bus control message): forget cached token lookups
   * now rather than at the end of their short time-to-live.
   */
  forgetCachedAuth(): void;

  /** Node-independent settings (schema version and similar). */
  getSetting(key: string): Promise<string | null>;
  setSettingIfAbsent(key: string, value: string): Promise<string>;
}

/**
 * The per-account event log. Durability (SPEC §3.1): `appendEvents` resolves only once the
 * event and its deliveries are on disk, synced (unless TPX_DURABILITY=relaxed), and nothing
 * read from the log (events, `last_seq`, claimable deliveries) shows an append before that.
 */
export interface EventLog {
  /**
   * One transaction for all events: idempotency on msg_id, per-account seq, log rows and one
   * pending delivery per enabled endpoint of each recipient. Throws UnknownAccountsError
   * (listing them) without storing anything.
   */
  appendEvents(events: NewEvent[]): Promise<AppendResult[]>;
  readEvents(query: ReadEventsQuery): Promise<ReadEventsResult>;
  /** Delete events older than the cutoff; returns how many account-event rows were removed. */
  pruneEvents(olderThanMs: number): Promise<number>;
  /**
   * Appends that failed (StoreUnavailableError: the caller heard 503) while their COMMIT was on
   * the wire, and turned out to have committed: their results, to be fanned out as if just
   * accepted (their deliveries are already queued). PostgreSQL only (postgres/in-doubt.ts); an
   * embedded store commits in-process and never calls it.
   */
  onLateCommit(listener: (results: AppendResult[]) => void): void;
}

/** Webhook endpoints and the durable delivery queue (endpoint → delivery → attempt). */
export interface DeliveryQueue {
  createWebhook(accountId: string, input: { url: string; secret: string; description?: string | null }): Promise<WebhookEndpoint>;
  listWebhooks(accountId: string): Promise<WebhookEndpoint[]>;
  getWebhook(webhookId: string): Promise<WebhookEndpoint | null>;
  updateWebhook(webhookId: string, patch: WebhookPatch): Promise<WebhookEndpoint | null>;
  deleteWebhook(webhookId: string): Promise<boolean>;

  /** Newest first. */
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]>;
  getDelivery(deliveryId: string): Promise<DeliveryDetail | null>;

  /**
   * Lease up to `limit` due deliveries (status pending, next_attempt_at <= now, no live lease) to
   * `owner` for `leaseMs`, oldest due first and in seq order within an endpoint, at most
   * `perEndpointLimit` in flight per endpoint (counting live leases), enabled endpoints only.
   * A lease that expires (dispatcher died) makes the delivery claimable again.
   */
  claimDueDeliveries(opts: ClaimOptions): Promise<ClaimedDelivery[]>;
  /**
   * Record attempts, resolve their deliveries (releasing the leases) and apply their endpoint
   * effects, all in one transaction. Each item is checked on its own: only the current lease
   * owner records (result[i].recorded false otherwise). Throws StoreValidationError, writing
   * nothing, when any item is malformed.
   */
  recordAttempts(items: RecordAttemptItem[]): Promise<RecordAttemptOutcome[]>;
  /** Manual retry: make one delivery (any status) pending and due now; attempt history is kept. */
  retryDelivery(deliveryId: string, now?: Date): Promise<Delivery | null>;
  /** Manual retry of all failed deliveries of an account created in [since, until]. Returns how many. */
  retryFailedDeliveries(filter: { account_id: string; since?: string; until?: string }, now?: Date): Promise<number>;
  /** Earliest next_attempt_at among pending deliveries of enabled endpoints (dispatcher sleep hint). */
  nextDueAt(): Promise<Date | null>;
  /** Counts for /metrics. */
  deliveryCounts(): Promise<{ pending: number; failed: number }>;
}

/** What changed about who may receive what (one row of the access-change log). */
export type AccessChangeKind = 'key_disabled' | 'key_enabled' | 'account_changed' | 'account_deleted';

export interface AccessChange {
  /** Monotonic (assigned when the change is written; on PostgreSQL commits may land out of id order). */
  id: number;
  kind: AccessChangeKind;
  account_id: string;
  key_id: string | null;
  /** key_disabled: 'inactive' (deactivated) or 'revoked' (deleted); null otherwise. */
  reason: 'inactive' | 'revoked' | null;
  /** When it was written (epoch ms, the database's clock). */
  at_ms: number;
}

/**
 * A reader's place in the access-change log: every id up to `after` was read, except `holes`
 * (ids skipped by a later commit, re-read until they appear or expire). Opaque to callers.
 */
export interface AccessChangeCursor {
  readonly after: number;
  readonly holes: ReadonlyArray<{ readonly id: number; readonly since_ms: number }>;
}

export interface AccessChangePage {
  /** New changes, in id order, each returned once to a reader that follows the cursors. */
  changes: AccessChange[];
  cursor: AccessChangeCursor;
  /** The page was full: read again at once. */
  more: boolean;
  /** Changes this cursor never read were pruned: the reader must re-check everything it holds. */
  behind: boolean;
}

/**
 * The access-change log (the revocation log): one row per key deactivation, reactivation or
 * deletion and per account rooms change or deletion, written by the database in the same
 * transaction as the change (triggers), so no writer can change access without it. Every
 * gateway node reads it by cursor (one indexed query per tick, whatever the number of accounts)
 * and reports how far it has applied it, so a node that could not reach the bus can still learn
 * that every other node applied a revocation (docs/architecture.md, Revocation).
 */
export interface AccessChangeLog {
  /** A cursor at the log's current end (a node starting now has nothing older to apply). */
  accessChangeHead(): Promise<AccessChangeCursor>;
  /**
   * Changes after `cursor`. `reader` (a per-process id), when given, records in the same round
   * trip that this reader has applied everything up to `cursor` (its acknowledgement).
   */
  readAccessChanges(cursor: AccessChangeCursor, opts: { reader: string | null; limit?: number }): Promise<AccessChangePage>;
  /** The log's last id now, and the readers that reported within `liveWithinMs` with their position. */
  accessChangeReaders(liveWithinMs: number): Promise<{ head: number; readers: Array<{ reader: string; position: number }> }>;
  /** Drop changes older than the cutoff (the newest row always stays) and readers silent for a day. */
  pruneAccessChanges(olderThanMs: number): Promise<number>;
}

/**
 * TPX_DURABILITY. 'synced' (default): an append is acknowledged once it is on disk, synced.
 * 'relaxed': once written; survives the process dying, not the machine (docs/operations.md).
 */
export type Durability = 'synced' | 'relaxed';

/** How the store is doing, for /readyz and /metrics. */
export interface StoreStatus {
  /** False when the store cannot be relied on (unreachable, storage failure, checkpoints failing). */
  ok: boolean;
  /** Named checks: 'ok' or what is wrong. */
  checks: Record<string, string>;
  /** Monotonic counters (e.g. checkpoint_failures), exported as tpx_store_<name>_total. */
  counters: Record<string, number>;
}

export interface StoreLifecycle {
  readonly kind: 'sqlite' | 'postgres';
  /** Create tables / run migrations. Idempotent; safe when several nodes start at once. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Cheap round-trip used by /readyz. */
  ping(): Promise<void>;
  status(): StoreStatus;
  /**
   * The store failed for good and the process must restart (SQLite: a failed WAL sync or a
   * checkpoint I/O error; docs/operations.md "Durability"). Called at most once; at once if it
   * already happened. Stores that cannot fail this way do not have it.
   */
  onFatal?(listener: (err: Error) => void): void;
}

/** The whole store. Components should ask for the aggregate they use instead. */
export type Store = StoreLifecycle & AccountStore & EventLog & DeliveryQueue & AccessChangeLog;
