/**
 * The shared append rules (src/store/shared/append.ts), model-checked: an account deleted between
 * the plan and the row locks (PostgreSQL) must leave the same answer as a deletion before the
 * plan (SQLite, where plan and writes share one transaction): broadcasts address the accounts
 * that exist, and an event naming a deleted account is UNKNOWN_ACCOUNT listing exactly the
 * deleted ones it named.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accountsToLock, planAppend, settleRecipients, type AppendLookups } from '../../src/store/shared/append.js';
import { UnknownAccountsError, type NewEvent } from '../../src/store/types.js';
import { ev } from './contract.js';

const TYPES = ['BID_REQUEST', 'BID_OUTBID'] as const;

function lookups(accounts: Map<string, Set<string>>): AppendLookups {
  return { storedRecipients: () => undefined, rooms: (id) => accounts.get(id), allAccounts: () => [...accounts.keys()] };
}

/** The outcome of an append: recipients per event, or the unknown accounts it was refused for. */
function outcome(run: () => Array<{ recipients: string[] }>): { recipients: string[][] } | { unknown: string[] } {
  try {
    return { recipients: run().map((p) => p.recipients) };
  } catch (err) {
    if (err instanceof UnknownAccountsError) return { unknown: [...err.accountIds].sort() };
    throw err;
  }
}

describe('append planning: accounts deleted between the plan and the row locks', () => {
  it('settling a plan made before the deletions answers exactly what a plan made after them answers', () => {
    const ids = Array.from({ length: 6 }, (_, i) => `acc-${i}`);
    fc.assert(
      fc.property(
        fc.array(fc.subarray([...TYPES], { minLength: 0 }), { minLength: ids.length, maxLength: ids.length }),
        fc.subarray(ids),
        fc.array(fc.record({ broadcast: fc.boolean(), named: fc.subarray(ids, { minLength: 1 }), type: fc.constantFrom(...TYPES) }), { minLength: 1, maxLength: 4 }),
        (rooms, deleted, specs) => {
          const before = new Map(ids.map((id, i) => [id, new Set<string>(rooms[i])]));
          const after = new Map([...before].filter(([id]) => !deleted.includes(id)));
          const events: NewEvent[] = specs.map((s) => ev(s.broadcast ? 'broadcast' : s.named, { msg_type: s.type }));

          const expected = outcome(() => planAppend(events, lookups(after)));
          const actual = outcome(() => {
            const plans = planAppend(events, lookups(before));
            // What the row locks find: the locked set always covers every recipient and named account.
            expect(new Set(accountsToLock(plans))).toEqual(new Set(plans.flatMap((p) => [...p.recipients, ...(p.event.target === 'broadcast' ? [] : p.event.target)])));
            const changed = settleRecipients(plans, (id) => after.has(id));
            for (const p of changed) expect(p.event.target).toBe('broadcast');
            return plans;
          });
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a broadcast drops the deleted account; an event that named it is refused naming only it', () => {
    const accounts = new Map([
      ['a', new Set(['BID_REQUEST'])],
      ['b', new Set(['BID_REQUEST'])],
      ['c', new Set<string>()], // may not access the room: still a named account
    ]);
    const broadcast = planAppend([ev('broadcast')], lookups(accounts));
    expect(broadcast[0].recipients).toEqual(['a', 'b']);
    expect(settleRecipients(broadcast, (id) => id !== 'b')).toEqual(broadcast);
    expect(broadcast[0].recipients).toEqual(['a']);

    const named = planAppend([ev(['a', 'c'])], lookups(accounts));
    expect(() => settleRecipients(named, (id) => id !== 'c')).toThrow(new UnknownAccountsError(['c']));
    expect(settleRecipients(named, () => true)).toEqual([]);
  });
});
