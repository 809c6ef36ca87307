/**
 * Test helpers for the webhook dispatcher: a real node:http receiver on 127.0.0.1 and a small
 * in-memory stand-in for the dispatcher side of the Store (claim/lease/record), so dispatcher
 * behaviour is tested without a database. Integration tests use the real server and store.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { AttemptResolution, ClaimedDelivery, Delivery, DeliveryAttempt, Store, WebhookEndpoint, WebhookPatch } from '../../src/store/types.js';
import type { EventType } from '../../src/protocol/constants.js';

export interface Received {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  status: number;
}

export type Responder = (req: IncomingMessage, body: string, n: number) => number | { status: number; headers?: Record<string, string>; delayMs?: number; body?: string };

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  setResponder(r: Responder): void;
  close(): Promise<void>;
}

export async function startReceiver(responder: Responder = () => 200): Promise<Receiver> {
  let respond = responder;
  const received: Received[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const out = respond(req, body, n++);
      const spec = typeof out === 'number' ? { status: out } : out;
      const finish = () => {
        let json: unknown = null;
        try {
          json = JSON.parse(body);
        } catch {
          /* keep null */
        }
        received.push({ at: Date.now(), path: req.url ?? '/', headers: req.headers, body, json, status: spec.status });
        if (res.destroyed) return;
        res.writeHead(spec.status, { 'content-type': 'text/plain', ...(spec.headers ?? {}) });
        res.end(spec.body ?? '');
      };
      if (spec.delayMs) setTimeout(finish, spec.delayMs);
      else finish();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    setResponder(r) {
      respond = r;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Row {
  delivery: Delivery;
  lease: { owner: string; until: number } | null;
  attempts: DeliveryAttempt[];
  payload_json: string;
  created_at_ms: number;
}

/** Dispatcher-side store double: same claim semantics as the Store contract (seq order, per-endpoint limit, leases). */
export class MemoryDispatchStore {
  readonly kind = 'sqlite' as const;
  readonly endpoints = new Map<string, WebhookEndpoint>();
  readonly rows: Row[] = [];
  private seq = 0;

  addEndpoint(url: string, secret: string, extra: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
    const now = new Date().toISOString();
    const ep: WebhookEndpoint = {
      webhook_id: randomUUID(),
      account_id: extra.account_id ?? randomUUID(),
      url,
      secret,
      previous_secret: null,
      previous_secret_expires_at: null,
      enabled: true,
      disabled_reason: null,
      description: null,
      failing_since: null,
      created_at: now,
      updated_at: now,
      ...extra,
    };
    this.endpoints.set(ep.webhook_id, ep);
    return ep;
  }

  addDelivery(ep: WebhookEndpoint, msgType: EventType = 'BID_REQUEST', payload: unknown = { auction_id: 'a1' }): Delivery {
    const d: Delivery = {
      delivery_id: randomUUID(),
      webhook_id: ep.webhook_id,
      account_id: ep.account_id,
      msg_id: randomUUID(),
      msg_type: msgType,
      seq: ++this.seq,
      status: 'pending',
      attempt_count: 0,
      next_attempt_at: new Date().toISOString(),
      last_status_code: null,
      last_error: null,
      created_at: new Date().toISOString(),
      completed_at: null,
    };
    this.rows.push({ delivery: d, lease: null, attempts: [], payload_json: JSON.stringify(payload), created_at_ms: Date.now() });
    return d;
  }

  row(id: string): Row {
    return this.rows.find((r) => r.delivery.delivery_id === id)!;
  }

  async claimDueDeliveries(opts: { now: Date; limit: number; leaseMs: number; owner: string; perEndpointLimit: number }): Promise<ClaimedDelivery[]> {
    const now = opts.now.getTime();
    const live = new Map<string, number>();
    for (const r of this.rows) if (r.lease && r.lease.until > now) live.set(r.delivery.webhook_id, (live.get(r.delivery.webhook_id) ?? 0) + 1);
    const due = this.rows
      .filter((r) => r.delivery.status === 'pending' && Date.parse(r.delivery.next_attempt_at!) <= now && !(r.lease && r.lease.until > now))
      .filter((r) => this.endpoints.get(r.delivery.webhook_id)?.enabled)
      .sort((a, b) => Date.parse(a.delivery.next_attempt_at!) - Date.parse(b.delivery.next_attempt_at!) || a.delivery.seq - b.delivery.seq);
    const out: ClaimedDelivery[] = [];
    for (const r of due) {
      if (out.length >= opts.limit) break;
      const n = live.get(r.delivery.webhook_id) ?? 0;
      if (n >= opts.perEndpointLimit) continue;
      live.set(r.delivery.webhook_id, n + 1);
      r.lease = { owner: opts.owner, until: now + opts.leaseMs };
      const ep = this.endpoints.get(r.delivery.webhook_id)!;
      out.push({
        delivery: { ...r.delivery },
        endpoint: { ...ep },
        account: { account_id: ep.account_id, partner_id: null },
        event: {
          account_id: ep.account_id,
          seq: r.delivery.seq,
          msg_id: r.delivery.msg_id,
          msg_type: r.delivery.msg_type,
          payload_json: r.payload_json,
          source_id: null,
          created_at_ms: r.created_at_ms,
        },
      });
    }
    return out;
  }

  async recordAttempt(id: string, owner: string, attempt: Omit<DeliveryAttempt, 'attempt_id' | 'delivery_id'>, res: AttemptResolution): Promise<boolean> {
    const r = this.row(id);
    if (!r || !r.lease || r.lease.owner !== owner) return false;
    r.lease = null;
    r.attempts.push({ ...attempt, attempt_id: randomUUID(), delivery_id: id });
    const d = r.delivery;
    d.attempt_count++;
    d.last_status_code = attempt.status_code;
    d.last_error = attempt.error;
    d.status = res.status;
    d.next_attempt_at = res.status === 'pending' ? res.next_attempt_at : null;
    if (res.status !== 'pending') d.completed_at = new Date().toISOString();
    return true;
  }

  async nextDueAt(): Promise<Date | null> {
    let min: number | null = null;
    for (const r of this.rows) {
      if (r.delivery.status !== 'pending' || !this.endpoints.get(r.delivery.webhook_id)?.enabled) continue;
      const t = Date.parse(r.delivery.next_attempt_at!);
      if (min === null || t < min) min = t;
    }
    return min === null ? null : new Date(min);
  }

  async deliveryCounts() {
    return {
      pending: this.rows.filter((r) => r.delivery.status === 'pending').length,
      failed: this.rows.filter((r) => r.delivery.status === 'failed').length,
    };
  }

  async getWebhook(id: string) {
    const ep = this.endpoints.get(id);
    return ep ? { ...ep } : null;
  }

  async updateWebhook(id: string, patch: WebhookPatch) {
    const ep = this.endpoints.get(id);
    if (!ep) return null;
    Object.assign(ep, patch, { updated_at: new Date().toISOString() });
    return { ...ep };
  }

  asStore(): Store {
    return this as unknown as Store;
  }
}
