/**
 * TpxClient over real sockets (the `ws` package, loaded lazily because Node 20 has no global
 * WebSocket) against a tiny scripted WebSocketServer that misbehaves on purpose.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { TpxClient } from '../../packages/client/src/client.js';
import type { TpxEvent } from '../../packages/client/src/types.js';

interface Script {
  onSubscribe?(ws: WebSocket, payload: { rooms: string[]; after_seq?: number }, connIndex: number): void;
  silent?: boolean;
}

const servers: WebSocketServer[] = [];
const clients: TpxClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of servers.splice(0)) {
    for (const ws of s.clients) ws.terminate();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function scriptedServer(script: Script) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(wss);
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const subscribes: Array<{ rooms: string[]; after_seq?: number }> = [];
  let conns = 0;
  wss.on('connection', (ws) => {
    const index = conns++;
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (script.silent) return;
      const send = (m: Record<string, unknown>) => ws.send(JSON.stringify({ sent_at: Date.now(), ...m }));
      if (msg.msg_type === 'authenticate') send({ msg_type: 'authenticated', payload: { account_id: 'acc', auth_method: 'api_key' } });
      if (msg.msg_type === 'subscribe') {
        subscribes.push(msg.payload);
        send({ msg_type: 'subscribed', payload: { rooms: msg.payload.rooms, resumed_from: msg.payload.after_seq } });
        script.onSubscribe?.(ws, msg.payload, index);
      }
    });
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`;
  return { wss, url, subscribes, connections: () => conns };
}

function frame(seq: number) {
  return JSON.stringify({ msg_type: 'PAYMENT_CHARGED', msg_id: `m${seq}`, seq, sent_at: Date.now(), payload: { conversation_id: 'c', payment_id: `p${seq}`, amount_cents: seq } });
}

function waitUntil(fn: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (fn()) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
}

describe('TpxClient over `ws` against a scripted server', () => {
  it('4009 slow-consumer close mid-stream: reconnects and resumes with after_seq, no duplicates', async () => {
    const srv = await scriptedServer({
      onSubscribe(ws, payload, index) {
        const from = (payload.after_seq ?? 0) + 1;
        if (index === 0) {
          for (let s = from; s <= 5; s++) ws.send(frame(s));
          ws.close(4009, 'slow consumer');
        } else {
          // Replays one already-processed event (defensive de-dup), then the rest.
          for (let s = from - 1; s <= 10; s++) if (s >= 1) ws.send(frame(s));
        }
      },
    });
    const client = new TpxClient({ url: srv.url, token: 'tp_live_x', afterSeq: 0, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    clients.push(client);
    const seen: TpxEvent<'PAYMENT_CHARGED'>[] = [];
    client.on('PAYMENT_CHARGED', async (e) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(e);
    });
    await client.connect();
    await waitUntil(() => seen.length >= 10);
    await client.drain();
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seen[2]!.payload.amount_cents).toBe(3);
    // Resumed from whatever was processed when the close arrived (handlers are slow on purpose).
    expect(srv.subscribes).toHaveLength(2);
    expect(srv.subscribes[0]!.after_seq).toBe(0);
    expect(srv.subscribes[1]!.after_seq).toBeGreaterThanOrEqual(0);
    expect(srv.subscribes[1]!.after_seq).toBeLessThanOrEqual(5);
    expect(client.stats.duplicates).toBeGreaterThanOrEqual(1);
    expect(client.stats.processed).toBe(10);
    expect(client.lastSeq).toBe(10);
  });

  it('a server that never answers (silent) is abandoned and retried', async () => {
    const srv = await scriptedServer({ silent: true });
    const client = new TpxClient({ url: srv.url, token: 'tp_live_x', connectTimeoutMs: 100, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    clients.push(client);
    const codes: string[] = [];
    client.on('reconnecting', (i) => void codes.push(i.error?.code ?? ''));
    void client.connect();
    await waitUntil(() => srv.connections() >= 3);
    expect(codes.slice(0, 2)).toEqual(['CONNECT_TIMEOUT', 'CONNECT_TIMEOUT']);
  });

  it('keepalive: a connection that goes quiet after opening is declared dead; pings keep it alive', async () => {
    let pinging = true;
    const srv = await scriptedServer({
      onSubscribe(ws, _p, index) {
        if (index > 0) return;
        const t = setInterval(() => {
          if (pinging && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ msg_type: 'ping', payload: {}, sent_at: Date.now() }));
        }, 20);
        ws.on('close', () => clearInterval(t));
      },
    });
    const pongs: number[] = [];
    srv.wss.on('connection', (ws) => ws.on('message', (d) => JSON.parse(String(d)).msg_type === 'pong' && pongs.push(1)));
    const client = new TpxClient({ url: srv.url, token: 'tp_live_x', pingIntervalMs: 200, keepaliveGraceMs: 200, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    clients.push(client);
    const reasons: string[] = [];
    client.on('reconnecting', (i) => void reasons.push(i.error?.code ?? ''));
    await client.connect();
    await waitUntil(() => pongs.length >= 10); // 10 pings answered: still the first connection
    expect(srv.connections()).toBe(1);
    expect(reasons).toEqual([]);
    pinging = false;
    await waitUntil(() => srv.connections() >= 2);
    expect(reasons[0]).toBe('KEEPALIVE_TIMEOUT');
  });

  it('close code 4001 from the server: fatal, no second connection', async () => {
    const srv = await scriptedServer({
      onSubscribe(ws) {
        ws.send(JSON.stringify({ msg_type: 'error', payload: { error: 'revoked', code: 'AUTH_API_KEY_INACTIVE' }, sent_at: Date.now() }));
        ws.close(4001, 'auth');
      },
    });
    const client = new TpxClient({ url: srv.url, token: 'tp_live_x', reconnect: { initialDelayMs: 1, maxDelayMs: 2 } });
    clients.push(client);
    const closed = new Promise((r) => client.on('closed', r));
    await client.connect();
    expect(await closed).toMatchObject({ reason: 'fatal', closeCode: 4001, error: { code: 'AUTH_API_KEY_INACTIVE' } });
    await new Promise((r) => setTimeout(r, 50));
    expect(srv.connections()).toBe(1);
  });
});
