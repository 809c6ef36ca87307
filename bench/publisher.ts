/**
 * Publisher process: drives the publish API (POST /v1/events or /v1/events/batch, or nchan's
 * publisher location with the complete frame as the body) over
 * keep-alive connections (undici Pool), either closed-loop "as fast as the server accepts" with
 * a fixed number of requests in flight, or open-loop at a fixed event rate. Every event payload
 * starts with `"bench_t":<µs CLOCK_MONOTONIC>` stamped just before the request is sent, which
 * the load generator reads back for publish→receive latency. Bounded in time and count.
 */
import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { Hist, nowUs } from './lib/hist.js';

export interface PublishRun {
  origin: string;
  adminToken: string;
  /**
   * `tpx`: the publish API's JSON (tpx and the bare-ws baseline build the frame themselves).
   * `nchan`: POST the frame itself to `/pub?ch=<account>` (one account): nchan delivers the body
   * as is, so the client receives the same bytes as from the other peers.
   */
  format: 'tpx' | 'nchan';
  /** Events per request: 1 → POST /v1/events, > 1 → POST /v1/events/batch. */
  batch: number;
  mode: 'max' | 'rate';
  /** Requests in flight (max mode); connection pool size in both modes. */
  concurrency: number;
  /** Events per second (rate mode). */
  rate: number;
  durationMs: number;
  /** Hard cap on events sent. */
  maxEvents: number;
  msgType: string;
  /** `{ broadcast: true }` or `{ account_ids: [...] }`. */
  target: { broadcast: true } | { account_ids: string[] };
  payload: Record<string, unknown>;
}

export interface PublishResult {
  requests: number;
  ok_requests: number;
  events_sent: number;
  events_accepted: number;
  /** Rate mode: events not sent because too many requests were already in flight. */
  skipped: number;
  statuses: Record<string, number>;
  first_error: string | null;
  elapsed_ms: number;
  /** Request→response latency (µs). */
  response: { counts: number[]; n: number; max: number; sum: number };
}

const MAX_INFLIGHT_RATE_MODE = 512;

interface RequestShape {
  path: string;
  body: () => string;
  headers: Record<string, string>;
}

/** POST /v1/events (or /batch): the event with `"bench_t"` first in its payload. */
function tpxRequest(run: PublishRun): RequestShape {
  const rest = JSON.stringify(run.payload).slice(1); // payload without its opening brace
  const head =
    '{"msg_type":' + JSON.stringify(run.msgType) + ',' + JSON.stringify(run.target).slice(1, -1) + ',"payload":{"bench_t":';
  const tail = rest === '}' ? '}}' : ',' + rest + '}';
  return {
    path: run.batch > 1 ? '/v1/events/batch' : '/v1/events',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${run.adminToken}` },
    body: () => {
      const one = head + nowUs() + tail;
      if (run.batch <= 1) return one;
      return '{"events":[' + new Array<string>(run.batch).fill(one).join(',') + ']}';
    },
  };
}

/**
 * nchan: the frame the other peers send (same fields, same order, same payload), built here
 * because nchan passes the body through. Its `seq` is the publisher's counter, not checked by
 * the load generator (requests in flight may be accepted in another order).
 */
function nchanRequest(run: PublishRun): RequestShape {
  if (run.batch > 1) throw new Error('nchan has no batch publish');
  if (!('account_ids' in run.target) || run.target.account_ids.length !== 1) throw new Error('nchan: publish to exactly one account (its channel)');
  const rest = JSON.stringify(run.payload).slice(1);
  const tail = rest === '}' ? '}}' : ',' + rest + '}';
  let seq = 0;
  return {
    path: `/pub?ch=${encodeURIComponent(run.target.account_ids[0])}`,
    headers: { 'content-type': 'application/json' },
    body: () =>
      '{"msg_type":' + JSON.stringify(run.msgType) + ',"msg_id":"' + randomUUID() + '","seq":' + ++seq +
      ',"sent_at":' + Date.now() + ',"payload":{"bench_t":' + nowUs() + tail,
  };
}

export async function publish(run: PublishRun): Promise<PublishResult> {
  const pool = new Pool(run.origin, { connections: Math.max(1, run.concurrency), pipelining: 1, keepAliveTimeout: 60_000 });
  const { path, body, headers } = run.format === 'nchan' ? nchanRequest(run) : tpxRequest(run);
  const resp = new Hist();
  const statuses: Record<string, number> = {};
  let firstError: string | null = null;
  let requests = 0;
  let okRequests = 0;
  let sent = 0;
  let accepted = 0;
  let skipped = 0;
  let inflight = 0;
  const t0 = performance.now();
  const deadline = t0 + run.durationMs;

  const one = async (): Promise<void> => {
    const n = Math.max(1, run.batch);
    sent += n;
    requests++;
    inflight++;
    const start = nowUs();
    try {
      const res = await pool.request({ path, method: 'POST', headers, body: body() });
      const text = await res.body.text();
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode >= 200 && res.statusCode < 300) {
        okRequests++;
        accepted += n;
      } else if (!firstError) firstError = `${res.statusCode} ${text.slice(0, 500)}`;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      statuses[code] = (statuses[code] ?? 0) + 1;
      if (!firstError) firstError = String((err as Error).message);
    } finally {
      inflight--;
      resp.record(nowUs() - start);
    }
  };

  if (run.mode === 'max') {
    const loops: Promise<void>[] = [];
    for (let i = 0; i < run.concurrency; i++) {
      loops.push(
        (async () => {
          while (performance.now() < deadline && sent < run.maxEvents) await one();
        })(),
      );
    }
    await Promise.all(loops);
  } else {
    const perRequest = Math.max(1, run.batch);
    const periodMs = (1000 * perRequest) / run.rate;
    const inflightSet = new Set<Promise<void>>();
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (now >= deadline || sent >= run.maxEvents) return resolve();
        while (t0 + i * periodMs <= now && sent < run.maxEvents) {
          i++;
          if (inflight >= MAX_INFLIGHT_RATE_MODE) {
            skipped += perRequest;
            continue;
          }
          const p = one();
          inflightSet.add(p);
          void p.finally(() => inflightSet.delete(p));
        }
        setTimeout(tick, Math.max(0, t0 + i * periodMs - performance.now()));
      };
      tick();
    });
    await Promise.all(inflightSet);
  }
  const elapsed = performance.now() - t0;
  await pool.close();
  const d = resp.data();
  return {
    requests,
    ok_requests: okRequests,
    events_sent: sent,
    events_accepted: accepted,
    skipped,
    statuses,
    first_error: firstError,
    elapsed_ms: elapsed,
    response: { counts: Array.from(d.counts), n: d.n, max: d.max, sum: d.sum },
  };
}

// ---- child-process entry ----------------------------------------------------------------------
if (process.send && process.env.TPX_BENCH_ROLE === 'publisher') {
  process.on('message', (msg: { id: number; cmd: 'run' | 'exit'; run?: PublishRun }) => {
    if (msg.cmd === 'exit') {
      process.send!({ id: msg.id, result: true });
      setTimeout(() => process.exit(0), 50);
      return;
    }
    publish(msg.run!).then(
      (result) => process.send!({ id: msg.id, result }),
      (err: unknown) => process.send!({ id: msg.id, error: String((err as Error)?.stack ?? err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 0, result: 'ready' });
}
