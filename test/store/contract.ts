/**
 * Store contract: behaviour every Store implementation (SQLite, PostgreSQL) must show.
 * Run it with `storeContract('sqlite', () => makeStore())`; each test gets a fresh, initialized store.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVENT_TYPES, type EventType } from '@tpx-realtime/protocol';
import {
  StoreConflictError,
  StoreValidationError,
  UnknownAccountsError,
  type Account,
  type DeliveryAttempt,
  type AppendResult,
  type AttemptResolution,
  type DeliveryQueue,
  type EventLog,
  type NewEvent,
  type ReadEventsQuery,
  type RecordAttemptItem,
  type Store,
} from '../../src/store/types.js';
import { accessChangeContract } from './access-changes-contract.js';

/** Resolves `work` and counts the event-loop turns (setImmediate rounds) that ran while it was pending. */
export async function loopTurnsDuring<T>(work: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = () => {
    turns++;
    if (!done) setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return { value: await work, turns };
  } finally {
    done = true;
  }
}

/** One event appended alone (appendEvents of one). */
export async function appendOne(log: Pick<EventLog, 'appendEvents'>, event: NewEvent): Promise<AppendResult> {
  return (await log.appendEvents([event]))[0];
}

/** One attempt recorded alone; true when recorded (the caller held the lease). */
export async function recordOne(
  queue: Pick<DeliveryQueue, 'recordAttempts'>,
  deliveryId: string,
  owner: string,
  attempt: RecordAttemptItem['attempt'],
  resolution: AttemptResolution,
): Promise<boolean> {
  return (await queue.recordAttempts([{ deliveryId, owner, attempt, resolution }]))[0].recorded;
}

export function ev(target: string[] | 'broadcast', over: Partial<NewEvent> = {}): NewEvent {
  return {
    msg_id: randomUUID(),
    msg_type: 'BID_REQUEST',
    payload_json: JSON.stringify({ auction_id: randomUUID() }),
    source_id: null,
    target,
    created_at_ms: Date.now(),
    ...over,
  };
}

function attempt(outcome: DeliveryAttempt['outcome'], status_code: number | null = outcome === 'succeeded' ? 200 : 500): RecordAttemptItem['attempt'] {
  return { attempted_at: new Date().toISOString(), status_code, latency_ms: 12.5, error: outcome === 'succeeded' ? null : 'HTTP 500', outcome };
}

