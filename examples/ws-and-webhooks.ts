/**
 * WebSocket + webhooks together, each event handled exactly once.
 *
 * TPX delivers every event twice: pushed over the WebSocket (fast) and POSTed to your webhook
 * endpoint (durable, retried). Sharing one `Deduplicator` between the client and the webhook
 * handler means whichever copy arrives first is handled and the other is acknowledged and
 * dropped. Both paths produce the same `TpxEvent` shape (`via` tells them apart; `seq` is the
 * same number on both). One Deduplicator per account: it keys on msg_id, which all the
 * recipients of one event share (docs/decisions.md). The position and the handled ids are saved
 * together in TPX_CHECKPOINT (default .tpx-checkpoint.json) and restored at the next start.
 *
 *   TPX_URL=http://127.0.0.1:8080 TPX_API_KEY=tp_live_… TPX_WEBHOOK_SECRET=whsec_… PORT=3000 \
 *     npx tsx examples/ws-and-webhooks.ts
 *
 * Register the endpoint: npx tpx webhooks add --account <id> --url http://127.0.0.1:3000/tpx/webhooks
 * (loopback endpoints need TPX_WEBHOOK_ALLOW_PRIVATE=true on the server), or leave it
 * unregistered and let `npx tpx webhooks forward --to http://127.0.0.1:3000/tpx/webhooks` sign
 * and post each event (it prints the secret to use as TPX_WEBHOOK_SECRET). See examples/README.md.
 *
 * Express instead of node:http:
 *   app.post('/tpx/webhooks', express.raw({ type: 'application/json' }),
 *            expressWebhookHandler({ secret, onEvent: handle, dedup }));
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createNodeWebhookHandler, Deduplicator, TpxClient, type TpxEvent } from '@tpx-realtime/client';

const url = process.env.TPX_URL ?? 'http://127.0.0.1:8080';
const token = process.env.TPX_API_KEY;
const secret = process.env.TPX_WEBHOOK_SECRET;
const port = Number(process.env.PORT ?? 3000);
if (!token || !secret) {
  console.error('set TPX_API_KEY and TPX_WEBHOOK_SECRET');
  process.exit(2);
}

// Remember the last 50 000 msg_ids: must cover the webhook retry window at your event rate.
const dedup = new Deduplicator({ capacity: 50_000 });

// The checkpoint: the stream position AND the handled msg_ids, in one file, so that after a
// restart neither the replay nor the webhook retries of events handled before it run twice.
const checkpointFile = process.env.TPX_CHECKPOINT ?? '.tpx-checkpoint.json';
const saved = existsSync(checkpointFile) ? (JSON.parse(readFileSync(checkpointFile, 'utf8')) as { lastSeq?: number; dedup: Parameters<Deduplicator['restore']>[0] }) : undefined;
if (saved) dedup.restore(saved.dedup);
function saveCheckpoint(): void {
  // One synchronous read of both (a consistent pair), written then renamed (never torn).
  writeFileSync(`${checkpointFile}.tmp`, JSON.stringify({ lastSeq: client.lastSeq, dedup: dedup.snapshot() }));
  renameSync(`${checkpointFile}.tmp`, checkpointFile);
}

/** The one business handler, whatever path the event came by. */
async function handle(event: TpxEvent): Promise<void> {
  switch (event.msg_type) {
    case 'BID_REQUEST':
      console.log(`[${event.via}] auction ${event.payload.conversation_id} started`);
      break;
    case 'PAYMENT_FAILED':
      console.log(`[${event.via}] payment ${event.payload.payment_id} failed: ${event.payload.failure_reason}`);
      break;
    default:
      console.log(`[${event.via}] #${event.seq} ${event.msg_type} ${event.msg_id}`);
  }
}

const client = new TpxClient({ url, token, rooms: ['ALL'], dedup, afterSeq: saved?.lastSeq });
client.on('event', handle);
const checkpointTimer = setInterval(saveCheckpoint, 2_000);
client.on('error', (err) => console.error(`[ws error] ${err.code}: ${err.message}`));

const webhook = createNodeWebhookHandler({
  secret,
  dedup,
  onEvent: handle, // throwing answers 500, so TPX retries later
  onError: (err) => console.error('[webhook rejected]', err instanceof Error ? err.message : err),
});
const http = createServer((req, res) => {
  if (req.url === '/tpx/webhooks') webhook(req, res);
  else res.writeHead(404).end();
});
http.listen(port, () => console.log(`webhooks on http://127.0.0.1:${port}/tpx/webhooks`));

process.once('SIGINT', () => {
  clearInterval(checkpointTimer);
  http.close();
  void client.close().then(saveCheckpoint);
});

client.on('closed', (info) => {
  if (info.reason === 'fatal') console.error(`websocket stopped for good (${info.error?.code}); webhooks keep arriving`);
});
await client.connect().catch(() => undefined); // fatal errors are reported by the listeners above
