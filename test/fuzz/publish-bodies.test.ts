/**
 * Publish API fuzzing (SPEC §3: errors are an HTTP status plus `{ error, code }`; §3.1: bad input
 * is a 4xx, never a 500). Seeded fast-check bodies: valid events with fields mutated, wrong types,
 * random JSON, deep nesting, huge strings, broken JSON, single and batch. Every answer is 202, 400
 * or 413 with the error body, the server stays up, and a 202 means the event is in the log.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createAccountWithKey, startTestServer, stopAll, type TestServer } from '../helpers/server.js';
import { EVENT_TYPES, samplePayload, type EventType } from '../helpers/payloads.js';
import { figures, readLog, SEED } from '../faults/helpers.js';

const BODIES = 800;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { TPX_MAX_EVENT_BYTES: '8192' } });
});
afterAll(() => stopAll());

function bodiesFor(accountId: string): fc.Arbitrary<{ batch: boolean; raw: string }> {
  const anyJson = fc.jsonValue({ maxDepth: 3 });
  const type = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...EVENT_TYPES) }, { weight: 1, arbitrary: anyJson }, { weight: 1, arbitrary: fc.constantFrom('ALL', 'bid_request', '') });
  const payloadFor = (t: unknown) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constant(EVENT_TYPES.includes(t as EventType) ? samplePayload(t as EventType) : {}) },
      {
        weight: 4,
        arbitrary: fc.tuple(fc.constantFrom(...EVENT_TYPES), fc.string({ maxLength: 30 }), anyJson).map(([tt, key, v]) => {
          const p: Record<string, unknown> = samplePayload(tt);
          const keys = Object.keys(p);
          p[keys[key.length % keys.length]!] = v; // one field replaced by anything
          return p;
        }),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 9000 }).map((s) => ({ ...samplePayload('PAYMENT_SETTLED'), pad: s })) },
      { weight: 1, arbitrary: anyJson },
    );
  const chaotic = type.chain((t) =>
    fc.record(
      {
        msg_type: fc.constant(t),
        account_ids: fc.oneof({ weight: 6, arbitrary: fc.constant([accountId]) }, { weight: 1, arbitrary: fc.array(fc.oneof(fc.uuid(), anyJson), { maxLength: 3 }) }, { weight: 1, arbitrary: anyJson }),
        broadcast: fc.oneof(fc.boolean(), anyJson),
        payload: payloadFor(t),
        msg_id: fc.oneof(fc.uuid(), anyJson),
        source_id: fc.oneof(fc.string({ maxLength: 140 }), anyJson),
        extra: anyJson,
      },
      { requiredKeys: ['msg_type', 'payload'] },
    ),
  );
  const valid = fc.record({ t: fc.constantFrom(...EVENT_TYPES), id: fc.option(fc.uuid(), { nil: undefined }) }).map(({ t, id }) => ({
    msg_type: t,
    account_ids: [accountId],
    payload: samplePayload(t),
    ...(id ? { msg_id: id } : {}),
  }));
  const mutated = fc.tuple(valid, payloadFor('x')).map(([e, p]) => ({ ...e, payload: p }));
  const sized = fc.tuple(valid, fc.integer({ min: 7000, max: 9000 })).map(([e, n]) => ({ ...e, payload: { ...e.payload, pad: 'é'.repeat(n / 2) } }));
  const event = fc.oneof({ weight: 5, arbitrary: valid }, { weight: 3, arbitrary: mutated }, { weight: 2, arbitrary: sized }, { weight: 4, arbitrary: chaotic });
  const deep = fc.integer({ min: 60, max: 12_000 }).map((d) => `{"msg_type":"PAYMENT_SETTLED","account_ids":["${accountId}"],"payload":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`);
  return fc.oneof(
    { weight: 10, arbitrary: event.map((e) => ({ batch: false, raw: JSON.stringify(e) })) },
    { weight: 4, arbitrary: fc.array(event, { minLength: 0, maxLength: 6 }).map((events) => ({ batch: true, raw: JSON.stringify({ events }) })) },
    { weight: 1, arbitrary: anyJson.map((v) => ({ batch: false, raw: JSON.stringify(v) ?? 'null' })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((s) => ({ batch: s.length % 2 === 0, raw: s })) },
    { weight: 1, arbitrary: deep.map((raw) => ({ batch: false, raw })) },
    { weight: 1, arbitrary: deep.map((raw) => ({ batch: true, raw: `{"events":[${raw}]}` })) },
  );
}

describe('publish API fuzzing', () => {
  it(`${BODIES} seeded bodies: 202, 400 or 413 with {error, code}, never a 5xx; a 202 is stored`, { timeout: 120_000 }, async () => {
    const { accountId, token } = await createAccountWithKey(server, { name: 'publish-fuzz' });
    const bodies = fc.sample(bodiesFor(accountId), { seed: SEED, numRuns: BODIES });
    const statuses: Record<number, number> = {};
    const bad: string[] = [];
    const accepted = new Set<string>();
    for (const b of bodies) {
      const res = await api(server, 'POST', b.batch ? '/v1/events/batch' : '/v1/events', undefined, { rawBody: b.raw });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status === 202) {
        for (const r of b.batch ? res.body.results : [res.body]) accepted.add(r.msg_id);
        continue;
      }
      const wellFormed = typeof res.body?.error === 'string' && typeof res.body?.code === 'string';
      if (![400, 413].includes(res.status) || !wellFormed) bad.push(`${res.status} ${res.text.slice(0, 200)} ← ${b.raw.slice(0, 200)}`);
    }
    expect(bad.slice(0, 10), `${bad.length} answers outside 202/400/413 with {error, code}`).toEqual([]);
    expect((await api(server, 'GET', '/healthz', undefined, { token: null })).status).toBe(200);
    const stored = new Set((await readLog(server, token)).map((e) => e.msg_id));
    // Every accepted body addressed this account (the only one) or broadcast: each is in its log.
    const missing = [...accepted].filter((id) => !stored.has(id));
    figures('publish-fuzz', { bodies: BODIES, statuses: JSON.stringify(statuses), accepted: accepted.size, in_log: stored.size, lost: missing.length });
    expect(missing, 'accepted events missing from the log').toEqual([]);
    expect(stored.size).toBe(accepted.size);
  });
});
