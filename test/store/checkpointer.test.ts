/**
 * The WAL checkpointer is supervised: its worker thread really fails (the test hook makes the
 * first worker throw on its thread, or report a checkpoint error), and the failure is logged,
 * counted in /metrics, reported by /readyz, and a new worker takes over and checkpoints. It runs
 * only while there is something to copy: started when the WAL passes a size, stopped when idle.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { startServer } from '../../src/server.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { StoreLogger } from '../../src/store/logger.js';
import { api, waitFor } from '../helpers/server.js';
import { ev } from './contract.js';

const root = mkdtempSync(path.join(tmpdir(), 'tpx-checkpointer-'));
let n = 0;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function recordingLogger(): StoreLogger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('supervised WAL checkpointer', () => {
  for (const fault of ['crash', 'error'] as const) {
    it(`a ${fault === 'crash' ? 'crashed worker thread' : 'failed checkpoint'} is logged, counted, reported and the worker restarted`, async () => {
      const file = path.join(root, `db-${++n}`, 'tpx.sqlite');
      const logger = recordingLogger();
      const store = new SqliteStore({ filename: file, logger, checkpointFault: fault, checkpointAtWalBytes: 0 });
      await store.init();
      cleanups.push(() => store.close());
      const a = await store.createAccount({});
      await store.appendEvents(Array.from({ length: 50 }, () => ev([a.account_id])));
      const mainBefore = statSync(file).size;

      await waitFor(() => store.status().counters.checkpoint_failures === 1, 10_000, 'the failure to be counted');
      const failed = store.status();
      expect(failed.ok).toBe(false);
      expect(failed.checks.checkpointer).toMatch(fault === 'crash' ? /thread crashed: injected checkpointer crash/ : /checkpoint failed: injected checkpoint error/);
      expect(logger.lines.find((l) => l.level === 'error')).toMatchObject({ msg: 'WAL checkpointer failed; restarting it' });
      expect(statSync(file).size).toBe(mainBefore); // nothing checkpointed by the failed worker

      await waitFor(() => store.status().ok, 10_000, 'the restarted worker to checkpoint');
      expect(store.status().counters).toMatchObject({ checkpoint_failures: 1, checkpointer_restarts: 1 });
      expect(store.status().checks.checkpointer).toBe('ok');
      expect(logger.lines.some((l) => l.msg === 'WAL checkpointer recovered')).toBe(true);
      // The new worker really checkpoints: the WAL's pages reach the database file.
      await waitFor(() => statSync(file).size > mainBefore, 10_000, 'pages copied into the database file');
    });
  }

  it('a checkpoint that fails with an I/O error is fatal, as a failed WAL sync is: not restarted, nothing more written, the owner told', async () => {
    const file = path.join(root, `db-${++n}`, 'tpx.sqlite');
    const logger = recordingLogger();
    const store = new SqliteStore({ filename: file, logger, checkpointFault: 'ioerror', checkpointAtWalBytes: 0 });
    await store.init();
    cleanups.push(() => store.close());
    const fatal: Error[] = [];
    store.onFatal((err) => fatal.push(err));
    const a = await store.createAccount({});
    await store.appendEvents([ev([a.account_id])]);
    const mainBefore = statSync(file).size;

    await waitFor(() => fatal.length === 1, 10_000, 'the I/O error to be fatal');
    expect(fatal[0].message).toMatch(/I\/O error \(SQLITE_IOERR_FSYNC\).*restart required/);
    expect(store.status()).toMatchObject({ ok: false, counters: { checkpoint_failures: 1, checkpointer_restarts: 0 } });
    await expect(store.appendEvents([ev([a.account_id])])).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    await new Promise((r) => setTimeout(r, 1500)); // past the 100 ms restart delay and a checkpoint interval
    expect(store.status().counters.checkpointer_restarts).toBe(0);
    expect(statSync(file).size).toBe(mainBefore); // nothing copied into the database file
    expect(logger.lines.some((l) => l.msg === 'WAL checkpointer failed; restarting it')).toBe(false);
  });

  it('through the server: /readyz answers 503 while it is down, /metrics counts the failure, both recover', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const config = loadConfig({ TPX_DATA_DIR: path.join(root, `srv-${++n}`), TPX_HOST: '127.0.0.1', TPX_PORT: '0', TPX_ADMIN_TOKEN: 'tpx_admin_checkpointer_test_0123456789' });
    const server = await startServer(config, { logger: pino({ level: 'info' }, sink), storeOptions: { sqlite: { checkpointFault: 'crash', checkpointAtWalBytes: 0 } } });
    cleanups.push(() => server.close());
    const target = { url: server.url, adminToken: server.adminToken };
    const down = await waitFor(
      async () => {
        const r = await api(target, 'GET', '/readyz', undefined, { token: null });
        return r.status === 503 ? r : null;
      },
      10_000,
      '/readyz to report the checkpointer',
      20,
    );
    expect(down.body.checks.store_checkpointer).toMatch(/checkpointer thread crashed/);
    const metrics = (await api(target, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^tpx_store_checkpoint_failures_total 1$/m);
    expect(lines.join('')).toMatch(/"msg":"WAL checkpointer failed; restarting it"/);
    await waitFor(async () => (await api(target, 'GET', '/readyz', undefined, { token: null })).status === 200, 10_000, '/readyz to recover');
    expect((await api(target, 'GET', '/metrics')).text).toMatch(/^tpx_store_checkpointer_restarts_total 1$/m);
  });

  it('runs only while the WAL has content to copy: started past the size, stopped when idle, started again', async () => {
    const file = path.join(root, `db-${++n}`, 'tpx.sqlite');
    const store = new SqliteStore({ filename: file, checkpointAtWalBytes: 256 * 1024, checkpointIdleStopMs: 1500 });
    await store.init();
    cleanups.push(() => store.close());
    const cp = (store as unknown as { d: { checkpointer: { running: boolean; starts: number } } }).d.checkpointer;
    const a = await store.createAccount({});
    await store.appendEvents([ev([a.account_id])]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(cp.running).toBe(false); // a few pages: nothing worth a thread
    const mainBefore = statSync(file).size;
    for (let i = 0; i < 20; i++) await store.appendEvents(Array.from({ length: 20 }, () => ev([a.account_id], { payload_json: JSON.stringify({ pad: 'x'.repeat(2000) }) })));
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(256 * 1024);
    await waitFor(() => cp.running, 5_000, 'a worker once the WAL passed the size');
    await waitFor(() => statSync(file).size > mainBefore, 10_000, 'pages copied into the database file');
    await waitFor(() => !cp.running, 10_000, 'the worker stopped after idling');
    expect(store.status()).toMatchObject({ ok: true, counters: { checkpoint_failures: 0 } });
    await waitFor(() => statSync(`${file}-wal`).size === 0, 5_000, 'the WAL truncated by the stopping worker');
    await new Promise((r) => setTimeout(r, 1500));
    expect(cp.running).toBe(false); // stays stopped while nothing is written
    expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 1000 })).events).toHaveLength(401);
    // New growth past the size starts a worker again.
    for (let i = 0; i < 40; i++) await store.appendEvents(Array.from({ length: 20 }, () => ev([a.account_id], { payload_json: JSON.stringify({ pad: 'y'.repeat(2000) }) })));
    await waitFor(() => cp.running, 5_000, 'a worker again');
    expect(cp.starts).toBe(2);
  }, 30_000);
});

