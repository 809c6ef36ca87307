/**
 * Test helpers for the webhook dispatcher: a real node:http receiver on 127.0.0.1 and the real
 * embedded store on a temp-dir file (DispatchFixture). Integration tests use the real server.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { createStore } from '../../src/store/index.js';
import type { Delivery, DeliveryAttempt, Store, WebhookEndpoint, WebhookPatch } from '../../src/store/types.js';
import type { EventType } from '@tpx-realtime/protocol';
import { appendOne } from '../store/contract.js';

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

/**
 * The dispatcher's store for tests: the real SqliteStore (what `tpx serve` runs by default) on a
 * file in a fresh temp dir, created through createStore(loadConfig({ TPX_DATA_DIR })) — no
 * stand-in. Endpoints get an account each; deliveries are created the way users create them,
 * by appending an event addressed to that account.
 */
export class DispatchFixture {
  private constructor(
    readonly store: Store,
    readonly dataDir: string,
  ) {}

  /** `env` may select another backend, e.g. { TPX_DATABASE_URL: 'postgres://…' } (test/helpers/pg.ts). */
  static async create(env: Record<string, string> = {}): Promise<DispatchFixture> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tpx-dispatch-'));
    const store = createStore(loadConfig({ TPX_DATA_DIR: dataDir, ...env }));
    await store.init();
    return new DispatchFixture(store, dataDir);
  }

  async close(): Promise<void> {
    await this.store.close().catch(() => {});
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A new account with one enabled endpoint; `extra` sets further endpoint fields (e.g. a rotation's previous secret). */
  async addEndpoint(url: string, secret: string, extra: WebhookPatch = {}): Promise<WebhookEndpoint> {
    const account = await this.store.createAccount({ name: 'dispatch-test' });
    const ep = await this.store.createWebhook(account.account_id, { url, secret });
    if (Object.keys(extra).length === 0) return ep;
    return (await this.store.updateWebhook(ep.webhook_id, extra))!;
  }

  /**
   * Publishes one event to the endpoint's account and returns its delivery. For a disabled
   * endpoint (publishing creates no delivery for it, SPEC §4) the delivery is the one a
   * publish made just before the endpoint got disabled: enable, publish, restore the disabled
   * state, all through the store API.
   */
  async addDelivery(ep: WebhookEndpoint, msgType: EventType = 'BID_REQUEST', payload: unknown = { auction_id: 'a1' }): Promise<Delivery> {
    const current = (await this.store.getWebhook(ep.webhook_id))!;
    if (!current.enabled) await this.store.updateWebhook(ep.webhook_id, { enabled: true });
    const msgId = randomUUID();
    try {
      const res = await appendOne(this.store, {
        msg_id: msgId,
        msg_type: msgType,
        payload_json: JSON.stringify(payload),
        source_id: null,
        target: [ep.account_id],
        created_at_ms: Date.now(),
      });
      if (res.deliveries !== 1) throw new Error(`expected one delivery, the store made ${res.deliveries}`);
    } finally {
      if (!current.enabled) await this.store.updateWebhook(ep.webhook_id, { enabled: false, disabled_reason: current.disabled_reason });
    }
    const [d] = (await this.store.listDeliveries({ webhook_id: ep.webhook_id, limit: 1000 })).filter((x) => x.msg_id === msgId);
    return d;
  }

  /** Fresh snapshot of a delivery and its attempts. */
  async row(deliveryId: string): Promise<{ delivery: Delivery; attempts: DeliveryAttempt[] }> {
    const found = await this.store.getDelivery(deliveryId);
    if (!found) throw new Error(`no delivery ${deliveryId}`);
    return found;
  }

  /** Fresh snapshot of an endpoint. */
  async endpoint(webhookId: string): Promise<WebhookEndpoint> {
    const found = await this.store.getWebhook(webhookId);
    if (!found) throw new Error(`no webhook ${webhookId}`);
    return found;
  }
}

/** Poll `fn` every 10 ms until it holds; fails after `timeoutMs` naming what was awaited. */
export async function until(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
