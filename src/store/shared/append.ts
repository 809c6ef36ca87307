/**
 * Append semantics both stores follow (SPEC §3.1): validate, resolve idempotency and targets
 * before anything is written (so a refusal stores nothing), then one stream copy per recipient
 * and one pending delivery per enabled endpoint of that recipient. The stores only differ in
 * how they fetch what the plan needs and how they write it.
 */
import { isEventType } from '@tpx-realtime/protocol';
import { uuidv7 } from '../ids.js';
import { StoreValidationError, UnknownAccountsError, type AccountEvent, type AppendResult, type NewEvent } from '../types.js';

export interface PlannedEvent {
  event: NewEvent;
  /** Set when msg_id was accepted before (stored, or earlier in this batch): its recipients. */
  duplicateOf: { recipients: number } | null;
  /** Accounts that get the event, in the order they were addressed (broadcast: creation order). */
  recipients: string[];
}

export interface AppendLookups {
  /** Recipients of an already stored msg_id, or undefined. */
  storedRecipients(msgId: string): number | undefined;
  /** Event types an account may access, or undefined for an unknown account. */
  rooms(accountId: string): ReadonlySet<string> | undefined;
  /** Every account, in creation order (only asked for broadcasts). */
  allAccounts(): readonly string[];
}

/**
 * Pass 1: nothing is written, so a throw (unknown type, unknown accounts) stores nothing. A
 * msg_id repeated in the batch is a duplicate of its first occurrence; addressed accounts that
 * may not access the type are skipped (no seq, not counted).
 */
export function planAppend(events: NewEvent[], lookups: AppendLookups): PlannedEvent[] {
  for (const event of events) {
    if (!isEventType(event.msg_type)) throw new StoreValidationError(`Unknown msg_type: ${String(event.msg_type)}`);
  }
  const seen = new Map<string, PlannedEvent>();
  const plans: PlannedEvent[] = [];
  const unknown = new Set<string>();
  for (const event of events) {
    const earlier = seen.get(event.msg_id);
    if (earlier) {
      plans.push({ event, duplicateOf: { recipients: earlier.duplicateOf?.recipients ?? earlier.recipients.length }, recipients: [] });
      continue;
    }
    const stored = lookups.storedRecipients(event.msg_id);
    let plan: PlannedEvent;
    if (stored !== undefined) {
      plan = { event, duplicateOf: { recipients: stored }, recipients: [] };
    } else if (event.target === 'broadcast') {
      plan = { event, duplicateOf: null, recipients: lookups.allAccounts().filter((id) => lookups.rooms(id)!.has(event.msg_type)) };
    } else {
      const recipients: string[] = [];
      for (const id of new Set(event.target)) {
        const rooms = lookups.rooms(id);
        if (rooms === undefined) unknown.add(id);
        else if (rooms.has(event.msg_type)) recipients.push(id);
      }
      plan = { event, duplicateOf: null, recipients };
    }
    seen.set(event.msg_id, plan);
    plans.push(plan);
  }
  if (unknown.size > 0) throw new UnknownAccountsError([...unknown]);
  return plans;
}

/**
 * The accounts whose rows an append must lock before it gives out seqs (PostgreSQL, several
 * writers): every recipient, and every account an event named (its existence is part of the
 * answer, even when it may not access the room).
 */
export function accountsToLock(plans: readonly PlannedEvent[]): string[] {
  const ids = new Set<string>();
  for (const plan of plans) {
    if (plan.duplicateOf) continue;
    for (const id of plan.recipients) ids.add(id);
    if (plan.event.target !== 'broadcast') for (const id of plan.event.target) ids.add(id);
  }
  return [...ids];
}

/**
 * Pass 2, where the plan was made from a snapshot older than the row locks (PostgreSQL: plan,
 * then lock the accounts' rows): an account deleted in between is missing at the lock. The
 * answer follows the commit order, in which the deletion came first. A broadcast addresses
 * "every account that may access the room" (SPEC §3.1), so it simply no longer includes it; an
 * event that named it names an unknown account, so the append is refused with UNKNOWN_ACCOUNT
 * listing it, exactly as when the deletion precedes the plan, and as SQLite answers (its plan and
 * writes share one IMMEDIATE transaction, so nothing goes missing in between there). Returns the
 * plans whose recipients changed (their stored recipient count must follow).
 */
export function settleRecipients(plans: PlannedEvent[], exists: (accountId: string) => boolean): PlannedEvent[] {
  const unknown = new Set<string>();
  const changed: PlannedEvent[] = [];
  for (const plan of plans) {
    if (plan.duplicateOf) continue;
    if (plan.event.target === 'broadcast') {
      const kept = plan.recipients.filter(exists);
      if (kept.length === plan.recipients.length) continue;
      plan.recipients = kept;
      changed.push(plan);
    } else {
      for (const id of plan.event.target) if (!exists(id)) unknown.add(id);
    }
  }
  if (unknown.size > 0) throw new UnknownAccountsError([...unknown]);
  return changed;
}

/** The stream copy of an event for one account. */
export function accountCopy(event: NewEvent, accountId: string, seq: number): AccountEvent {
  return {
    account_id: accountId,
    seq,
    msg_id: event.msg_id,
    msg_type: event.msg_type,
    payload_json: event.payload_json,
    source_id: event.source_id,
    created_at_ms: event.created_at_ms,
  };
}

/** A new pending delivery, due at once (its creation time). */
export interface NewDeliveryRow {
  delivery_id: string;
  webhook_id: string;
  account_id: string;
  event_id: number;
  msg_id: string;
  msg_type: string;
  seq: number;
  created_at: number;
}

/** One pending delivery per (copy, enabled endpoint of the copy's account). */
export function newDeliveries(eventId: number, copies: readonly AccountEvent[], endpointsOf: (accountId: string) => readonly string[]): NewDeliveryRow[] {
  const out: NewDeliveryRow[] = [];
  for (const copy of copies) {
    for (const webhookId of endpointsOf(copy.account_id)) {
      out.push({
        delivery_id: uuidv7(),
        webhook_id: webhookId,
        account_id: copy.account_id,
        event_id: eventId,
        msg_id: copy.msg_id,
        msg_type: copy.msg_type,
        seq: copy.seq,
        created_at: copy.created_at_ms,
      });
    }
  }
  return out;
}

export function appendResult(plan: PlannedEvent, copies: AccountEvent[], deliveries: number): AppendResult {
  return plan.duplicateOf
    ? { msg_id: plan.event.msg_id, recipients: plan.duplicateOf.recipients, duplicate: true, events: [], deliveries: 0 }
    : { msg_id: plan.event.msg_id, recipients: plan.recipients.length, duplicate: false, events: copies, deliveries };
}
