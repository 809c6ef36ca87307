/**
 * Node consumer: typed handlers, automatic reconnect + resume, lastSeq persisted so a process
 * restart resumes where it stopped (nothing lost within the 72 h retention).
 *
 *   TPX_URL=ws://127.0.0.1:8080/ws TPX_TOKEN=tp_live_… node --import tsx examples/node-consumer.ts
 *
 * In your own project: `import { TpxClient } from '@tpx-realtime/client'`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { TpxClient, type TpxEvent } from '@tpx-realtime/client';

const url = process.env.TPX_URL ?? 'ws://127.0.0.1:8080/ws';
const token = process.env.TPX_TOKEN;
if (!token) {
  console.error('set TPX_TOKEN to an API key (tpx keys create --account <id>)');
  process.exit(2);
}
const checkpointFile = process.env.TPX_CHECKPOINT ?? '.tpx-last-seq';

function loadCheckpoint(): number | undefined {
  if (!existsSync(checkpointFile)) return undefined;
  const n = Number(readFileSync(checkpointFile, 'utf8').trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
function saveCheckpoint(seq: number): void {
  // Write-then-rename so a crash never leaves a torn file.
  writeFileSync(`${checkpointFile}.tmp`, String(seq));
  renameSync(`${checkpointFile}.tmp`, checkpointFile);
}

const client = new TpxClient({
  url,
  token,
  rooms: ['ALL'],
  afterSeq: loadCheckpoint(), // undefined on the very first run: live events only
});

client.on('BID_REQUEST', async (e) => {
  const { conversation_id, item_details, asset_details } = e.payload;
  console.log(`auction ${conversation_id}: ${item_details.quantity} × ${asset_details.event_name ?? asset_details.name ?? asset_details.id}`);
  // await placeBid(...)  ← async work is awaited before the next event is processed
});
client.on('BID_OUTBID', (e) => console.log(`outbid on ${e.payload.conversation_id} (bid ${e.payload.bid_id})`));
client.on('AUCTION_RESULT', (e) => console.log(`auction ${e.payload.conversation_id}: ${e.payload.is_winner ? 'WON' : 'lost'}`));
client.on('PAYMENT_SETTLED', (e) => console.log(`settled ${e.payload.payment_id}: ${e.payload.total_charged_cents} cents`));

// Runs after the typed handlers of every event: checkpoint only once the event is handled.
client.on('event', (e: TpxEvent) => {
  if (e.seq !== undefined) saveCheckpoint(e.seq);
});

client.on('gap', (g) => console.warn(`events ${g.from_seq}..${g.to_seq} expired before we resumed: reconcile via GET /v1/events`));
client.on('state', (s) => console.log(`[state] ${s}`));
client.on('reconnecting', (i) => console.log(`[reconnect] attempt ${i.attempt} in ${i.delayMs} ms (${i.error?.code ?? i.closeCode})`));
client.on('error', (err) => console.error(`[error] ${err.kind} ${err.code}: ${err.message}`));
client.on('closed', (info) => {
  if (info.reason !== 'client') process.exitCode = 1;
});

process.once('SIGINT', () => void client.close());
process.once('SIGTERM', () => void client.close());

await client.connect().catch((err) => console.error(`stopped: ${err.code}`));
