/**
 * WAL checkpoints off the event loop, supervised, and only while there is something to copy.
 *
 * SQLite's automatic checkpoint runs inside whichever COMMIT crosses the threshold, i.e. on the
 * thread serving WebSockets: measured at 100 events/s it stalled the event loop 12-46 ms (p99
 * latency followed). Instead the serving connection disables auto-checkpoints and a worker
 * thread, with its own connection, runs PASSIVE checkpoints (they never block writers or readers
 * in WAL mode) every interval.
 *
 * The worker is started when the WAL passes `startAtWalBytes` (4 MiB by default: SQLite's own
 * autocheckpoint threshold of 1,000 pages) and stopped once it has had nothing to copy for
 * `idleStopMs`: a second V8 isolate with its own SQLite connection is ≈ 7-9 MiB of RSS (measured
 * on the whole server, docs/performance.md round 3) that an idle or lightly written node does not
 * need. A worker that stops truncates the WAL (TRUNCATE checkpoint, without waiting for anyone),
 * so the file's size is again what is left to copy; while no worker runs, one cheap stat a
 * second watches it.
 *
 * With auto-checkpoints off, a dead worker means the WAL grows without bound, so the worker is
 * supervised: a checkpoint error or a crash of the thread is logged, counted (/metrics), makes
 * the store report itself unhealthy (/readyz), and a new worker is started after a backoff
 * (100 ms, doubling up to 30 s while failures repeat). The store is healthy again once a
 * restarted worker has completed a checkpoint. A worker stopped because it was idle is not a
 * failure.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { StoreLogger } from '../logger.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.modulePath);
const db = new Database(workerData.filename);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL'); // a checkpoint syncs the WAL before copying it and the database after
let runs = 0;
let reported = false;
const run = () => {
  runs++;
  if (workerData.fault === 'crash' && runs === 1) throw new Error('injected checkpointer crash (test fault)');
  try {
    if (workerData.fault === 'error' && runs === 1) throw new Error('injected checkpoint error (test fault)');
    if (workerData.fault === 'ioerror' && runs === 1) throw Object.assign(new Error('disk I/O error (injected test fault)'), { code: 'SQLITE_IOERR_FSYNC' });
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ type: 'run', log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    // The supervisor counts it and starts a fresh worker (a new connection), unless it was an I/O error.
    parentPort.postMessage({ type: 'error', message: String(err && err.message || err), code: err && err.code });
    clearInterval(timer);
    try { db.close(); } catch {}
    return;
  }
  if (!reported) { reported = true; parentPort.postMessage({ type: 'ok' }); }
};
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') {
    clearInterval(timer);
    try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {}
    db.close();
    parentPort.postMessage({ type: 'stopped' });
  } else if (m === 'idle') {
    // Idle: everything is copied. TRUNCATE resets the WAL to 0 bytes, so its size says again
    // what is left to copy. No busy wait: if a writer or a reader is there now, the WAL simply
    // stays as it is (busy_timeout 0 never holds the serving connection up).
    clearInterval(timer);
    db.pragma('busy_timeout = 0');
    try { db.pragma('wal_checkpoint(TRUNCATE)'); } catch {}
    db.close();
    parentPort.postMessage({ type: 'stopped' });
  }
});
`;

/** Test faults of the first worker: its thread throws, its checkpoint reports an error, or an I/O error (SQLITE_IOERR_FSYNC). */
export type CheckpointFault = 'crash' | 'error' | 'ioerror';

export interface CheckpointerOptions {
  filename: string;
  intervalMs?: number;
  /** Start a worker once the WAL file is larger than this (0: as soon as it has any content). */
  startAtWalBytes?: number;
  /** Stop the worker after this long with nothing to copy. */
  idleStopMs?: number;
  logger?: StoreLogger;
  /** Test hook: make the FIRST worker fail for real (its thread throws, or its checkpoint reports an error). */
  fault?: CheckpointFault;
  /**
   * A checkpoint failed with an I/O error (SQLITE_IOERR_*: a failed sync, read or write of the
   * files). Not restarted: the checkpointer is halted and the store told (database.ts), as for a
   * failed WAL sync. A fresh connection's sync could succeed without the lost writes being on
   * disk, and a checkpoint would then copy frames the WAL on disk may not have.
   */
  onIoError?: (problem: string) => void;
}

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 30_000;
/** SQLite's default autocheckpoint threshold: 1,000 pages of 4 KiB. */
export const CHECKPOINT_AT_WAL_BYTES = 4 * 1024 * 1024;
const IDLE_STOP_MS = 60_000;
/** How often the WAL's size is looked at while no worker runs. */
const WATCH_MS = 1000;

export class SupervisedCheckpointer {
  private worker: Worker | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Watches the WAL's size while no worker runs (null while one does). */
  private watchTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private consecutiveFailures = 0;
  /** The fault hook applies to the first worker started. */
  private fault: CheckpointFault | undefined;
  /** Since when the running worker has found nothing to copy (0: it found something last time). */
  private idleSince = 0;
  private lastLog = -1;
  private readonly walFile: string;
  private readonly startAt: number;
  private readonly modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
  /** Failures so far (errors and crashes). */
  failures = 0;
  /** Workers started after a failure. */
  restarts = 0;
  /** Workers started because the WAL grew (for tests and diagnostics). */
  starts = 0;
  /** Null while healthy; otherwise what went wrong and that a restart is under way. */
  problem: string | null = null;

