/**
 * Assertion helpers shared by gateway/http tests.
 */
import { expect } from 'vitest';
import { publish, type TestServer } from './server.js';
import { eventBody, type EventType } from './payloads.js';
import { isEventFrame, type Frame, type WsTestClient } from './ws-client.js';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Every server frame carries an integer epoch-ms `sent_at` (SPEC §2). */
export function expectSentAt(f: Frame): void {
  expect(Number.isInteger(f.sent_at), `sent_at of ${JSON.stringify(f).slice(0, 300)}`).toBe(true);
  // epoch milliseconds, not seconds: after 2001-09-09 in ms is > 1e12
  expect(f.sent_at as number).toBeGreaterThan(1_000_000_000_000);
}

export async function expectError(c: WsTestClient, code: string, timeoutMs = 5000): Promise<Frame> {
  const f = await c.next((x) => x.msg_type === 'error', timeoutMs);
  expect(f.payload?.code, `error frame ${JSON.stringify(f)}`).toBe(code);
  expect(typeof f.payload?.error).toBe('string');
  expectSentAt(f);
  return f;
}

/**
 * Publish a sentinel event of `type` to `accountId` and wait until every client in `clients`
 * receives it. Returns, per client, the event frames received before the sentinel (removed
 * from the queue). Relies on per-account in-order delivery (SPEC §2.2 `seq`).
 */
export async function barrier(
  server: TestServer,
  accountId: string,
  clients: WsTestClient[],
  type: EventType = 'PAYMENT_SETTLED',
  timeoutMs = 5000,
): Promise<Frame[][]> {
  const res = await publish(server, eventBody(type, [accountId]));
  const out: Frame[][] = [];
  for (const c of clients) {
    await c.next((f) => f.msg_id === res.msg_id, timeoutMs);
    // Everything before the sentinel is already queued (in-order delivery).
    out.push(c.drain(isEventFrame));
  }
  return out;
}

export function msgIds(frames: Frame[]): string[] {
  return frames.map((f) => f.msg_id as string);
}
