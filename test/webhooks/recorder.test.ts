/**
 * Batched attempt records: Store.recordAttempts on the real embedded store, and the dispatcher's
 * AttemptRecorder that groups attempts completing close together into one such call.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreValidationError, type RecordAttemptItem } from '../../src/store/types.js';
import { AttemptRecorder } from '../../src/webhooks/recorder.js';
import { generateSecret } from '../../src/webhooks/signing.js';
import { startPostgres, type TestPostgres } from '../helpers/pg.js';
import { DispatchFixture } from './helpers.js';

const fixtures: DispatchFixture[] = [];
afterEach(async () => {
  while (fixtures.length) await fixtures.pop()!.close();
});

let pgServer: TestPostgres | undefined;
beforeAll(async () => {
  pgServer = await startPostgres();
});
afterAll(async () => {
  await pgServer?.stop();
});

/** Backend of the store under test; the AttemptRecorder cases use the default (SQLite). */
let backend: 'sqlite' | 'postgres' = 'sqlite';

async function leased(n: number, owner = 'node-a') {
  const fx = await DispatchFixture.create(backend === 'postgres' ? { TPX_DATABASE_URL: await pgServer!.createDatabase() } : {});
  expect(fx.store.kind).toBe(backend);
  fixtures.push(fx);
  const ep = await fx.addEndpoint('http://127.0.0.1:9/hook', generateSecret());
  for (let i = 0; i < n; i++) await fx.addDelivery(ep);
  const claimed = await fx.store.claimDueDeliveries({ now: new Date(), limit: n, leaseMs: 60_000, owner, perEndpointLimit: n });
  expect(claimed).toHaveLength(n);
  return { fx, ids: claimed.map((c) => c.delivery.delivery_id) };
}

const ok = (deliveryId: string, owner = 'node-a'): RecordAttemptItem => ({
  deliveryId,
  owner,
  attempt: { attempted_at: new Date().toISOString(), status_code: 200, latency_ms: 1.5, error: null, outcome: 'succeeded' },
  resolution: { status: 'succeeded' },
});

describe.each(['sqlite', 'postgres'] as const)('Store.recordAttempts (%s)', (kind) => {
  beforeAll(() => {
    backend = kind;
  });
  afterAll(() => {
    backend = 'sqlite';
  });

  it('records each item on its own, in one call; lease rules per item', async () => {
    const { fx, ids } = await leased(4);
    const retryAt = new Date(Date.now() + 60_000).toISOString();
    const retry: RecordAttemptItem = {
      deliveryId: ids[1],
      owner: 'node-a',
      attempt: { attempted_at: new Date().toISOString(), status_code: 503, latency_ms: 2, error: 'HTTP 503', outcome: 'retry' },
      resolution: { status: 'pending', next_attempt_at: retryAt },
    };
    const res = await fx.store.recordAttempts([ok(ids[0]), retry, ok(ids[2], 'someone-else'), ok('no-such-delivery'), ok(ids[0])]);
    // Foreign owner, unknown id and a second record of the same delivery (lease already released) are refused.
    expect(res.map((r) => r.recorded)).toEqual([true, true, false, false, false]);

    const d0 = await fx.row(ids[0]);
    expect(d0.delivery).toMatchObject({ status: 'succeeded', attempt_count: 1, last_status_code: 200 });
    expect(d0.attempts).toHaveLength(1);
    expect(d0.attempts[0]).toMatchObject({ status_code: 200, outcome: 'succeeded', error: null, latency_ms: 1.5 });
    const d1 = await fx.row(ids[1]);
    expect(d1.delivery).toMatchObject({ status: 'pending', attempt_count: 1, next_attempt_at: retryAt, last_error: 'HTTP 503' });
    // Untouched: still leased by node-a, no attempt.
    expect((await fx.row(ids[2])).attempts).toHaveLength(0);
    expect((await fx.store.recordAttempts([ok(ids[2]), ok(ids[3])])).map((r) => r.recorded)).toEqual([true, true]);
    expect(await fx.store.recordAttempts([])).toEqual([]);
  });

  it('a malformed item rejects the whole call and writes nothing', async () => {
    const { fx, ids } = await leased(2);
    const bad: RecordAttemptItem = { ...ok(ids[1]), resolution: { status: 'pending', next_attempt_at: 'not a date' } };
    await expect(fx.store.recordAttempts([ok(ids[0]), bad])).rejects.toBeInstanceOf(StoreValidationError);
    expect((await fx.row(ids[0])).attempts).toHaveLength(0);
    expect((await fx.row(ids[0])).delivery.status).toBe('pending');
  });
});

describe('AttemptRecorder', () => {
  it('groups attempts finishing together into one store call; each caller gets its own result', async () => {
    const { fx, ids } = await leased(10);
    const calls: number[] = [];
    const store = {
      recordAttempts: (items: RecordAttemptItem[]) => (calls.push(items.length), fx.store.recordAttempts(items)),
    };
    const rec = new AttemptRecorder(store, { maxBatch: 4, maxDelayMs: 5 });
    const results = await Promise.all([...ids.map((id) => rec.record(ok(id))), rec.record(ok(ids[0], 'someone-else'))]);
    expect(results.map((r) => r.recorded)).toEqual([...ids.map(() => true), false]);
    // 11 items with batches of at most 4: three calls, none of one item each.
    expect(calls).toEqual([4, 4, 3]);
    for (const id of ids) expect((await fx.row(id)).delivery.status).toBe('succeeded');
  });

  it('a batch that fails as a whole is retried item by item (a bad item does not sink its neighbours)', async () => {
    const { fx, ids } = await leased(3);
    const rec = new AttemptRecorder(fx.store, { maxBatch: 10, maxDelayMs: 5 });
    const bad: RecordAttemptItem = { ...ok(ids[1]), resolution: { status: 'pending', next_attempt_at: 'garbage' } };
    const [a, b, c] = await Promise.allSettled([rec.record(ok(ids[0])), rec.record(bad), rec.record(ok(ids[2]))]);
    expect(a).toEqual({ status: 'fulfilled', value: { recorded: true, disabled: null } });
    expect(b.status).toBe('rejected');
    expect(c).toEqual({ status: 'fulfilled', value: { recorded: true, disabled: null } });
    expect((await fx.row(ids[1])).attempts).toHaveLength(0);
  });

  it('drain() flushes what is queued without waiting for the batch delay', async () => {
    const { fx, ids } = await leased(2);
    const rec = new AttemptRecorder(fx.store, { maxBatch: 100, maxDelayMs: 60_000 });
    const p = Promise.all(ids.map((id) => rec.record(ok(id))));
    expect(rec.waiting).toBe(2);
    await rec.drain();
    expect((await p).map((r) => r.recorded)).toEqual([true, true]);
    expect(rec.waiting).toBe(0);
  });
});
