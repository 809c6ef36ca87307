/**
 * SQLite schema as forward-only migrations (TS strings, so the build needs no file copying).
 * Types are kept portable where cheap (TEXT, INTEGER, BLOB; no SQLite-only column affinities
 * relied upon) so the PostgreSQL store can mirror them.
 *
 * Time columns: entity timestamps shown to humans are ISO-8601 UTC text; the hot, range-queried
 * ones (event log, deliveries) are epoch milliseconds (INTEGER) and converted at the edge.
 */
import type { Migration } from '../shared/migrations.js';

export type { Migration };

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'initial schema',
    sql: `
CREATE TABLE accounts (
  account_id     TEXT PRIMARY KEY,
  name           TEXT,
  partner_id     TEXT UNIQUE,
  rooms          TEXT NOT NULL,             -- JSON array of event types
  last_seq       INTEGER NOT NULL DEFAULT 0,
  pruned_through INTEGER NOT NULL DEFAULT 0,
  created_at     TEXT NOT NULL
);

CREATE TABLE api_keys (
  key_id       TEXT PRIMARY KEY,
  account_id   TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  name         TEXT,
  token_hash   BLOB NOT NULL UNIQUE,         -- SHA-256 of the token; the token itself is never stored
  token_prefix TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
  expires_at   TEXT,
  created_at   TEXT NOT NULL,
  last_used_at TEXT
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- One row per accepted msg_id (the idempotency record), shared by every recipient account.
CREATE TABLE events (
  event_id      INTEGER PRIMARY KEY,
  msg_id        TEXT NOT NULL UNIQUE,
  msg_type      TEXT NOT NULL,
  payload_json  TEXT NOT NULL,
  source_id     TEXT,
  created_at_ms INTEGER NOT NULL,
  recipients    INTEGER NOT NULL
);
CREATE INDEX events_created ON events (created_at_ms);

-- Per-account stream. created_at_ms is copied from the event, which lets pruning reason on
-- time alone (no index on event_id needed). No FK to events: pruning keeps them consistent.
CREATE TABLE account_events (
  account_id    TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  event_id      INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
CREATE INDEX account_events_created ON account_events (created_at_ms);

CREATE TABLE webhooks (
  webhook_id                 TEXT PRIMARY KEY,
  account_id                 TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  url                        TEXT NOT NULL,
  secret                     TEXT NOT NULL,
  previous_secret            TEXT,
  previous_secret_expires_at TEXT,
  enabled                    INTEGER NOT NULL DEFAULT 1,
  disabled_reason            TEXT,
  description                TEXT,
  failing_since              TEXT,
  created_at                 TEXT NOT NULL,
  updated_at                 TEXT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id, enabled);

-- msg_id/msg_type are denormalized so the delivery log stays readable without the event row.
-- Times are epoch ms. account_id has no FK: deliveries go with their webhook (cascade).
CREATE TABLE deliveries (
  delivery_id      TEXT PRIMARY KEY,
  webhook_id       TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
  account_id       TEXT NOT NULL,
  event_id         INTEGER NOT NULL,
  msg_id           TEXT NOT NULL,
  msg_type         TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempt_count    INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER,
  lease_owner      TEXT,
  lease_until      INTEGER,
  last_status_code INTEGER,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  completed_at     INTEGER
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at, seq);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_account ON deliveries (account_id, status, created_at);
-- Small partial indexes: live leases (per-endpoint in-flight counts) and unfinished deliveries
-- by event (pruning must keep the events they still need).
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX deliveries_unfinished_event ON deliveries (event_id) WHERE status <> 'succeeded';

CREATE TABLE delivery_attempts (
  attempt_id       TEXT PRIMARY KEY,
  delivery_id      TEXT NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
  attempt_no       INTEGER NOT NULL,
  attempted_at     TEXT NOT NULL,
  status_code      INTEGER,
  latency_ms       REAL NOT NULL,
  error            TEXT,
  outcome          TEXT NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed'))
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt_no);
`,
  },
  {
    version: 2,
    description: 'per-endpoint index of pending deliveries (claims probe each endpoint instead of rescanning blocked rows)',
    sql: `
-- Pending rows only (small: finished deliveries leave it). Serves the claim's loose scan over
-- endpoints with pending work (MIN(webhook_id) > ?) and each endpoint's due rows in
-- (next_attempt_at, seq) order, so rows of an endpoint at its in-flight limit are never read.
CREATE INDEX deliveries_pending_endpoint ON deliveries (webhook_id, next_attempt_at, seq) WHERE status = 'pending';
`,
  },
  {
    version: 3,
    description: 'write-behind staging for the per-account stream (stream-index.ts)',
    sql: `
-- Recently committed (account, seq) rows not yet moved into account_events. A rowid table with
-- no secondary index: a commit appends its rows to the last page or two instead of dirtying one
-- account_events leaf per recipient. Same durability (same transaction as the event); moved in
-- sorted batches by stream-index.ts; reads take account_events and these rows together.
CREATE TABLE account_events_pending (
  account_id    TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  event_id      INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL
);
`,
  },
  {
    version: 4,
    description: 'succeeded deliveries by creation time (retention pruning reads only what expired)',
    sql: `
CREATE INDEX deliveries_succeeded_created ON deliveries (created_at) WHERE status = 'succeeded';
`,
  },
  {
    version: 5,
    description: 'response excerpt per attempt; deliveries by event (msg_id filter of the delivery log)',
    sql: `
ALTER TABLE delivery_attempts ADD COLUMN response_excerpt TEXT;
-- All deliveries of an event (the admin API finds deliveries by msg_id through events.msg_id).
-- Replaces the partial index of unfinished ones: pruning's "is this event still needed" probe
-- uses it as well, and finishing a delivery no longer moves an index entry.
CREATE INDEX deliveries_event ON deliveries (event_id);
DROP INDEX deliveries_unfinished_event;
`,
  },
  {
    version: 6,
    description: 'access-change log (revocation log): written by triggers with every key and account change (access-changes.ts)',
    sql: `
-- One row per change of who may receive what, written by the triggers below in the changing
-- transaction itself. AUTOINCREMENT: ids are never reused, even after pruning, so a reader's
-- cursor never skips a new row.
CREATE TABLE access_changes (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  kind       TEXT NOT NULL CHECK (kind IN ('key_disabled', 'key_enabled', 'account_changed', 'account_deleted')),
  account_id TEXT NOT NULL,
  key_id     TEXT,
  reason     TEXT,
  at_ms      INTEGER NOT NULL
);
CREATE INDEX access_changes_at ON access_changes (at_ms);
-- How far each reader (one per gateway process) has applied the log, and when it last said so.
CREATE TABLE access_readers (
  reader     TEXT PRIMARY KEY,
  position   INTEGER NOT NULL,
  seen_at_ms INTEGER NOT NULL
);
CREATE TRIGGER api_keys_status_access AFTER UPDATE OF status ON api_keys WHEN NEW.status IS NOT OLD.status
BEGIN
  INSERT INTO access_changes (kind, account_id, key_id, reason, at_ms)
  VALUES (CASE NEW.status WHEN 'active' THEN 'key_enabled' ELSE 'key_disabled' END, NEW.account_id, NEW.key_id,
          CASE NEW.status WHEN 'active' THEN NULL ELSE 'inactive' END, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER api_keys_delete_access AFTER DELETE ON api_keys
BEGIN
  INSERT INTO access_changes (kind, account_id, key_id, reason, at_ms)
  VALUES ('key_disabled', OLD.account_id, OLD.key_id, 'revoked', CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER accounts_rooms_access AFTER UPDATE OF rooms ON accounts WHEN NEW.rooms IS NOT OLD.rooms
BEGIN
  INSERT INTO access_changes (kind, account_id, key_id, reason, at_ms)
  VALUES ('account_changed', NEW.account_id, NULL, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER accounts_delete_access AFTER DELETE ON accounts
BEGIN
  INSERT INTO access_changes (kind, account_id, key_id, reason, at_ms)
  VALUES ('account_deleted', OLD.account_id, NULL, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
