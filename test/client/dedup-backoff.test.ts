import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../packages/client/src/backoff.js';
import { Deduplicator } from '../../packages/client/src/dedup.js';

describe('Deduplicator', () => {
  it('runs a msg_id once and reports duplicates', async () => {
    const d = new Deduplicator();
    const calls: string[] = [];
    expect(await d.run('a', () => void calls.push('a'))).toBe(true);
    expect(await d.run('a', () => void calls.push('a2'))).toBe(false);
    expect(await d.run('b', () => void calls.push('b'))).toBe(true);
    expect(calls).toEqual(['a', 'b']);
    expect(d.size).toBe(2);
  });

  it('is bounded (LRU eviction) and refreshes recently seen ids', async () => {
    const d = new Deduplicator({ capacity: 3 });
    for (const id of ['a', 'b', 'c']) await d.run(id, () => undefined);
    expect(d.has('a')).toBe(true); // refresh a: b is now the oldest
    await d.run('d', () => undefined);
    expect(d.size).toBe(3);
    expect(d.has('b')).toBe(false);
    expect(d.has('a')).toBe(true);
    expect(d.has('c')).toBe(true);
    expect(d.has('d')).toBe(true);
    for (let i = 0; i < 10_000; i++) d.add(`x${i}`);
    expect(d.size).toBe(3);
    expect(() => new Deduplicator({ capacity: 0 })).toThrow(RangeError);
  });

  it('forgets a failed attempt so a retry (e.g. the webhook copy) can process it', async () => {
    const d = new Deduplicator();
    await expect(d.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(d.has('a')).toBe(false);
    expect(await d.run('a', () => undefined)).toBe(true);
  });

  it('concurrent paths: the second waits for the in-flight attempt and does not run', async () => {
    const d = new Deduplicator();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const first = d.run('m', async () => {
      order.push('ws-start');
      await gate;
      order.push('ws-end');
    });
    const second = d.run('m', () => void order.push('webhook'));
    expect(d.isInFlight('m')).toBe(true);
    release();
    expect(await first).toBe(true);
    expect(await second).toBe(false);
    expect(order).toEqual(['ws-start', 'ws-end']);
  });

  it('concurrent paths: if the in-flight attempt fails, the waiting path processes the event', async () => {
    const d = new Deduplicator();
    let fail!: (e: Error) => void;
    const gate = new Promise<void>((_, rej) => (fail = rej));
    const first = d.run('m', () => gate);
    const ran: string[] = [];
    const second = d.run('m', () => void ran.push('webhook'));
    fail(new Error('ws handler failed'));
    await expect(first).rejects.toThrow('ws handler failed');
    expect(await second).toBe(true);
    expect(ran).toEqual(['webhook']);
  });
});

describe('Deduplicator snapshot / restore (restart of the partner process)', () => {
  it('model: after any run of handled ids, a JSON round trip remembers exactly the last `capacity` of them, newest kept', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 80 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), (ids, capacity, restoredCapacity) => {
        const before = new Deduplicator({ capacity });
        const model: string[] = []; // LRU order, oldest first
        for (const n of ids) {
          const id = `m-${n}`;
          before.add(id);
          const at = model.indexOf(id);
          if (at >= 0) model.splice(at, 1);
          model.push(id);
          if (model.length > capacity) model.shift();
        }
        const saved = JSON.parse(JSON.stringify(before.snapshot()));
        expect(saved).toEqual({ v: 1, ids: model });
        const after = new Deduplicator({ capacity: restoredCapacity });
        after.restore(saved);
        const kept = model.slice(-restoredCapacity);
        expect(after.snapshot().ids).toEqual(kept);
        for (let n = 0; n <= 30; n++) expect(after.has(`m-${n}`)).toBe(kept.includes(`m-${n}`));
      }),
      { numRuns: 300 },
    );
  });

  it('ids already handled in this run stay the most recent; an id still in flight is not saved (it must run again)', async () => {
    const d = new Deduplicator({ capacity: 3 });
    await d.run('fresh', () => undefined);
    let release!: () => void;
    const running = d.run('in-flight', () => new Promise<void>((r) => (release = r)));
    expect(d.snapshot().ids).toEqual(['fresh']);
    d.restore({ v: 1, ids: ['a', 'b', 'c'] });
    expect(d.snapshot().ids).toEqual(['b', 'c', 'fresh']);
    release();
    await running;
    expect(d.snapshot().ids).toEqual(['c', 'fresh', 'in-flight']);
  });

  it('refuses what is not a snapshot', () => {
    const d = new Deduplicator();
    d.add('kept');
    for (const bad of [null, {}, { v: 2, ids: [] }, { v: 1, ids: 'x' }, { v: 1, ids: [1] }, { v: 1, ids: ['x'.repeat(200)] }]) {
      expect(() => d.restore(bad as never)).toThrow(TypeError);
    }
    expect(d.snapshot().ids).toEqual(['kept']); // a refused snapshot changes nothing
  });
});

describe('Backoff (full jitter)', () => {
  it('ceilings double from 1 s and cap at 60 s by default', () => {
    const b = new Backoff();
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((n) => b.ceiling(n))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000,
    ]);
  });

  it('every delay is uniform in [0, ceiling]', () => {
    const b = new Backoff();
    for (let i = 0; i < 200; i++) {
      const ceiling = b.ceiling(b.attempts);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    expect(b.attempts).toBe(200);
    b.reset();
    expect(b.attempts).toBe(0);
  });

  it('uses the random source: 0 → no wait, ~1 → the ceiling', () => {
    const hi = new Backoff({ random: () => 0.9999999 });
    expect([hi.next(), hi.next(), hi.next()]).toEqual([999, 1999, 3999]);
    const lo = new Backoff({ random: () => 0 });
    expect([lo.next(), lo.next()]).toEqual([0, 0]);
  });

  it('honours custom bounds and rejects nonsense', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 250, multiplier: 3, random: () => 0.9999999 });
    expect([b.next(), b.next(), b.next()]).toEqual([99, 249, 249]);
    expect(() => new Backoff({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
    expect(() => new Backoff({ multiplier: 0.5 })).toThrow(RangeError);
  });
});