  constructor(private readonly opts: CheckpointerOptions) {
    this.fault = opts.fault;
    this.walFile = `${opts.filename}-wal`;
    this.startAt = opts.startAtWalBytes ?? CHECKPOINT_AT_WAL_BYTES;
    this.watch();
  }

  /** True while a worker thread exists (running, or stopping after idling). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** No worker: look at the WAL's size now and then every second; start one once it is past the threshold. */
  private watch(): void {
    if (this.stopping || this.worker || this.watchTimer) return;
    if (this.walBytes() > this.startAt) {
      this.starts++;
      this.spawn();
      return;
    }
    this.watchTimer = setTimeout(() => {
      this.watchTimer = null;
      this.watch();
    }, WATCH_MS);
    this.watchTimer.unref();
  }

  private walBytes(): number {
    try {
      return statSync(this.walFile).size;
    } catch {
      return 0; // no WAL file yet
    }
  }

  private spawn(): void {
    const fault = this.fault;
    this.fault = undefined;
    this.idleSince = 0;
    this.lastLog = -1;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { filename: this.opts.filename, intervalMs: this.opts.intervalMs ?? 1000, modulePath: this.modulePath, fault },
    });
    worker.unref(); // never keeps the process alive
    this.worker = worker;
    let failed = false;
    const fail = (what: string) => {
      if (failed || this.stopping || this.worker !== worker) return;
      failed = true;
      void worker.terminate();
      this.onFailure(what);
    };
    worker.on('message', (m: { type: string; message?: string; code?: unknown; log?: number; checkpointed?: number }) => {
      if (m.type === 'ok' && this.worker === worker) {
        if (this.problem !== null) this.opts.logger?.info({ restarts: this.restarts }, 'WAL checkpointer recovered');
        this.problem = null;
        this.consecutiveFailures = 0;
      } else if (m.type === 'run' && this.worker === worker) this.afterRun(worker, m.log ?? 0, m.checkpointed ?? 0);
      else if (m.type === 'error') {
        if (typeof m.code === 'string' && m.code.startsWith('SQLITE_IOERR') && !this.stopping && this.worker === worker) {
          this.failures++;
          const problem = `checkpoint failed with an I/O error (${m.code}): ${m.message}; not restarted`;
          this.problem = problem;
          this.halt();
          this.opts.onIoError?.(problem);
          return;
        }
        fail(`checkpoint failed: ${m.message}`);
      }
    });
    worker.on('error', (err) => fail(`checkpointer thread crashed: ${err.message}`));
    worker.on('exit', (code) => fail(`checkpointer thread exited (code ${code})`));
  }

  /**
   * After each checkpoint: a worker that found every frame already copied and the WAL not
   * grown, for idleStopMs, is stopped (a final checkpoint, then the thread exits); the size
   * watch takes over.
   */
  private afterRun(worker: Worker, log: number, checkpointed: number): void {
    const idle = log === checkpointed && log === this.lastLog;
    this.lastLog = log;
    if (!idle || this.problem !== null) {
      this.idleSince = 0;
      return;
    }
    const now = Date.now();
    if (this.idleSince === 0) this.idleSince = now;
    if (now - this.idleSince < (this.opts.idleStopMs ?? IDLE_STOP_MS)) return;
    this.worker = null; // from here its exit is not a failure
    worker.postMessage('idle'); // truncate the WAL if nobody uses it right now, then close
    const gone = setTimeout(() => void worker.terminate(), 2000);
    gone.unref();
    worker.on('message', (m: { type: string }) => {
      if (m.type === 'stopped') void worker.terminate();
    });
    worker.once('exit', () => {
      clearTimeout(gone);
      this.watch();
    });
  }

  private onFailure(what: string): void {
    this.failures++;
    this.consecutiveFailures++;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (this.consecutiveFailures - 1));
    this.problem = `${what}; restarting (failure ${this.failures})`;
    this.opts.logger?.error({ failures: this.failures, restart_in_ms: delay, problem: what }, 'WAL checkpointer failed; restarting it');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.restarts++;
      this.worker = null;
      this.spawn();
    }, delay);
    this.restartTimer.unref();
  }

  /** Stop for good: no more watching or restarting; hands back the running worker, if any. */
  private detach(): Worker | null {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchTimer = null;
    const worker = this.worker;
    this.worker = null;
    return worker;
  }

  /** Stop at once, without a final checkpoint and for good (the storage failed: nothing more is copied). */
  halt(reason = 'halted: the storage failed'): void {
    this.problem ??= reason;
    void this.detach()?.terminate();
  }

  /** Final checkpoint and close; resolves even if the worker is already gone. */
  stop(): Promise<void> {
    const worker = this.detach();
    if (!worker) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => void worker.terminate().finally(resolve), 2000);
      worker.on('message', (m: { type: string }) => {
        if (m.type !== 'stopped') return;
        clearTimeout(timer);
        void worker.terminate().finally(resolve);
      });
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage('stop');
    });
  }
}
