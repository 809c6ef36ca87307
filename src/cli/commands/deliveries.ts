/** `tpx deliveries list|retry` — the webhook delivery log and manual (dead-letter) retries. */
import type { Command } from 'commander';
import { adminClient } from '../context.js';
import { CliError } from '../errors.js';
import { listOf, printJson, printTable } from '../format.js';
import { checkId, idArg, isoDateArg, positiveIntArg } from '../validate.js';

const STATUSES = ['pending', 'succeeded', 'failed'];

interface DeliveryRow {
  delivery_id?: string;
  id?: string;
  account_id?: string;
  webhook_id?: string;
  msg_id?: string;
  msg_type?: string;
  status?: string;
  attempts?: number;
  attempt_count?: number;
  last_status_code?: number | null;
  last_error?: string | null;
  next_attempt_at?: string | null;
  updated_at?: string;
  created_at?: string;
  [k: string]: unknown;
}

export function register(program: Command): void {
  const deliveries = program.command('deliveries').description('inspect and retry webhook deliveries');

  deliveries
    .command('list')
    .description('list webhook deliveries (newest first)')
    .option('--account <account_id>', 'only this account', idArg('account id'))
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
    .option('--webhook <webhook_id>', 'only this endpoint', idArg('webhook id'))
    .option('--since <iso>', 'only deliveries created at/after this time', isoDateArg)
    .option('--until <iso>', 'only deliveries created before this time', isoDateArg)
    .option('--limit <n>', 'at most n rows', positiveIntArg)
    .option('--json', 'print the raw JSON answer')
    .action(async (opts: { account?: string; status?: string; webhook?: string; since?: string; until?: string; limit?: number; json?: boolean }, cmd: Command) => {
      if (opts.status !== undefined && !STATUSES.includes(opts.status)) {
        throw new CliError(`invalid --status "${opts.status}" (one of ${STATUSES.join(', ')})`);
      }
      if (opts.since && opts.until && opts.since >= opts.until) throw new CliError('--since must be before --until');
      const body = await adminClient(cmd).get('/admin/deliveries', {
        account_id: opts.account,
        status: opts.status,
        webhook_id: opts.webhook,
        since: opts.since,
        until: opts.until,
        limit: opts.limit !== undefined ? String(opts.limit) : undefined,
      });
      if (opts.json) return printJson(body);
      printTable(listOf<DeliveryRow>(body, 'deliveries'), [
        { header: 'DELIVERY_ID', value: (d) => d.delivery_id ?? d.id },
        { header: 'STATUS', value: (d) => d.status },
        { header: 'TYPE', value: (d) => d.msg_type },
        { header: 'MSG_ID', value: (d) => d.msg_id },
        { header: 'ACCOUNT_ID', value: (d) => d.account_id },
        { header: 'ATTEMPTS', value: (d) => d.attempt_count ?? d.attempts },
        { header: 'LAST_HTTP', value: (d) => d.last_status_code },
        { header: 'NEXT_ATTEMPT', value: (d) => d.next_attempt_at },
        { header: 'LAST_ERROR', value: (d) => (typeof d.last_error === 'string' ? d.last_error.slice(0, 60) : d.last_error) },
      ], '(no deliveries)');
    });

  deliveries
    .command('retry [delivery_id]')
    .description('retry one delivery now, or every failed delivery of an account (--account --failed)')
    .option('--account <account_id>', 'retry deliveries of this account', idArg('account id'))
    .option('--failed', 'with --account: retry all failed (dead-lettered) deliveries')
    .option('--since <iso>', 'with --account: only deliveries created at/after this time', isoDateArg)
    .option('--until <iso>', 'with --account: only deliveries created before this time', isoDateArg)
    .option('--json', 'print the raw JSON answer')
    .action(async (id: string | undefined, opts: { account?: string; failed?: boolean; since?: string; until?: string; json?: boolean }, cmd: Command) => {
      if (id !== undefined && (opts.account || opts.failed || opts.since || opts.until)) {
        throw new CliError('give either a <delivery_id> or --account <id> --failed, not both');
      }
      if (id === undefined) {
        if (!opts.account) throw new CliError('missing <delivery_id> (or use --account <id> --failed to retry an account’s failed deliveries)');
        if (!opts.failed) throw new CliError('bulk retry needs --failed (only failed deliveries are retried in bulk)');
        if (opts.since && opts.until && opts.since >= opts.until) throw new CliError('--since must be before --until');
        const body: Record<string, unknown> = {};
        if (opts.since) body.since = opts.since;
        if (opts.until) body.until = opts.until;
        const res = await adminClient(cmd).post<Record<string, unknown>>(`/admin/accounts/${encodeURIComponent(opts.account)}/deliveries/retry`, body);
        if (opts.json) return printJson(res);
        const n = res?.retried;
        process.stdout.write(n !== undefined ? `${n} deliveries scheduled for retry\n` : `retry scheduled: ${JSON.stringify(res)}\n`);
        return;
      }
      const deliveryId = checkId(id, 'delivery id');
      const res = await adminClient(cmd).post(`/admin/deliveries/${encodeURIComponent(deliveryId)}/retry`);
      if (opts.json) return printJson(res);
      process.stdout.write(`delivery ${deliveryId} scheduled for retry\n`);
    });
}
