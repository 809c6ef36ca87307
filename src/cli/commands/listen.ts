/**
 * `tpx listen`: a human-friendly live view of an account's events over /ws, on the partner SDK
 * (live.ts). Events go to stdout (one line each, or one JSON frame per line with --json);
 * connection status and errors go to stderr. Exit code 2 when the server rejects the key.
 */
import type { TpxEvent } from '@tpx-realtime/client';
import type { Room } from '@tpx-realtime/protocol';
import type { Command } from 'commander';
import { API_KEY_ENV, globalOpts, resolveApiKey, resolveUrl } from '../context.js';
import { colourer, notice, stdoutColours, type Colour } from '../format.js';
import { frameOf, runLive } from '../live.js';
import { nonNegativeIntArg, roomsArg } from '../validate.js';

/** Payload fields read for display: every event type's fields are optional here. */
type AnyFields = Record<string, unknown>;

const TYPE_COLOURS: Record<string, Colour> = {
  BID_REQUEST: 'cyan',
  BID_OUTBID: 'yellow',
  AUCTION_RESULT: 'magenta',
  CONDITIONAL_BID_APPLIED: 'blue',
  CONDITIONAL_BID_STATUS_CHANGE: 'blue',
  CONDITIONAL_BID_EXPIRING_SOON: 'yellow',
  INSTANT_CASH_OFFER_STATUS_CHANGE: 'blue',
  TRANSFER_CONFIRMATION_RECEIVED: 'green',
  PAYMENT_CHARGED: 'green',
  PAYMENT_FAILED: 'red',
  PAYMENT_SETTLED: 'green',
};

function money(cents: unknown): string | undefined {
  return typeof cents === 'number' ? `$${(cents / 100).toFixed(2)}` : undefined;
}

function short(id: unknown): string | undefined {
  return typeof id === 'string' ? (id.length > 13 ? id.slice(0, 8) + '…' : id) : undefined;
}

/** The few fields that matter for each event, as `key=value` pairs. */
export function keyFields(ev: Pick<TpxEvent, 'payload'>): string[] {
  const p = (ev.payload ?? {}) as AnyFields;
  const out: string[] = [];
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') out.push(`${k}=${v}`);
  };
  add('conv', short(p.conversation_id));
  if (typeof p.conditional_bid_id === 'string') add('cbid', short(p.conditional_bid_id));
  if (typeof p.is_winner === 'boolean') add('winner', String(p.is_winner));
  if (typeof p.status === 'string') add('status', typeof p.previous_status === 'string' ? `${p.previous_status}→${p.status}` : p.status);
  add('bid', money(p.bid_amount_cents));
  add('amount', money(p.amount_cents));
  add('total', money(p.total_charged_cents));
  add('payout', money(p.seller_payout_cents));
  if (typeof p.failure_code === 'string') add('failure', p.failure_code);
  add('expires', typeof p.expires_at === 'string' ? p.expires_at : undefined);
  const item = p.item_details as Record<string, unknown> | undefined;
  if (item && typeof item.quantity === 'number') add('qty', String(item.quantity));
  else if (typeof p.quantity === 'number') add('qty', String(p.quantity));
  const asset = p.asset_details as Record<string, unknown> | undefined;
  const name = asset && (typeof asset.event_name === 'string' ? asset.event_name : typeof asset.name === 'string' ? asset.name : undefined);
  if (name) out.push(`"${name.length > 40 ? name.slice(0, 39) + '…' : name}"`);
  return out;
}

export function formatEventLine(ev: Pick<TpxEvent, 'msg_type' | 'seq' | 'sent_at' | 'payload'>, colours: boolean): string {
  const c = colourer(colours);
  const when = new Date(typeof ev.sent_at === 'number' ? ev.sent_at : Date.now()).toISOString().slice(11, 23);
  const type = ev.msg_type.padEnd(32);
  return `${c('gray', when)}  ${c('dim', `#${String(ev.seq).padStart(5)}`)}  ${c(TYPE_COLOURS[ev.msg_type] ?? 'bold', type)}  ${keyFields(ev).join('  ')}`.trimEnd();
}

export function register(program: Command): void {
  program
    .command('listen')
    .description('print live events of an account (connects to /ws with an API key)')
    .option('--token <key>', `partner API key (tp_live_…) (env ${API_KEY_ENV})`)
    .option('--rooms <rooms>', 'comma-separated rooms (event types or ALL)', roomsArg, ['ALL'])
    .option('--after-seq <n>', 'first replay stored events with seq > n', nonNegativeIntArg)
    .option('--json', 'print each event frame as one JSON line')
    .action(async (opts: { token?: string; rooms: Room[]; afterSeq?: number; json?: boolean }, cmd: Command) => {
      const token = resolveApiKey(opts.token);
      const url = resolveUrl(globalOpts(cmd));
      const colours = !opts.json && stdoutColours();
      const c = colourer(process.stderr.isTTY === true && !process.env.NO_COLOR);
      const result = await runLive({
        url,
        token,
        rooms: opts.rooms,
        afterSeq: opts.afterSeq,
        status: (line, kind) => notice(c(kind === 'error' ? 'red' : kind === 'warn' ? 'yellow' : 'gray', line)),
        onEvent: (ev) => {
          process.stdout.write((opts.json ? JSON.stringify(frameOf(ev)) : formatEventLine(ev, colours)) + '\n');
        },
      });
      if (result.code === 0 && result.lastSeq !== undefined) notice(c('gray', `stopped; resume with --after-seq ${result.lastSeq}`));
      process.exitCode = result.code;
    });
}
