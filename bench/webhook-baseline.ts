/**
 * Baseline for the webhook scenario: a bare sender that POSTs the same number of signed
 * deliveries straight to a fast local receiver (child process) with the same number in flight:
 * an HMAC-SHA256 signature per request (Standard Webhooks), keep-alive undici Pool, and nothing
 * else: no store, no attempt records, no retries. bench/webhooks.ts (the real dispatcher with the
 * durable store) is reported as a ratio to this.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Pool } from 'undici';

const RECEIVER = `
const http = require('node:http');
let n = 0;
const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { n++; res.writeHead(200, {'content-length': '0'}); res.end(); }); });
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
process.on('disconnect', () => process.exit(0));
`;

export interface WebhookBaselineResult {
  deliveriesPerSec: number;
  deliveries: number;
  seconds: number;
  failed: number;
  inFlight: number;
}

export async function runWebhookBaseline(opts: { deliveries: number; inFlight: number }): Promise<WebhookBaselineResult> {
  const child = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('webhook receiver did not start')), 10_000);
      child.stdout!.setEncoding('utf8');
      child.stdout!.once('data', (d: string) => {
        clearTimeout(t);
        resolve((JSON.parse(d) as { port: number }).port);
      });
      child.once('exit', (c) => reject(new Error(`receiver exited ${c}`)));
    });
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: opts.inFlight, pipelining: 1 });
    const secret = randomBytes(24);
    const payload = JSON.stringify({ auction_id: randomUUID(), listing_id: 'l-1', ends_at: new Date().toISOString(), reserve: { amount: 12.5, currency: 'USD' } });
    let next = 0;
    let failed = 0;
    const start = process.hrtime.bigint();
    const worker = async () => {
      while (next < opts.deliveries) {
        next++;
        const id = randomUUID();
        const ts = Math.floor(Date.now() / 1000);
        const body = `{"msg_type":"BID_REQUEST","msg_id":"${id}","sent_at":${ts},"source_id":"tradepost_realtime","destination_id":"bench","payload":${payload}}`;
        const sig = createHmac('sha256', secret).update(`${id}.${ts}.${body}`).digest('base64');
        try {
          const res = await pool.request({
            path: '/hook',
            method: 'POST',
            headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${sig}` },
            body,
            headersTimeout: 10_000,
            bodyTimeout: 10_000,
          });
          await res.body.dump();
          if (res.statusCode < 200 || res.statusCode >= 300) failed++;
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: opts.inFlight }, worker));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await pool.close();
    return {
      deliveriesPerSec: Math.round(opts.deliveries / seconds),
      deliveries: opts.deliveries,
      seconds: Math.round(seconds * 1000) / 1000,
      failed,
      inFlight: opts.inFlight,
    };
  } finally {
    child.kill('SIGKILL');
  }
}
