/** Messages between the orchestrator, the load-generator process and its worker threads. */
import type { HistData } from './hist.js';

export interface ConnectSpec {
  host: string;
  port: number;
  /** Upgrade paths; client with global index i uses paths[i % paths.length] (nchan: its channel). */
  paths: string[];
  /** API keys; client with global index i uses tokens[i % tokens.length]. */
  tokens: string[];
  /**
   * The upgrade alone subscribes (nchan): no authenticate/subscribe exchange, the client is
   * ready on the 101.
   */
  handshakeOnly: boolean;
  /** Check each connection's `seq` is previous + 1 (false where the server assigns none). */
  checkSeq: boolean;
  rooms: string[];
  /** Global client indices [start, end). */
  start: number;
  end: number;
  /** Connection attempts in flight per worker. */
  concurrency: number;
  /** Every `slowEvery`-th client (index % slowEvery === slowEvery - 1) never reads: a slow consumer. 0 = none. */
  slowEvery: number;
  /** Slow consumers read at most this many bytes per second; 0 = they never read. */
  slowReadBytesPerSec: number;
  /** Slow consumers reconnect (after this many ms) when the server closes them; 0 = no reconnect. */
  slowReconnectMs: number;
  /** Source addresses to spread client sockets over (127.0.0.x) so ephemeral ports never run short. */
  localAddresses: string[];
  /** Give up on the whole connect phase after this long. */
  timeoutMs: number;
}

export interface ConnectResult {
  requested: number;
  ready: number;
  failed: number;
  elapsed_ms: number;
  /** Per-client connect→subscribed time. */
  setup: HistData;
  failures: Record<string, number>;
}

export interface StatsResult {
  /** Event frames received (all clients). */
  events: number;
  /** Event frames received by fast (non-slow) clients. */
  fast_events: number;
  bytes: number;
  /** Frames whose per-connection seq was not exactly previous + 1 (after the first). */
  seq_gaps: number;
  seq_dups: number;
  open: number;
  ready: number;
  slow_open: number;
  reconnects: number;
  /** Close codes seen by fast and slow clients. */
  closes_fast: Record<string, number>;
  closes_slow: Record<string, number>;
  errors: Record<string, number>;
  pings: number;
  latency: HistData;
}

export type WorkerCommand =
  | { id: number; cmd: 'connect'; spec: ConnectSpec }
  | { id: number; cmd: 'stats'; resetLatency?: boolean }
  | { id: number; cmd: 'latency'; on: boolean }
  | { id: number; cmd: 'closeAll' };

export interface WorkerReply {
  id: number;
  result?: unknown;
  error?: string;
}
