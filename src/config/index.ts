/**
 * Configuration from environment variables (SPEC §5). Every value is validated at start-up
 * so a typo fails loudly instead of running with a surprising default.
 */
import path from 'node:path';
import { parseDuration, parseDurationList } from './duration.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** `sqlite:<file>` (embedded default) or a `postgres://` URL. */
  databaseUrl: string | null;
  redisUrl: string | null;
  /** Explicit admin token; when null the server generates one on first start and persists it. */
  adminToken: string | null;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  authTimeoutMs: number;
  maxMessageBytes: number;
  /** Per-connection outbound buffer limit; past it the connection is closed with 4009. */
  maxOutboundBytes: number;
  /**
   * Largest serialized event payload accepted by the publish API (TPX_MAX_EVENT_BYTES), capped so
   * that an event frame always fits `maxOutboundBytes` (SPEC §3.1).
   */
  maxEventBytes: number;
  /** Inbound messages allowed per connection per second (token bucket holding as many: no burst beyond it). */
  rateLimitPerSec: number;
  webhookTimeoutMs: number;
  webhookRetryScheduleMs: number[];
  webhookAllowPrivate: boolean;
  /** Concurrent in-flight attempts per endpoint. */
  webhookConcurrencyPerEndpoint: number;
  /** Disable an endpoint when it has failed continuously for this long (0 = never). */
  webhookDisableAfterMs: number;
  /** Grace period during which the previous secret still signs after a rotation. */
  webhookSecretGraceMs: number;
  sourceId: string;
  eventRetentionMs: number;
  logLevel: string;
  /** Name of this node in /admin/connections and logs. */
  nodeId: string;
  /** TPX_DURABILITY: 'synced' (a 202 means synced to disk) or 'relaxed' (written, not synced). */
  durability: 'synced' | 'relaxed';
  /**
   * PEM certificate chain and private key files (SPEC §5). Both set: the port serves HTTPS and
   * wss:// only, and SIGHUP re-reads them. Both null: plain HTTP. One without the other is refused.
   */
  tls: { certFile: string; keyFile: string } | null;
  /** `pretty` (human-readable lines), `json` (one JSON object per line), or `auto`: pretty when stdout is a terminal. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** On SIGTERM, the window over which connections are closed (1001), spread evenly. */
  shutdownDrainMs: number;
}

/**
 * Room kept in the outbound limit for an event frame's envelope (msg_type, msg_id, seq, sent_at,
 * WebSocket header: under 200 bytes) so that the largest accepted event always fits it.
 */
export const EVENT_FRAME_OVERHEAD_BYTES = 1024;

export const DEFAULT_RETRY_SCHEDULE = '5s,30s,2m,10m,30m,1h,3h,6h,12h';

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

function duration(env: Env, name: string, fallback: string): number {
  const raw = env[name];
  try {
    return parseDuration(raw === undefined || raw === '' ? fallback : raw);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.TPX_DATA_DIR || './data');
  let schedule: number[];
  try {
    schedule = parseDurationList(env.TPX_WEBHOOK_RETRY_SCHEDULE || DEFAULT_RETRY_SCHEDULE);
  } catch (err) {
    throw new Error(`TPX_WEBHOOK_RETRY_SCHEDULE: ${(err as Error).message}`);
  }
  const maxOutboundBytes = int(env, 'TPX_MAX_OUTBOUND_BYTES', 4 * 1024 * 1024, 1024);
  const frameRoom = Math.min(EVENT_FRAME_OVERHEAD_BYTES, Math.floor(maxOutboundBytes / 2));
  const maxEventBytes = Math.min(int(env, 'TPX_MAX_EVENT_BYTES', 262_144, 1024), maxOutboundBytes - frameRoom);
  const durability = (env.TPX_DURABILITY || 'synced').toLowerCase();
  if (durability !== 'synced' && durability !== 'relaxed') throw new Error(`TPX_DURABILITY must be synced or relaxed, got "${env.TPX_DURABILITY}"`);
  const port = int(env, 'TPX_PORT', 8080, 0);
  const tlsCert = env.TPX_TLS_CERT || '';
  const tlsKey = env.TPX_TLS_KEY || '';
  if (Boolean(tlsCert) !== Boolean(tlsKey)) {
    const [set, missing] = tlsCert ? ['TPX_TLS_CERT', 'TPX_TLS_KEY'] : ['TPX_TLS_KEY', 'TPX_TLS_CERT'];
    throw new Error(`${set} is set but ${missing} is not: set both (PEM certificate chain and private key) to serve HTTPS, or neither for plain HTTP`);
  }
  const logFormat = env.TPX_LOG_FORMAT || 'auto';
  if (logFormat !== 'auto' && logFormat !== 'json' && logFormat !== 'pretty') {
    throw new Error(`TPX_LOG_FORMAT must be auto, json or pretty, got "${logFormat}"`);
  }
  if (port > 65535) throw new Error('TPX_PORT must be ≤ 65535');
  return {
    host: env.TPX_HOST || '0.0.0.0',
    port,
    dataDir,
    databaseUrl: env.TPX_DATABASE_URL || null,
    redisUrl: env.TPX_REDIS_URL || null,
    adminToken: env.TPX_ADMIN_TOKEN || null,
    pingIntervalMs: int(env, 'TPX_PING_INTERVAL_MS', 30_000, 10),
    pongTimeoutMs: int(env, 'TPX_PONG_TIMEOUT_MS', 30_000, 10),
    authTimeoutMs: int(env, 'TPX_AUTH_TIMEOUT_MS', 10_000, 10),
    maxMessageBytes: int(env, 'TPX_MAX_MESSAGE_BYTES', 65_536, 64),
    maxOutboundBytes,
    maxEventBytes,
    rateLimitPerSec: int(env, 'TPX_RATE_LIMIT_PER_SEC', 100, 1),
    webhookTimeoutMs: int(env, 'TPX_WEBHOOK_TIMEOUT_MS', 10_000, 1),
    webhookRetryScheduleMs: schedule,
    webhookAllowPrivate: bool(env, 'TPX_WEBHOOK_ALLOW_PRIVATE', false),
    webhookConcurrencyPerEndpoint: int(env, 'TPX_WEBHOOK_CONCURRENCY_PER_ENDPOINT', 8, 1),
    webhookDisableAfterMs: duration(env, 'TPX_WEBHOOK_DISABLE_AFTER', '5d'),
    webhookSecretGraceMs: duration(env, 'TPX_WEBHOOK_SECRET_GRACE', '24h'),
    sourceId: env.TPX_SOURCE_ID || 'tradepost_realtime',
    eventRetentionMs: duration(env, 'TPX_EVENT_RETENTION', '72h'),
    logLevel: env.TPX_LOG_LEVEL || 'info',
    nodeId: env.TPX_NODE_ID || `node-${process.pid}`,
    durability,
    tls: tlsCert ? { certFile: path.resolve(tlsCert), keyFile: path.resolve(tlsKey) } : null,
    logFormat,
    shutdownDrainMs: int(env, 'TPX_SHUTDOWN_DRAIN_MS', 5000, 0),
  };
}