export function storeContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    const claim = (over: Partial<{ now: Date; limit: number; leaseMs: number; owner: string; perEndpointLimit: number }> = {}) =>
      store.claimDueDeliveries({ now: new Date(Date.now() + 1), limit: 100, leaseMs: 60_000, owner: 'node-a', perEndpointLimit: 100, ...over });

    describe('lifecycle and settings', () => {
      it('init is idempotent and ping answers', async () => {
        await store.init();
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('setSettingIfAbsent keeps the first value', async () => {
        expect(await store.getSetting('admin_token_hash')).toBeNull();
        expect(await store.setSettingIfAbsent('admin_token_hash', 'one')).toBe('one');
        expect(await store.setSettingIfAbsent('admin_token_hash', 'two')).toBe('one');
        expect(await store.getSetting('admin_token_hash')).toBe('one');
      });
    });

    describe('accounts', () => {
      it('creates with defaults: uuid id, all 11 rooms, ISO created_at', async () => {
        const a = await store.createAccount({});
        expect(a.account_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(a.name).toBeNull();
        expect(a.partner_id).toBeNull();
        expect(a.rooms).toEqual([...EVENT_TYPES]);
        expect(a.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        expect(await store.getAccount(a.account_id)).toEqual(a);
      });

      it('stores name, partner_id and rooms; rejects unknown rooms with StoreValidationError', async () => {
        const a = await store.createAccount({ name: 'Acme', partner_id: 'partner_acme', rooms: ['BID_REQUEST', 'PAYMENT_FAILED'] });
        expect(await store.getAccount(a.account_id)).toMatchObject({ name: 'Acme', partner_id: 'partner_acme', rooms: ['BID_REQUEST', 'PAYMENT_FAILED'] });
        await expect(store.createAccount({ rooms: ['BID_REQUEST', 'NOPE' as EventType] })).rejects.toBeInstanceOf(StoreValidationError);
        await expect(store.createAccount({ rooms: ['ALL' as EventType] })).rejects.toMatchObject({ name: 'StoreValidationError' });
      });

      it('partner_id is unique (StoreConflictError), also on update', async () => {
        const a = await store.createAccount({ partner_id: 'p1' });
        await expect(store.createAccount({ partner_id: 'p1' })).rejects.toBeInstanceOf(StoreConflictError);
        const b = await store.createAccount({ partner_id: 'p2' });
        await expect(store.updateAccount(b.account_id, { partner_id: 'p1' })).rejects.toMatchObject({ name: 'StoreConflictError' });
        // null partner ids never conflict
        await store.createAccount({});
        await store.createAccount({ partner_id: null });
        expect((await store.getAccount(a.account_id))!.partner_id).toBe('p1');
      });

      it('updates only the patched fields; unknown account → null', async () => {
        const a = await store.createAccount({ name: 'A', partner_id: 'pa' });
        const u = await store.updateAccount(a.account_id, { rooms: ['AUCTION_RESULT'] });
        expect(u).toEqual({ ...a, rooms: ['AUCTION_RESULT'] });
        const v = await store.updateAccount(a.account_id, { name: null, partner_id: null });
        expect(v).toEqual({ ...a, name: null, partner_id: null, rooms: ['AUCTION_RESULT'] });
        expect(await store.getAccount(a.account_id)).toEqual(v);
        await expect(store.updateAccount(a.account_id, { rooms: ['bid_request' as EventType] })).rejects.toBeInstanceOf(StoreValidationError);
        expect(await store.updateAccount(randomUUID(), { name: 'x' })).toBeNull();
      });

      it('lists in creation order with limit and after cursor', async () => {
        const created: Account[] = [];
        for (let i = 0; i < 5; i++) created.push(await store.createAccount({ name: `a${i}` }));
        const all = await store.listAccounts();
        expect(all.map((a) => a.account_id)).toEqual(created.map((a) => a.account_id));
        const page1 = await store.listAccounts({ limit: 2 });
        const page2 = await store.listAccounts({ limit: 2, after: page1[1].account_id });
        const page3 = await store.listAccounts({ limit: 2, after: page2[1].account_id });
        expect([...page1, ...page2, ...page3].map((a) => a.name)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
      });

      it('getAccount of unknown id is null; delete reports whether it existed', async () => {
        expect(await store.getAccount(randomUUID())).toBeNull();
        const a = await store.createAccount({});
        expect(await store.deleteAccount(a.account_id)).toBe(true);
        expect(await store.deleteAccount(a.account_id)).toBe(false);
        expect(await store.getAccount(a.account_id)).toBeNull();
      });
    });

    describe('api keys', () => {
      it('creates a tp_live_ token shown once, with a display prefix, and resolves it', async () => {
        const a = await store.createAccount({ name: 'A' });
        const { key, token } = await store.createApiKey(a.account_id, { name: 'main' });
        expect(token).toMatch(/^tp_live_[0-9A-Za-z]{43}$/);
        expect(key).toMatchObject({ account_id: a.account_id, name: 'main', status: 'active', expires_at: null, last_used_at: null });
        expect(key.token_prefix).toBe(token.slice(0, 12));
        expect(JSON.stringify(key)).not.toContain(token);
        const res = await store.lookupToken(token);
        expect(res.ok).toBe(true);
        if (res.ok) {
          expect(res.key.key_id).toBe(key.key_id);
          expect(res.account).toEqual(a);
          expect(res.key.last_used_at).not.toBeNull();
        }
        expect((await store.getApiKey(key.key_id))!.last_used_at).not.toBeNull();
        expect(await store.listApiKeys(a.account_id)).toHaveLength(1);
        expect(JSON.stringify(await store.listApiKeys(a.account_id))).not.toContain(token);
      });

      it('tokens are unique per key', async () => {
        const a = await store.createAccount({});
        const tokens = new Set<string>();
        for (let i = 0; i < 20; i++) tokens.add((await store.createApiKey(a.account_id, {})).token);
        expect(tokens.size).toBe(20);
      });

      it('unknown and malformed tokens are invalid', async () => {
        const a = await store.createAccount({});
        const { token } = await store.createApiKey(a.account_id, {});
        const flipped = token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a');
        expect(await store.lookupToken(flipped)).toEqual({ ok: false, reason: 'invalid' });
        for (const bad of ['', 'tp_live_', token + 'x', token.slice(0, -1), 'tp_test_' + token.slice(8), token.replace('tp_live_', 'TP_LIVE_'), token.slice(0, -1) + '-']) {
          expect(await store.lookupToken(bad)).toEqual({ ok: false, reason: 'invalid' });
        }
        expect(await store.lookupToken(null as unknown as string)).toEqual({ ok: false, reason: 'invalid' });
      });

      it('deactivated keys are inactive; reactivation restores them', async () => {
        const a = await store.createAccount({});
        const { key, token } = await store.createApiKey(a.account_id, {});
        expect((await store.setApiKeyStatus(key.key_id, 'inactive'))!.status).toBe('inactive');
        expect(await store.lookupToken(token)).toEqual({ ok: false, reason: 'inactive' });
        expect((await store.setApiKeyStatus(key.key_id, 'active'))!.status).toBe('active');
        expect((await store.lookupToken(token)).ok).toBe(true);
        expect(await store.setApiKeyStatus(randomUUID(), 'inactive')).toBeNull();
      });

      it('expired keys (expires_at <= now) are expired', async () => {
        const a = await store.createAccount({});
        const expiresAt = '2030-01-01T00:00:00.000Z';
        const { key, token } = await store.createApiKey(a.account_id, { expires_at: expiresAt });
        expect(key.expires_at).toBe(expiresAt);
        expect((await store.lookupToken(token, new Date('2029-12-31T23:59:59.999Z'))).ok).toBe(true);
        expect(await store.lookupToken(token, new Date(expiresAt))).toEqual({ ok: false, reason: 'expired' });
        expect(await store.lookupToken(token, new Date('2031-01-01T00:00:00Z'))).toEqual({ ok: false, reason: 'expired' });
        await expect(store.createApiKey(a.account_id, { expires_at: 'not a date' })).rejects.toBeInstanceOf(StoreValidationError);
      });

      it('deleted keys can never authenticate again', async () => {
        const a = await store.createAccount({});
        const { key, token } = await store.createApiKey(a.account_id, {});
        expect((await store.deleteApiKey(key.key_id))!.key_id).toBe(key.key_id);
        expect(await store.deleteApiKey(key.key_id)).toBeNull();
        expect(await store.getApiKey(key.key_id)).toBeNull();
        expect(await store.lookupToken(token)).toEqual({ ok: false, reason: 'invalid' });
      });

      it('last_used_at is not rewritten on every authentication', async () => {
        const a = await store.createAccount({});
        const { key, token } = await store.createApiKey(a.account_id, {});
        await store.lookupToken(token);
        const first = (await store.getApiKey(key.key_id))!.last_used_at;
        for (let i = 0; i < 5; i++) await store.lookupToken(token);
        expect((await store.getApiKey(key.key_id))!.last_used_at).toBe(first);
      });
    });

    describe('event log', () => {
      it('assigns strictly increasing seq per account, independent across accounts', async () => {
        const a = await store.createAccount({});
        const b = await store.createAccount({});
        const r1 = await appendOne(store, ev([a.account_id, b.account_id]));
        const r2 = await appendOne(store, ev([a.account_id]));
        const r3 = await store.appendEvents([ev([b.account_id]), ev([a.account_id, b.account_id])]);
        expect(r1).toMatchObject({ recipients: 2, duplicate: false, deliveries: 0 });
        const seqs = (id: string) => [r1, r2, ...r3].flatMap((r) => r.events).filter((e) => e.account_id === id).map((e) => e.seq);
        expect(seqs(a.account_id)).toEqual([1, 2, 3]);
        expect(seqs(b.account_id)).toEqual([1, 2, 3]);
        const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
        expect(read.events.map((e) => e.seq)).toEqual([1, 2, 3]);
        expect(read.last_seq).toBe(3);
        expect(read.pruned_through).toBe(0);
      });

      it('returns the stored copies exactly', async () => {
        const a = await store.createAccount({});
        const e = ev([a.account_id], { msg_type: 'PAYMENT_SETTLED', source_id: 'billing', payload_json: '{"amount":"12.50"}', created_at_ms: 1_700_000_000_123 });
        const r = await appendOne(store, e);
        const expected = { account_id: a.account_id, seq: 1, msg_id: e.msg_id, msg_type: 'PAYMENT_SETTLED', payload_json: '{"amount":"12.50"}', source_id: 'billing', created_at_ms: 1_700_000_000_123 };
        expect(r).toEqual({ msg_id: e.msg_id, recipients: 1, duplicate: false, events: [expected], deliveries: 0 });
        expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).events).toEqual([expected]);
      });

      it('is idempotent on msg_id: a re-post stores and delivers nothing and answers the same recipients', async () => {
        const a = await store.createAccount({});
        const b = await store.createAccount({});
        await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        const e = ev([a.account_id, b.account_id]);
        const first = await appendOne(store, e);
        expect(first).toMatchObject({ recipients: 2, duplicate: false, deliveries: 1 });
        const again = await appendOne(store, { ...e, target: [a.account_id], payload_json: '{"other":true}' });
        expect(again).toEqual({ msg_id: e.msg_id, recipients: 2, duplicate: true, events: [], deliveries: 0 });
        const batch = await store.appendEvents([ev([a.account_id]), e]);
        expect(batch[1]).toEqual({ msg_id: e.msg_id, recipients: 2, duplicate: true, events: [], deliveries: 0 });
        const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
        expect(read.events.map((x) => x.msg_id)).toEqual([e.msg_id, batch[0].msg_id]);
        expect(await store.listDeliveries({ account_id: a.account_id })).toHaveLength(2);
      });

      it('a msg_id repeated within one batch is a duplicate of its first occurrence', async () => {
        const a = await store.createAccount({});
        const e = ev([a.account_id]);
        const res = await store.appendEvents([e, ev([a.account_id]), { ...e, payload_json: '{"x":1}' }]);
        expect(res[0]).toMatchObject({ duplicate: false, recipients: 1 });
        expect(res[2]).toEqual({ msg_id: e.msg_id, recipients: 1, duplicate: true, events: [], deliveries: 0 });
        const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
        expect(read.events.map((x) => x.seq)).toEqual([1, 2]);
        expect(read.events[0].payload_json).toBe(e.payload_json);
      });

      it('unknown account ids throw UnknownAccountsError and store nothing (single and batch)', async () => {
        const a = await store.createAccount({});
        await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        const ghost1 = randomUUID();
        const ghost2 = randomUUID();
        const single = ev([a.account_id, ghost1]);
        const err = await appendOne(store, single).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UnknownAccountsError);
        expect((err as UnknownAccountsError).accountIds).toEqual([ghost1]);

        const good = ev([a.account_id]);
        const batchErr = await store.appendEvents([good, ev([ghost1]), ev([a.account_id, ghost2])]).catch((e: unknown) => e);
        expect(batchErr).toBeInstanceOf(UnknownAccountsError);
        expect([...(batchErr as UnknownAccountsError).accountIds].sort()).toEqual([ghost1, ghost2].sort());

        const read = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 });
        expect(read).toEqual({ events: [], pruned_through: 0, last_seq: 0 });
        expect(await store.listDeliveries({ account_id: a.account_id })).toEqual([]);
        // Nothing was recorded for idempotency either: the same msg_ids are accepted afterwards.
        expect((await appendOne(store, { ...single, target: [a.account_id] })).duplicate).toBe(false);
        expect((await appendOne(store, good)).duplicate).toBe(false);
        expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100 })).events.map((e) => e.seq)).toEqual([1, 2]);
      });

      it('a batch mixing an already-accepted msg_id and an unknown account stores nothing new', async () => {
        const a = await store.createAccount({});
        const accepted = ev([a.account_id]);
        await appendOne(store, accepted);
        const ghost = randomUUID();
        await expect(store.appendEvents([accepted, ev([a.account_id]), ev([ghost])])).rejects.toBeInstanceOf(UnknownAccountsError);
        expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).last_seq).toBe(1);
        // A re-post of an accepted msg_id is answered from the record, even if its targets no longer exist.
        expect(await appendOne(store, { ...accepted, target: [ghost] })).toMatchObject({ duplicate: true, recipients: 1 });
        expect(await store.appendEvents([])).toEqual([]);
      });

      it('addressed accounts that may not access the type are skipped (no seq, not counted)', async () => {
        const a = await store.createAccount({ rooms: ['PAYMENT_FAILED'] });
        const b = await store.createAccount({});
        await store.createWebhook(a.account_id, { url: 'https://example.com/a', secret: 'whsec_a' });
        const r = await appendOne(store, ev([a.account_id, b.account_id], { msg_type: 'BID_REQUEST' }));
        expect(r.recipients).toBe(1);
        expect(r.deliveries).toBe(0);
        expect(r.events.map((e) => e.account_id)).toEqual([b.account_id]);
        const none = await appendOne(store, ev([a.account_id], { msg_type: 'BID_OUTBID' }));
        expect(none).toMatchObject({ recipients: 0, duplicate: false, events: [], deliveries: 0 });
        expect((await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).last_seq).toBe(0);
        // Duplicate target ids count once.
        const dup = await appendOne(store, ev([b.account_id, b.account_id]));
        expect(dup.recipients).toBe(1);
      });

      it('broadcast reaches every account whose rooms include the type', async () => {
        const a = await store.createAccount({});
        const b = await store.createAccount({ rooms: ['AUCTION_RESULT'] });
        const c = await store.createAccount({ rooms: ['AUCTION_RESULT', 'BID_REQUEST'] });
        const r1 = await appendOne(store, ev('broadcast', { msg_type: 'BID_REQUEST' }));
        expect(r1.recipients).toBe(2);
        expect(r1.events.map((e) => e.account_id).sort()).toEqual([a.account_id, c.account_id].sort());
        const r2 = await appendOne(store, ev('broadcast', { msg_type: 'AUCTION_RESULT' }));
        expect(r2.recipients).toBe(3);
        const r3 = await appendOne(store, ev('broadcast', { msg_type: 'PAYMENT_FAILED' }));
        expect(r3.recipients).toBe(1);
        expect((await store.readEvents({ account_id: b.account_id, after_seq: 0, types: null, limit: 10 })).events.map((e) => e.msg_type)).toEqual(['AUCTION_RESULT']);
      });

      it('creates deliveries only for enabled webhooks of recipient accounts', async () => {
        const a = await store.createAccount({});
        const b = await store.createAccount({});
        const w1 = await store.createWebhook(a.account_id, { url: 'https://example.com/1', secret: 'whsec_1' });
        const w2 = await store.createWebhook(a.account_id, { url: 'https://example.com/2', secret: 'whsec_2' });
        const w3 = await store.createWebhook(b.account_id, { url: 'https://example.com/3', secret: 'whsec_3' });
        await store.updateWebhook(w2.webhook_id, { enabled: false, disabled_reason: 'manual' });
        const r = await appendOne(store, ev([a.account_id, b.account_id]));
        expect(r.deliveries).toBe(2);
        const ds = await store.listDeliveries({});
        expect(ds.map((d) => d.webhook_id).sort()).toEqual([w1.webhook_id, w3.webhook_id].sort());
        for (const d of ds) {
          expect(d).toMatchObject({ msg_id: r.msg_id, msg_type: 'BID_REQUEST', seq: 1, status: 'pending', attempt_count: 0, last_status_code: null, completed_at: null });
          expect(Date.parse(d.next_attempt_at!)).toBeGreaterThan(0);
        }
        const r2 = await store.appendEvents([ev([a.account_id]), ev([a.account_id])]);
        expect(r2.map((x) => x.deliveries)).toEqual([1, 1]);
        expect(await store.listDeliveries({ webhook_id: w2.webhook_id })).toEqual([]);
      });

      it('readEvents filters by after_seq and types, and limits', async () => {
        const a = await store.createAccount({});
        const types: EventType[] = ['BID_REQUEST', 'BID_OUTBID', 'AUCTION_RESULT', 'BID_REQUEST', 'PAYMENT_CHARGED', 'BID_OUTBID'];
        await store.appendEvents(types.map((t) => ev([a.account_id], { msg_type: t })));
        const page = (after: number, t: EventType[] | null, limit: number) =>
          store.readEvents({ account_id: a.account_id, after_seq: after, types: t ? new Set(t) : null, limit });
        expect((await page(0, null, 100)).events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
        expect((await page(2, null, 100)).events.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
        expect((await page(0, null, 2)).events.map((e) => e.seq)).toEqual([1, 2]);
        expect((await page(0, ['BID_OUTBID'], 100)).events.map((e) => e.seq)).toEqual([2, 6]);
        expect((await page(0, ['BID_REQUEST', 'PAYMENT_CHARGED'], 2)).events.map((e) => e.seq)).toEqual([1, 4]);
        expect((await page(4, ['BID_REQUEST', 'PAYMENT_CHARGED'], 10)).events.map((e) => e.seq)).toEqual([5]);
        expect((await page(0, [], 10)).events).toEqual([]);
        const tail = await page(6, null, 10);
        expect(tail).toEqual({ events: [], pruned_through: 0, last_seq: 6 });
        expect(await page(0, null, 0)).toEqual({ events: [], pruned_through: 0, last_seq: 6 }); // head read: counters only
        expect(await store.readEvents({ account_id: randomUUID(), after_seq: 0, types: null, limit: 10 })).toEqual({ events: [], pruned_through: 0, last_seq: 0 });
      });

      it('readEvents with max_bytes stops once the payload bytes reach the budget, returning at least one event', async () => {
        const a = await store.createAccount({});
        // UTF-8 bytes count, not characters: each payload is exactly 100 bytes ("é" is two).
        const payload = (i: number) => JSON.stringify({ i, s: 'é'.repeat(40) + 'x'.repeat(100 - 2 * 40 - 14) });
        for (let i = 0; i < 6; i++) expect(Buffer.byteLength(payload(i))).toBe(100);
        const types: EventType[] = ['BID_REQUEST', 'BID_OUTBID', 'BID_REQUEST', 'BID_REQUEST', 'BID_OUTBID', 'BID_REQUEST'];
        await store.appendEvents(types.map((t, i) => ev([a.account_id], { msg_type: t, payload_json: payload(i) })));
        const page = (over: Partial<ReadEventsQuery>) => store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 100, ...over });
        const seqs = async (over: Partial<ReadEventsQuery>) => (await page(over)).events.map((e) => e.seq);
        expect(await seqs({ max_bytes: 250 })).toEqual([1, 2, 3]); // 200 read < 250, so a third; then 300 ≥ 250
        expect(await seqs({ max_bytes: 200 })).toEqual([1, 2]);
        expect(await seqs({ max_bytes: 201 })).toEqual([1, 2, 3]);
        expect(await seqs({ max_bytes: 1 })).toEqual([1]); // at least one, whatever its size
        expect(await seqs({ max_bytes: 1, after_seq: 5 })).toEqual([6]);
        expect(await seqs({ max_bytes: 10_000 })).toEqual([1, 2, 3, 4, 5, 6]);
        expect(await seqs({ max_bytes: 10_000, limit: 2 })).toEqual([1, 2]); // limit still bounds it
        expect(await seqs({ max_bytes: 150, types: new Set<EventType>(['BID_REQUEST']), after_seq: 1 })).toEqual([3, 4]); // only matching rows count
        const counters = await page({ max_bytes: 1, limit: 0 });
        expect(counters).toEqual({ events: [], pruned_through: 0, last_seq: 6 });
        expect((await page({ max_bytes: 150 })).events[0].payload_json).toBe(payload(0));
      });

      it('prunes old events, records pruned_through, keeps newer ones and seq continuity', async () => {
        const a = await store.createAccount({});
        const b = await store.createAccount({});
        const t0 = Date.now() - 10 * 3600_000;
        await store.appendEvents([ev([a.account_id, b.account_id], { created_at_ms: t0 }), ev([a.account_id], { created_at_ms: t0 + 1 })]);
        await appendOne(store, ev([a.account_id], { created_at_ms: t0 + 3600_000 * 9 }));
        const removed = await store.pruneEvents(t0 + 3600_000);
        expect(removed).toBe(3);
        const ra = await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 });
        expect(ra.events.map((e) => e.seq)).toEqual([3]);
        expect(ra.pruned_through).toBe(2);
        expect(ra.last_seq).toBe(3);
        const rb = await store.readEvents({ account_id: b.account_id, after_seq: 0, types: null, limit: 10 });
        expect(rb).toEqual({ events: [], pruned_through: 1, last_seq: 1 });
        expect(await store.pruneEvents(t0 + 3600_000)).toBe(0);
        const next = await appendOne(store, ev([a.account_id]));
        expect(next.events[0].seq).toBe(4);
      });

      it('pruning keeps the event of an unfinished delivery readable by the dispatcher', async () => {
        const a = await store.createAccount({});
        await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        const old = Date.now() - 100 * 3600_000;
        const e = ev([a.account_id], { created_at_ms: old, payload_json: '{"keep":"me"}' });
        await appendOne(store, e);
        expect(await store.pruneEvents(Date.now() - 3600_000)).toBe(1);
        const [c] = await claim();
        expect(c.event).toMatchObject({ msg_id: e.msg_id, payload_json: '{"keep":"me"}', seq: 1 });
      });
    });

    describe('webhooks', () => {
      it('CRUD', async () => {
        const a = await store.createAccount({});
        const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_abc', description: 'main' });
        expect(w).toMatchObject({
          account_id: a.account_id,
          url: 'https://example.com/h',
          secret: 'whsec_abc',
          previous_secret: null,
          previous_secret_expires_at: null,
          enabled: true,
          disabled_reason: null,
          description: 'main',
          failing_since: null,
        });
        expect(await store.getWebhook(w.webhook_id)).toEqual(w);
        expect(await store.listWebhooks(a.account_id)).toEqual([w]);
        const exp = new Date(Date.now() + 86_400_000).toISOString();
        const u = await store.updateWebhook(w.webhook_id, { secret: 'whsec_new', previous_secret: 'whsec_abc', previous_secret_expires_at: exp, enabled: false, disabled_reason: '410' });
        expect(u).toMatchObject({ secret: 'whsec_new', previous_secret: 'whsec_abc', previous_secret_expires_at: exp, enabled: false, disabled_reason: '410', url: w.url, description: 'main' });
        expect(await store.getWebhook(w.webhook_id)).toEqual(u);
        const f = await store.updateWebhook(w.webhook_id, { failing_since: exp, description: null });
        expect(f).toMatchObject({ failing_since: exp, description: null, enabled: false });
        expect(await store.updateWebhook(randomUUID(), { url: 'x' })).toBeNull();
        expect(await store.deleteWebhook(w.webhook_id)).toBe(true);
        expect(await store.deleteWebhook(w.webhook_id)).toBe(false);
        expect(await store.getWebhook(w.webhook_id)).toBeNull();
        expect(await store.listWebhooks(a.account_id)).toEqual([]);
      });

      it('deleting a webhook deletes its deliveries', async () => {
        const a = await store.createAccount({});
        const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        await appendOne(store, ev([a.account_id]));
        expect(await store.deliveryCounts()).toEqual({ pending: 1, failed: 0 });
        await store.deleteWebhook(w.webhook_id);
        expect(await store.listDeliveries({ account_id: a.account_id })).toEqual([]);
        expect(await store.deliveryCounts()).toEqual({ pending: 0, failed: 0 });
      });
    });

    describe('deliveries (dispatcher)', () => {
      async function setup(n = 1) {
        const a = await store.createAccount({ partner_id: 'partner_acme' });
        const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        const results = [];
        for (let i = 0; i < n; i++) results.push(await appendOne(store, ev([a.account_id], { payload_json: JSON.stringify({ i }) })));
        return { a, w, results };
      }

      it('claims due deliveries with everything needed to send them', async () => {
        const { a, w, results } = await setup(1);
        const claimed = await claim();
        expect(claimed).toHaveLength(1);
        const [c] = claimed;
        expect(c.endpoint).toEqual(await store.getWebhook(w.webhook_id));
        expect(c.account).toEqual({ account_id: a.account_id, partner_id: 'partner_acme' });
        expect(c.event).toEqual(results[0].events[0]);
        expect(c.delivery).toMatchObject({ webhook_id: w.webhook_id, account_id: a.account_id, msg_id: results[0].msg_id, seq: 1, status: 'pending', attempt_count: 0 });
      });

      it('a leased delivery is not claimed again until the lease expires', async () => {
        await setup(1);
        const now = Date.now() + 1;
        const [c] = await claim({ now: new Date(now), leaseMs: 30_000, owner: 'node-a' });
        expect(await claim({ now: new Date(now + 29_000), owner: 'node-b' })).toEqual([]);
        const again = await claim({ now: new Date(now + 30_001), owner: 'node-b' });
        expect(again.map((x) => x.delivery.delivery_id)).toEqual([c.delivery.delivery_id]);
        // The first owner lost the lease: it may no longer record.
        expect(await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('succeeded'), { status: 'succeeded' })).toBe(false);
        expect(await recordOne(store, c.delivery.delivery_id, 'node-b', attempt('succeeded'), { status: 'succeeded' })).toBe(true);
      });

      it('does not claim deliveries that are not due yet, and nextDueAt reports the earliest', async () => {
        expect(await store.nextDueAt()).toBeNull();
        await setup(1);
        const [c] = await claim();
        const retryAt = new Date(Date.now() + 3600_000);
        expect(await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('retry'), { status: 'pending', next_attempt_at: retryAt.toISOString() })).toBe(true);
        expect(await claim()).toEqual([]);
        expect((await store.nextDueAt())!.getTime()).toBe(retryAt.getTime());
        const later = await claim({ now: new Date(retryAt.getTime()) });
        expect(later).toHaveLength(1);
        expect(later[0].delivery.attempt_count).toBe(1);
      });

      it('recordAttempts: only the lease owner; success is final; attempts are kept', async () => {
        await setup(1);
        const [c] = await claim();
        const id = c.delivery.delivery_id;
        expect(await recordOne(store, id, 'someone-else', attempt('succeeded'), { status: 'succeeded' })).toBe(false);
        expect(await recordOne(store, randomUUID(), 'node-a', attempt('succeeded'), { status: 'succeeded' })).toBe(false);
        const next = new Date(Date.now() - 1000).toISOString();
        expect(await recordOne(store, id, 'node-a', attempt('retry', 503), { status: 'pending', next_attempt_at: next })).toBe(true);
        // Lease released: recording again needs a new claim.
        expect(await recordOne(store, id, 'node-a', attempt('succeeded'), { status: 'succeeded' })).toBe(false);
        let got = await store.getDelivery(id);
        expect(got!.delivery).toMatchObject({ status: 'pending', attempt_count: 1, last_status_code: 503, last_error: 'HTTP 500', next_attempt_at: next, completed_at: null });
        const [c2] = await claim();
        expect(c2.delivery.delivery_id).toBe(id);
        expect(await recordOne(store, id, 'node-a', attempt('succeeded'), { status: 'succeeded' })).toBe(true);
        got = await store.getDelivery(id);
        expect(got!.delivery).toMatchObject({ status: 'succeeded', attempt_count: 2, last_status_code: 200, last_error: null, next_attempt_at: null });
        expect(got!.delivery.completed_at).not.toBeNull();
        expect(got!.attempts.map((x) => [x.outcome, x.status_code])).toEqual([
          ['retry', 503],
          ['succeeded', 200],
        ]);
        expect(got!.attempts[0]).toMatchObject({ delivery_id: id, latency_ms: 12.5 });
        // Never claimable again, even far in the future.
        expect(await claim({ now: new Date(Date.now() + 365 * 86_400_000) })).toEqual([]);
        expect(await store.nextDueAt()).toBeNull();
        expect(await store.deliveryCounts()).toEqual({ pending: 0, failed: 0 });
      });

      it('failed deliveries are dead letters until retried; retryDelivery and retryFailedDeliveries', async () => {
        const { a } = await setup(3);
        const claimed = await claim();
        expect(claimed).toHaveLength(3);
        for (const c of claimed) expect(await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('failed'), { status: 'failed' })).toBe(true);
        expect(await store.deliveryCounts()).toEqual({ pending: 0, failed: 3 });
        expect(await claim()).toEqual([]);
        expect(await store.listDeliveries({ account_id: a.account_id, status: 'failed' })).toHaveLength(3);

        const one = await store.retryDelivery(claimed[0].delivery.delivery_id);
        expect(one).toMatchObject({ status: 'pending', completed_at: null, attempt_count: 1 });
        expect(await store.retryDelivery(randomUUID())).toBeNull();
        expect(await store.deliveryCounts()).toEqual({ pending: 1, failed: 2 });

        expect(await store.retryFailedDeliveries({ account_id: a.account_id, until: '2000-01-01T00:00:00Z' })).toBe(0);
        expect(await store.retryFailedDeliveries({ account_id: randomUUID() })).toBe(0);
        expect(await store.retryFailedDeliveries({ account_id: a.account_id, since: '2000-01-01T00:00:00Z' })).toBe(2);
        expect(await store.deliveryCounts()).toEqual({ pending: 3, failed: 0 });
        const again = await claim();
        expect(again.map((c) => c.delivery.seq)).toEqual([1, 2, 3]);
        const got = await store.getDelivery(claimed[0].delivery.delivery_id);
        expect(got!.attempts).toHaveLength(1);
      });

      it('a succeeded delivery can be re-sent only through retryDelivery', async () => {
        await setup(1);
        const [c] = await claim();
        await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('succeeded'), { status: 'succeeded' });
        expect(await claim()).toEqual([]);
        const r = await store.retryDelivery(c.delivery.delivery_id);
        expect(r).toMatchObject({ status: 'pending', completed_at: null });
        const [c2] = await claim();
        expect(c2.delivery.delivery_id).toBe(c.delivery.delivery_id);
        expect(c2.event.payload_json).toBe(c.event.payload_json);
      });

      it('respects the per-endpoint limit counting live leases, in seq order', async () => {
        const { a, w } = await setup(5);
        const w2 = await store.createWebhook(a.account_id, { url: 'https://example.com/other', secret: 'whsec_y' });
        // w2 only gets the events appended after its creation
        await appendOne(store, ev([a.account_id]));
        const first = await claim({ perEndpointLimit: 2 });
        expect(first.filter((c) => c.endpoint.webhook_id === w.webhook_id).map((c) => c.delivery.seq)).toEqual([1, 2]);
        expect(first.filter((c) => c.endpoint.webhook_id === w2.webhook_id).map((c) => c.delivery.seq)).toEqual([6]);
        expect(await claim({ perEndpointLimit: 2 })).toEqual([]);
        const done = first.find((c) => c.endpoint.webhook_id === w.webhook_id)!;
        await recordOne(store, done.delivery.delivery_id, 'node-a', attempt('succeeded'), { status: 'succeeded' });
        const second = await claim({ perEndpointLimit: 2, owner: 'node-b' });
        expect(second.map((c) => [c.endpoint.webhook_id, c.delivery.seq])).toEqual([[w.webhook_id, 3]]);
      });

      it('honours the claim limit and orders by due time then seq', async () => {
        const { a, w } = await setup(4);
        const ids = (await store.listDeliveries({ webhook_id: w.webhook_id })).sort((x, y) => x.seq - y.seq);
        // Make seq 1 due later than the others after a failed attempt.
        const [c1] = await claim({ limit: 1 });
        expect(c1.delivery.seq).toBe(1);
        await recordOne(store, c1.delivery.delivery_id, 'node-a', attempt('retry'), { status: 'pending', next_attempt_at: new Date(Date.now() + 5000).toISOString() });
        const batch = await claim({ limit: 2, now: new Date(Date.now() + 10_000) });
        expect(batch.map((c) => c.delivery.seq)).toEqual([2, 3]);
        const rest = await claim({ limit: 10, now: new Date(Date.now() + 10_000) });
        expect(rest.map((c) => c.delivery.seq)).toEqual([4, 1]);
        expect(ids).toHaveLength(4);
        expect(a.account_id).toBe(w.account_id);
      });

      it('nextDueAt ignores deliveries under a live lease', async () => {
        await setup(1);
        expect(await store.nextDueAt()).not.toBeNull();
        await claim({ now: new Date(), leaseMs: 3600_000 });
        expect(await store.nextDueAt()).toBeNull();
        expect(await store.deliveryCounts()).toEqual({ pending: 1, failed: 0 });
      });

      it('a lease expired but not re-claimed still lets its owner record', async () => {
        await setup(1);
        const [c] = await claim({ leaseMs: 0 });
        expect(await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('succeeded'), { status: 'succeeded' })).toBe(true);
      });

      it('only enabled endpoints are claimed or reported due', async () => {
        const { w } = await setup(2);
        await store.updateWebhook(w.webhook_id, { enabled: false });
        expect(await claim()).toEqual([]);
        expect(await store.nextDueAt()).toBeNull();
        expect((await store.deliveryCounts()).pending).toBe(2);
        await store.updateWebhook(w.webhook_id, { enabled: true });
        expect(await claim()).toHaveLength(2);
      });

      it('listDeliveries filters by account, webhook, status and time range', async () => {
        const { a, w } = await setup(3);
        const b = await store.createAccount({});
        await store.createWebhook(b.account_id, { url: 'https://example.com/b', secret: 'whsec_b' });
        await appendOne(store, ev([b.account_id]));
        expect(await store.listDeliveries({})).toHaveLength(4);
        expect(await store.listDeliveries({ account_id: a.account_id })).toHaveLength(3);
        expect(await store.listDeliveries({ webhook_id: w.webhook_id, limit: 2 })).toHaveLength(2);
        expect(await store.listDeliveries({ status: 'succeeded' })).toHaveLength(0);
        expect(await store.listDeliveries({ since: new Date(Date.now() + 60_000).toISOString() })).toHaveLength(0);
        expect(await store.listDeliveries({ until: new Date(Date.now() + 60_000).toISOString(), account_id: b.account_id })).toHaveLength(1);
        // msg_id and msg_type; newest first; the endpoint's URL on every delivery.
        const mine = await store.listDeliveries({ account_id: a.account_id });
        expect(mine.map((d) => d.seq)).toEqual([3, 2, 1]);
        expect(mine.every((d) => d.webhook_url === w.url)).toBe(true);
        expect((await store.listDeliveries({ msg_id: mine[1].msg_id })).map((d) => d.delivery_id)).toEqual([mine[1].delivery_id]);
        expect(await store.listDeliveries({ msg_id: 'unknown' })).toEqual([]);
        await appendOne(store, ev([a.account_id], { msg_type: 'PAYMENT_FAILED' }));
        expect((await store.listDeliveries({ msg_type: 'PAYMENT_FAILED' })).map((d) => d.seq)).toEqual([4]);
        expect(await store.listDeliveries({ msg_type: 'PAYMENT_FAILED', account_id: b.account_id })).toEqual([]);
      });

      it('getDelivery gives the delivery with its attempts, endpoint, account and event', async () => {
        const { a, w, results } = await setup(1);
        const [c] = await claim();
        await recordOne(store, c.delivery.delivery_id, 'node-a', { ...attempt('retry', 503), response_excerpt: 'busy, try later' }, { status: 'pending', next_attempt_at: new Date().toISOString() });
        const got = await store.getDelivery(c.delivery.delivery_id);
        expect(got!.delivery).toMatchObject({ delivery_id: c.delivery.delivery_id, webhook_url: w.url, attempt_count: 1 });
        expect(got!.attempts.map((x) => [x.status_code, x.response_excerpt])).toEqual([[503, 'busy, try later']]);
        expect(got!.endpoint).toEqual(await store.getWebhook(w.webhook_id));
        expect(got!.account).toEqual({ account_id: a.account_id, partner_id: 'partner_acme' });
        expect(got!.event).toEqual(results[0].events[0]);
        expect(await store.getDelivery(randomUUID())).toBeNull();
      });
    });

    describe('endpoint effects, applied in the attempt transaction', () => {
      async function leased(n: number) {
        const a = await store.createAccount({});
        const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        await store.appendEvents(Array.from({ length: n }, () => ev([a.account_id])));
        const claimed = await claim();
        return { w, ids: claimed.map((c) => c.delivery.delivery_id) };
      }
      const item = (deliveryId: string, effect: RecordAttemptItem['effect'], outcome: DeliveryAttempt['outcome'] = 'retry', owner = 'node-a'): RecordAttemptItem => ({
        deliveryId,
        owner,
        attempt: attempt(outcome),
        resolution: outcome === 'succeeded' ? { status: 'succeeded' } : outcome === 'failed' ? { status: 'failed' } : { status: 'pending', next_attempt_at: new Date(Date.now() + 60_000).toISOString() },
        effect,
      });
      const DAY = 86_400_000;

      it('failing starts the streak once (the stored one counts), healthy ends it; updated_at is left alone', async () => {
        const { w, ids } = await leased(3);
        const t1 = '2030-01-01T00:00:00.000Z';
        const t2 = '2030-01-01T00:05:00.000Z';
        expect(await store.recordAttempts([item(ids[0], { kind: 'failing', at: t1, disable_after_ms: DAY })])).toEqual([{ recorded: true, disabled: null }]);
        expect(await store.getWebhook(w.webhook_id)).toEqual({ ...w, failing_since: t1 });
        await store.recordAttempts([item(ids[1], { kind: 'failing', at: t2, disable_after_ms: DAY })]);
        expect((await store.getWebhook(w.webhook_id))!.failing_since).toBe(t1); // the streak began at the first failure
        await store.recordAttempts([item(ids[2], { kind: 'healthy' }, 'succeeded')]);
        expect(await store.getWebhook(w.webhook_id)).toEqual(w);
      });

      it('disables once the stored streak has lasted disable_after_ms, with the reason, and only once', async () => {
        const { w, ids } = await leased(3);
        const start = Date.parse('2030-01-01T00:00:00.000Z');
        await store.recordAttempts([item(ids[0], { kind: 'failing', at: new Date(start).toISOString(), disable_after_ms: DAY })]);
        const before = await store.recordAttempts([item(ids[1], { kind: 'failing', at: new Date(start + DAY - 1).toISOString(), disable_after_ms: DAY })]);
        expect(before[0].disabled).toBeNull();
        const [out] = await store.recordAttempts([item(ids[2], { kind: 'failing', at: new Date(start + DAY).toISOString(), disable_after_ms: DAY })]);
        const reason = 'failing continuously since 2030-01-01T00:00:00.000Z (longer than 1d)';
        expect(out).toEqual({ recorded: true, disabled: { cause: 'failing', reason } });
        const now = (await store.getWebhook(w.webhook_id))!;
        expect(now).toMatchObject({ enabled: false, disabled_reason: reason, failing_since: '2030-01-01T00:00:00.000Z' });
        expect(now.updated_at >= w.updated_at).toBe(true);
        // A disabled endpoint gets no new deliveries (the append routing follows at once).
        expect((await store.appendEvents([ev([w.account_id])]))[0].deliveries).toBe(0);
      });

      it('a 410 disables at once; several attempts of one endpoint in one call apply in order; a lost lease applies nothing', async () => {
        const { w, ids } = await leased(3);
        const out = await store.recordAttempts([
          item(ids[0], { kind: 'failing', at: '2030-01-01T00:00:00.000Z', disable_after_ms: 0 }),
          item(ids[1], { kind: 'healthy' }, 'succeeded', 'someone-else'), // not the lease owner: no effect
          item(ids[2], { kind: 'disable', reason: 'endpoint answered 410 Gone' }, 'failed'),
        ]);
        expect(out).toEqual([
          { recorded: true, disabled: null },
          { recorded: false, disabled: null },
          { recorded: true, disabled: { cause: 'gone', reason: 'endpoint answered 410 Gone' } },
        ]);
        expect(await store.getWebhook(w.webhook_id)).toMatchObject({ enabled: false, disabled_reason: 'endpoint answered 410 Gone', failing_since: '2030-01-01T00:00:00.000Z' });
        // Re-enabling is an operator's update; it starts a fresh record.
        const back = await store.updateWebhook(w.webhook_id, { enabled: true, disabled_reason: null, failing_since: null });
        expect(back).toMatchObject({ enabled: true, disabled_reason: null, failing_since: null });
        expect((await store.appendEvents([ev([w.account_id])]))[0].deliveries).toBe(1);
      });
    });

    describe('deleteAccount', () => {
      it('cascades keys, webhooks, deliveries, attempts and the event stream', async () => {
        const a = await store.createAccount({ partner_id: 'gone' });
        const b = await store.createAccount({});
        const { key, token } = await store.createApiKey(a.account_id, {});
        const w = await store.createWebhook(a.account_id, { url: 'https://example.com/h', secret: 'whsec_x' });
        await store.createWebhook(b.account_id, { url: 'https://example.com/b', secret: 'whsec_b' });
        await store.appendEvents([ev([a.account_id, b.account_id]), ev([a.account_id])]);
        const [c] = (await claim()).filter((x) => x.account.account_id === a.account_id);
        await recordOne(store, c.delivery.delivery_id, 'node-a', attempt('failed'), { status: 'failed' });

        expect(await store.deleteAccount(a.account_id)).toBe(true);
        expect(await store.lookupToken(token)).toEqual({ ok: false, reason: 'invalid' });
        expect(await store.getApiKey(key.key_id)).toBeNull();
        expect(await store.getWebhook(w.webhook_id)).toBeNull();
        expect(await store.listDeliveries({ account_id: a.account_id })).toEqual([]);
        expect(await store.getDelivery(c.delivery.delivery_id)).toBeNull();
        expect(await store.readEvents({ account_id: a.account_id, after_seq: 0, types: null, limit: 10 })).toEqual({ events: [], pruned_through: 0, last_seq: 0 });
        // The other account is untouched; the partner_id is free again.
        expect((await store.readEvents({ account_id: b.account_id, after_seq: 0, types: null, limit: 10 })).events).toHaveLength(1);
        expect(await store.listDeliveries({ account_id: b.account_id })).toHaveLength(1);
        expect((await store.createAccount({ partner_id: 'gone' })).partner_id).toBe('gone');
        await expect(appendOne(store, ev([a.account_id]))).rejects.toBeInstanceOf(UnknownAccountsError);
      });
    });
  });
  accessChangeContract(name, makeStore);
}
