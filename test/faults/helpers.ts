/**
 * Shared pieces of the fault-injection suite: a seeded PRNG (every random moment is
 * reproducible from the printed seed), a real webhook receiver, the account's log read back over
 * HTTP, the stream checks (contiguous, exactly once, in order), server RSS, and the figures line
 * the suite prints for the lead.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { api, waitFor, type TestServer } from '../helpers/server.js';
import type { Frame } from '../helpers/ws-client.js';
import type { ResumingClient } from './resuming-client.js';

export { between, prng } from '../helpers/random.js';

/** The suite's seed: TPX_FAULT_SEED reproduces a run; printed with every figure line. */
export const SEED = Number(process.env.TPX_FAULT_SEED ?? 20_260_901);

/** Prints one line of figures the lead can quote (visible in the vitest output). */
export function figures(suite: string, values: Record<string, number | string>): void {
  const text = Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`[fault-figures] ${suite}: ${text} seed=${SEED}`);
}

// ---------------------------------------------------------------------------
// Webhook receiver

export interface ReceivedHook {
  msg_id: string;
  seq: number;
  destination_id: string;
}

/** A real HTTP endpoint that acknowledges every webhook and counts each (destination, msg_id). */
export class WebhookReceiver {
  readonly received = new Map<string, Map<string, number>>();
  total = 0;
  private server!: Server;
  url = '';

  static async start(): Promise<WebhookReceiver> {
    const r = new WebhookReceiver();
    r.server = createServer((req, res) => r.handle(req, res));
    r.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', () => resolve()));
    r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
    return r;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceivedHook;
        let perAccount = this.received.get(body.destination_id);
        if (!perAccount) this.received.set(body.destination_id, (perAccount = new Map()));
        perAccount.set(body.msg_id, (perAccount.get(body.msg_id) ?? 0) + 1);
        this.total++;
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  }

  /** Deliveries beyond the first of each (destination, msg_id): allowed (at least once), reported. */
  redeliveries(): number {
    let n = 0;
    for (const m of this.received.values()) for (const c of m.values()) n += c - 1;
    return n;
  }

  missing(accountId: string, msgIds: Iterable<string>): string[] {
    const got = this.received.get(accountId);
    return [...msgIds].filter((id) => !got?.has(id));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------
// The account's log, read back over HTTP (SPEC §2.8)

export interface LogEntry {
  seq: number;
  msg_id: string;
  msg_type: string;
}

export async function readLog(server: Pick<TestServer, 'url' | 'adminToken'>, token: string): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  let after = 0;
  for (;;) {
    const res = await api(server, 'GET', `/v1/events?after_seq=${after}&limit=1000`, undefined, { token: null, headers: { 'x-api-key': token } });
    if (res.status !== 200) throw new Error(`GET /v1/events: ${res.status} ${res.text.slice(0, 500)}`);
    const events = res.body.events as Frame[];
    for (const e of events) out.push({ seq: e.seq as number, msg_id: e.msg_id as string, msg_type: e.msg_type });
    // A page may be cut short by bytes as well as by `limit` (docs/protocol.md): follow has_more.
    if (!res.body.has_more) return out;
    after = res.body.next_after_seq as number;
  }
}

/** Seqs are exactly 1..n (no hole, no repeat) and no msg_id appears twice. Returns the duplicate count. */
export function expectContiguous(log: LogEntry[], what: string): void {
  const holes: number[] = [];
  for (let i = 0; i < log.length; i++) if (log[i]!.seq !== i + 1) holes.push(i);
  expect(holes.slice(0, 5).map((i) => ({ index: i, seq: log[i]!.seq })), `${what}: seqs must be 1..${log.length}`).toEqual([]);
  expect(log.length - new Set(log.map((e) => e.msg_id)).size, `${what}: msg_ids stored twice`).toBe(0);
}

/**
 * A client's received event frames against the expected stream: each expected msg_id exactly
 * once, in seq order, nothing else. Returns { lost, duplicates } for the figures.
 */
export function compareStream(received: Frame[], expected: LogEntry[], what: string): { lost: number; duplicates: number } {
  const seen = new Map<string, number>();
  for (const f of received) seen.set(f.msg_id as string, (seen.get(f.msg_id as string) ?? 0) + 1);
  const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
  const expectedIds = new Set(expected.map((e) => e.msg_id));
  const lost = expected.filter((e) => !seen.has(e.msg_id));
  const foreign = received.filter((f) => !expectedIds.has(f.msg_id as string));
  let outOfOrder = 0;
  for (let i = 1; i < received.length; i++) if ((received[i]!.seq as number) <= (received[i - 1]!.seq as number)) outOfOrder++;
  expect(lost.slice(0, 5).map((e) => e.seq), `${what}: events lost (of ${expected.length})`).toEqual([]);
  expect(duplicates, `${what}: events received twice`).toBe(0);
  expect(foreign.slice(0, 5).map((f) => f.msg_id), `${what}: events not of this stream`).toEqual([]);
  expect(outOfOrder, `${what}: events out of seq order`).toBe(0);
  return { lost: lost.length, duplicates };
}

// ---------------------------------------------------------------------------
// Process memory

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the maximum. */
export class RssSampler {
  max = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number, everyMs = 100) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): number {
    try {
      const v = rssOf(this.pid);
      if (v > this.max) this.max = v;
      return v;
    } catch {
      return 0;
    }
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.max;
  }
}

export const MiB = 1024 * 1024;

/**
 * Waits until each resuming client has received the last expected seq, stops them all, and checks
 * each stream exactly once, in order. `expected[i]` is client i's expected stream.
 */
export async function checkResumingClients(clients: ResumingClient[], expected: LogEntry[][], what: string): Promise<{ lost: number; duplicates: number }> {
  await waitFor(() => clients.every((c, i) => c.lastSeq >= (expected[i]!.at(-1)?.seq ?? 0)), 20_000, `every client caught up (${what})`);
  let lost = 0;
  let duplicates = 0;
  for (const [i, c] of clients.entries()) {
    await c.stop();
    const r = compareStream(c.received, expected[i]!, `${what}: client ${i} (${c.connections} connections)`);
    lost += r.lost;
    duplicates += r.duplicates;
  }
  return { lost, duplicates };
}
