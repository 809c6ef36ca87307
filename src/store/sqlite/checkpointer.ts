/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever
 * COMMIT crosses the threshold, i.e. on the thread serving WebSockets: measured at 100 events/s
 * it stalled the event loop 12-46 ms (p99 latency followed). Instead the serving connection
 * disables auto-checkpoints and this worker thread, with its own connection, runs PASSIVE
 * checkpoints (they never block writers or readers in WAL mode) every interval.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.modulePath);
const db = new Database(workerData.filename);
db.pragma('busy_timeout = 5000');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* retried next tick */ } };
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') { clearInterval(timer); run(); db.close(); parentPort.postMessage('stopped'); }
});
`;

export class BackgroundCheckpointer {
  private readonly worker: Worker;

  constructor(filename: string, intervalMs = 1000) {
    const modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { filename, intervalMs, modulePath } });
    this.worker.unref(); // never keeps the process alive
    this.worker.on('error', () => {
      /* a failed checkpoint thread only means larger WAL files; the serving path is unaffected */
    });
  }

  /** Final checkpoint and close; resolves even if the worker is already gone. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate().finally(resolve), 2000);
      this.worker.once('message', () => {
        clearTimeout(timer);
        void this.worker.terminate().finally(resolve);
      });
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.worker.postMessage('stop');
    });
  }
}
