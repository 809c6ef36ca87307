/**
 * PostgreSQL schema as forward-only migrations, mirroring the SQLite schema
 * (src/store/sqlite/schema.ts) column for column so both stores behave the same:
 * ISO-8601 text for human-facing entity timestamps, epoch-millisecond BIGINT for the hot,
 * range-queried ones (event log, deliveries).
 *
 * Identifier and timestamp text columns use COLLATE "C": comparisons are bytewise exactly like
 * SQLite's, whatever the database's default locale. `row_no` identity columns play the part of
 * SQLite's rowid: creation order for listings (created_at ties within a millisecond).
 *
 * Migrations run under a session advisory lock (see PostgresStore.init), so several nodes
 * starting at once on an empty database apply each migration exactly once.
 */
import type { Migration } from '../shared/migrations.js';

export type { Migration };

/** Key of the advisory lock held while migrating ("tpx" schema). */
export const MIGRATION_LOCK_KEY = 0x7470_7801;
/** Key of the transaction advisory lock that serializes delivery claims across nodes. */
export const CLAIM_LOCK_KEY = 0x7470_7802;
/** Key of the transaction advisory lock that lets one node prune at a time. */
export const PRUNE_LOCK_KEY = 0x7470_7803;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'initial schema',
    sql: `
CREATE TABLE accounts (
  row_no         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,  -- creation order (SQLite's rowid)
  account_id     TEXT COLLATE "C" PRIMARY KEY,
  name           TEXT,
  partner_id     TEXT UNIQUE,
  rooms          TEXT[] NOT NULL,
  last_seq       BIGINT NOT NULL DEFAULT 0,
  pruned_through BIGINT NOT NULL DEFAULT 0,
  created_at     TEXT COLLATE "C" NOT NULL
);

CREATE TABLE api_keys (
  row_no       BIGINT GENERATED ALWAYS AS IDENTITY,
  key_id       TEXT COLLATE "C" PRIMARY KEY,
  account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  name         TEXT,
  token_hash   BYTEA NOT NULL UNIQUE,
  token_prefix TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
  expires_at   TEXT,
  created_at   TEXT COLLATE "C" NOT NULL,
  last_used_at TEXT
);
CREATE INDEX api_keys_account ON api_keys (account_id, row_no);

CREATE TABLE events (
  event_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  msg_id        TEXT COLLATE "C" NOT NULL UNIQUE,
  msg_type      TEXT NOT NULL,
  payload_json  TEXT NOT NULL,
  source_id     TEXT,
  created_at_ms BIGINT NOT NULL,
  recipients    INTEGER NOT NULL
);
CREATE INDEX events_created ON events (created_at_ms);

CREATE TABLE account_events (
  account_id    TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  seq           BIGINT NOT NULL,
  event_id      BIGINT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  PRIMARY KEY (account_id, seq)
);
CREATE INDEX account_events_created ON account_events (created_at_ms);

CREATE TABLE webhooks (
  row_no                     BIGINT GENERATED ALWAYS AS IDENTITY,
  webhook_id                 TEXT COLLATE "C" PRIMARY KEY,
  account_id                 TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
  url                        TEXT NOT NULL,
  secret                     TEXT NOT NULL,
  previous_secret            TEXT,
  previous_secret_expires_at TEXT,
  enabled                    BOOLEAN NOT NULL DEFAULT TRUE,
  disabled_reason            TEXT,
  description                TEXT,
  failing_since              TEXT,
  created_at                 TEXT COLLATE "C" NOT NULL,
  updated_at                 TEXT NOT NULL
);
CREATE INDEX webhooks_account ON webhooks (account_id, row_no);

CREATE TABLE deliveries (
  row_no           BIGINT GENERATED ALWAYS AS IDENTITY,
  delivery_id      TEXT COLLATE "C" PRIMARY KEY,
  webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
  account_id       TEXT COLLATE "C" NOT NULL,
  event_id         BIGINT NOT NULL,
  msg_id           TEXT NOT NULL,
  msg_type         TEXT NOT NULL,
  seq              BIGINT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempt_count    INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  BIGINT,
  lease_owner      TEXT,
  lease_until      BIGINT,
  last_status_code INTEGER,
  last_error       TEXT,
  created_at       BIGINT NOT NULL,
  completed_at     BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, seq);
CREATE INDEX deliveries_account ON deliveries (account_id, status, created_at);
CREATE INDEX deliveries_created ON deliveries (created_at, row_no);
CREATE INDEX deliveries_leased ON deliveries (webhook_id, lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX deliveries_unfinished_event ON deliveries (event_id) WHERE status <> 'succeeded';
CREATE INDEX deliveries_succeeded_created ON deliveries (created_at) WHERE status = 'succeeded';

CREATE TABLE delivery_attempts (
  attempt_id   TEXT COLLATE "C" PRIMARY KEY,
  delivery_id  TEXT COLLATE "C" NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
  attempt_no   INTEGER NOT NULL,
  attempted_at TEXT NOT NULL,
  status_code  INTEGER,
  latency_ms   DOUBLE PRECISION NOT NULL,
  error        TEXT,
  outcome      TEXT NOT NULL CHECK (outcome IN ('succeeded', 'retry', 'failed'))
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt_no);
`,
  },
  {
    version: 2,
    description: 'response excerpt per attempt; deliveries by event (msg_id filter of the delivery log)',
    sql: `
ALTER TABLE delivery_attempts ADD COLUMN response_excerpt TEXT;
CREATE INDEX deliveries_event ON deliveries (event_id);
DROP INDEX deliveries_unfinished_event;
`,
  },
  {
    version: 3,
    description: 'pending deliveries by endpoint (bounded claims: one probe per endpoint, as SQLite)',
    sql: `
CREATE INDEX deliveries_pending_endpoint ON deliveries (webhook_id, next_attempt_at, seq) WHERE status = 'pending';
`,
  },
  {
    version: 4,
    description: 'access-change log (revocation log): written by triggers with every key and account change (access-changes.ts)',
    sql: `
-- One row per change of who may receive what, written by the triggers below in the changing
-- transaction itself (so no writer can change access without it). Identity ids are never reused;
-- commits may still land out of id order, which readers handle (shared/access-changes.ts).
CREATE TABLE access_changes (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind       TEXT NOT NULL CHECK (kind IN ('key_disabled', 'key_enabled', 'account_changed', 'account_deleted')),
  account_id TEXT COLLATE "C" NOT NULL,
  key_id     TEXT COLLATE "C",
  reason     TEXT,
  at_ms      BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
);
CREATE INDEX access_changes_at ON access_changes (at_ms);
-- How far each reader (one per gateway process) has applied the log, and when it last said so.
CREATE TABLE access_readers (
  reader   TEXT COLLATE "C" PRIMARY KEY,
  position BIGINT NOT NULL,
  seen_at  TIMESTAMPTZ NOT NULL
);
CREATE FUNCTION tpx_api_key_access() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO access_changes (kind, account_id, key_id, reason) VALUES ('key_disabled', OLD.account_id, OLD.key_id, 'revoked');
  ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
    INSERT INTO access_changes (kind, account_id, key_id, reason)
    VALUES (CASE WHEN NEW.status = 'active' THEN 'key_enabled' ELSE 'key_disabled' END, NEW.account_id, NEW.key_id,
            CASE WHEN NEW.status = 'active' THEN NULL ELSE 'inactive' END);
  END IF;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER api_keys_access AFTER UPDATE OF status OR DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION tpx_api_key_access();
CREATE FUNCTION tpx_account_access() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO access_changes (kind, account_id) VALUES ('account_deleted', OLD.account_id);
  ELSIF NEW.rooms IS DISTINCT FROM OLD.rooms THEN
    INSERT INTO access_changes (kind, account_id) VALUES ('account_changed', NEW.account_id);
  END IF;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER accounts_access AFTER UPDATE OF rooms OR DELETE ON accounts FOR EACH ROW EXECUTE FUNCTION tpx_account_access();
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
