/**
 * SPEC §2.4: routing and isolation, randomized. ~5 accounts × 2-3 connections, random room
 * access and subscriptions, ~200 random publishes (targeted, multi-account, broadcast).
 * Each connection must receive exactly the expected set of msg_ids, nothing of other
 * accounts, no duplicates, with seq strictly increasing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccountWithKey, publish, startTestServer, stopAll, waitFor, type TestServer } from '../helpers/server.js';
import { EVENT_TYPES, eventBody, type EventType } from '../helpers/payloads.js';
import { closeAllClients, connectAuthed, isEventFrame, type WsTestClient } from '../helpers/ws-client.js';

/** Small deterministic PRNG so a failure can be replayed with the logged seed. */
function mulberry32(a: number): () => number {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.TPX_TEST_SEED ?? Date.now() % 1_000_000);
const rnd = mulberry32(SEED);
const pick = <T>(arr: readonly T[]): T => arr[Math.floor(rnd() * arr.length)]!;
function sample<T>(arr: readonly T[], n: number): T[] {
  const copy = [...arr];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, n);
}

interface Acc {
  id: string;
  token: string;
  access: Set<EventType>;
}
interface Conn {
  acc: Acc;
  client: WsTestClient;
  rooms: Set<string>;
  expected: Set<string>;
}

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await closeAllClients();
  await stopAll();
});

describe(`randomized isolation (seed ${SEED}; replay with TPX_TEST_SEED=${SEED})`, () => {
  it('each connection receives exactly its expected events, nothing else, once each, in seq order', async () => {
    const accounts: Acc[] = [];
    for (let i = 0; i < 5; i++) {
      // half the accounts have restricted access
      const access = i % 2 === 0 ? new Set<EventType>(EVENT_TYPES) : new Set<EventType>(sample(EVENT_TYPES, 3 + Math.floor(rnd() * 5)));
      const body: Record<string, unknown> = { name: `iso-${i}` };
      if (access.size < EVENT_TYPES.length) body.rooms = [...access];
      const { accountId, token } = await createAccountWithKey(server, body);
      accounts.push({ id: accountId, token, access });
    }

    const conns: Conn[] = [];
    for (const acc of accounts) {
      const n = 2 + Math.floor(rnd() * 2);
      for (let k = 0; k < n; k++) {
        let rooms: string[];
        if (rnd() < 0.25) rooms = rnd() < 0.5 ? ['ALL'] : ['ALL', pick(EVENT_TYPES)];
        else {
          // at least one accessible room so the subscribe succeeds; may include inaccessible ones
          rooms = [pick([...acc.access]), ...sample(EVENT_TYPES, 1 + Math.floor(rnd() * 4))];
        }
        const client = await connectAuthed(server.wsUrl, acc.token);
        const sub = await client.subscribe(rooms);
        const expectedRooms = [...new Set(rooms.filter((r) => r === 'ALL' || acc.access.has(r as EventType)))];
        expect(sub.payload.rooms).toEqual(expectedRooms);
        conns.push({ acc, client, rooms: new Set(expectedRooms), expected: new Set() });
      }
    }

    const deliverTo = (type: EventType, addressed: Acc[], msgId: string) => {
      for (const c of conns) {
        if (!addressed.includes(c.acc)) continue;
        if (!c.acc.access.has(type)) continue;
        if (!(c.rooms.has('ALL') || c.rooms.has(type))) continue;
        c.expected.add(msgId);
      }
    };

    const allIds = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const type = pick(EVENT_TYPES);
      const r = rnd();
      let body: Record<string, unknown>;
      let addressed: Acc[];
      if (r < 0.6) {
        addressed = [pick(accounts)];
        body = eventBody(type, addressed.map((a) => a.id));
      } else if (r < 0.9) {
        addressed = sample(accounts, 2 + Math.floor(rnd() * 3));
        body = eventBody(type, addressed.map((a) => a.id));
      } else {
        addressed = accounts; // every account on this server; delivery still filtered by access
        body = eventBody(type, 'broadcast');
      }
      const res = await publish(server, body);
      expect(allIds.has(res.msg_id), 'msg_id unique per publish').toBe(false);
      allIds.add(res.msg_id);
      deliverTo(type, addressed, res.msg_id);
    }

    // wait until every connection has at least its expected events
    for (const c of conns) {
      await waitFor(
        () => [...c.expected].every((id) => c.client.history.some((f) => f.msg_id === id)),
        15_000,
        `all ${c.expected.size} expected events on a connection of ${c.acc.id} (rooms ${[...c.rooms]})`,
      );
    }
    // give any wrongly routed stragglers a chance to arrive
    await new Promise((r) => setTimeout(r, 500));

    const seqByMsg = new Map<string, Map<string, number>>(); // account -> msg_id -> seq
    for (const c of conns) {
      const events = c.client.history.filter(isEventFrame);
      const ids = events.map((f) => f.msg_id as string);
      const ctx = `account ${c.acc.id} rooms ${[...c.rooms].join(',')} access ${[...c.acc.access].join(',')} seed ${SEED}`;
      expect(new Set(ids).size, `duplicates on ${ctx}`).toBe(ids.length);
      const unexpected = ids.filter((id) => !c.expected.has(id));
      expect(unexpected, `unexpected events on ${ctx}: ${JSON.stringify(events.filter((f) => unexpected.includes(f.msg_id as string)).map((f) => f.msg_type))}`).toEqual([]);
      expect(new Set(ids)).toEqual(c.expected);
      for (let i = 1; i < events.length; i++) {
        expect(events[i]!.seq!, `seq order on ${ctx}`).toBeGreaterThan(events[i - 1]!.seq!);
      }
      for (const f of events) {
        expect(c.acc.access.has(f.msg_type as EventType), `inaccessible type ${f.msg_type} on ${ctx}`).toBe(true);
        expect(c.rooms.has('ALL') || c.rooms.has(f.msg_type), `unsubscribed type ${f.msg_type} on ${ctx}`).toBe(true);
        // same event ⇒ same seq on every connection of the account
        let m = seqByMsg.get(c.acc.id);
        if (!m) seqByMsg.set(c.acc.id, (m = new Map()));
        const prev = m.get(f.msg_id as string);
        if (prev !== undefined) expect(f.seq).toBe(prev);
        else m.set(f.msg_id as string, f.seq!);
      }
    }
    // sanity: the scenario actually delivered a meaningful number of events
    const total = conns.reduce((n, c) => n + c.expected.size, 0);
    expect(total).toBeGreaterThan(50);
  }, 120_000);
});
