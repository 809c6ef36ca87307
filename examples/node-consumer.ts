/**
 * Node consumer: typed handlers, automatic reconnect + resume, lastSeq persisted so a process
 * restart resumes where it stopped (nothing lost within the 72 h retention), fatal errors
 * (bad key, wrong URL) handled. See examples/README.md.
 *
 *   TPX_URL=http://127.0.0.1:8080 TPX_API_KEY=tp_live_… npx tsx examples/node-consumer.ts
 *
 * In your own project: `import { TpxClient } from '@tpx-realtime/client'`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { loose, TpxAuthError, TpxClient, type TpxEvent } from '@tpx-realtime/client';

// The server's base URL (the CLI's TPX_URL) or its /ws URL: both work.
const url = process.env.TPX_URL ?? 'http://127.0.0.1:8080';
const token = process.env.TPX_API_KEY;
if (!token) {
  console.error('set TPX_API_KEY to an API key (npx tpx keys create --account <id>)');
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
  // Undefined on the very first run: live events only, from the server's last_seq on (kept
  // across reconnects, so a connection lost before the first event misses nothing).
  afterSeq: loadCheckpoint(),
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
  // Fields the types do not declare (added later, or partner-specific) are reached explicitly:
  const extra = loose(e.payload).partner_tier;
  if (extra !== undefined) console.log(`  partner_tier=${String(extra)}`);
});

// Seqs the server can no longer deliver (pruned by retention): reconcile, then move on.
client.on('gap', (g) => {
  console.warn(`events ${g.from_seq}..${g.to_seq} expired before we got them: reconcile via GET /v1/events or your records`);
  saveCheckpoint(g.to_seq);
});
client.on('state', (s) => console.log(`[state] ${s}`));
client.on('reconnecting', (i) => console.log(`[reconnect] attempt ${i.attempt} in ${i.delayMs} ms (${i.error?.code ?? i.closeCode})`));
client.on('error', (err) => console.error(`[error] ${err.kind} ${err.code}: ${err.message}`));
client.on('closed', (info) => {
  // 'fatal': a rejected or revoked key (TpxAuthError), or a URL with no WebSocket endpoint
  // (HANDSHAKE_REJECTED, with a hint in the message). Retrying would not help: stop.
  if (info.reason !== 'client') process.exitCode = 1;
});

process.once('SIGINT', () => void client.close());
process.once('SIGTERM', () => void client.close());

try {
  await client.connect();
} catch (err) {
  // Already reported by the `error` listener; the process ends with exit code 1.
  if (err instanceof TpxAuthError) console.error('check TPX_API_KEY: the server refused this key');
}
