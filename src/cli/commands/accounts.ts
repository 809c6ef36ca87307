/** `tpx accounts create|list|get|update|delete` — POST/GET/PATCH/DELETE /admin/accounts. */
import type { Command } from 'commander';
import { adminClient } from '../context.js';
import { listOf, notice, printJson, printRecord, printTable } from '../format.js';
import { accessRoomsArg, checkId } from '../validate.js';
import { CliError } from '../errors.js';

export interface AccountRow {
  account_id: string;
  name?: string | null;
  partner_id?: string | null;
  rooms?: string[];
  created_at?: string;
  [k: string]: unknown;
}

const PARTNER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
function partnerIdArg(value: string): string {
  if (!PARTNER_ID_RE.test(value)) throw new CliError(`invalid --partner-id "${value}": use a slug such as partner_acme`);
  return value;
}

const COLUMNS = [
  { header: 'ACCOUNT_ID', value: (a: AccountRow) => a.account_id },
  { header: 'NAME', value: (a: AccountRow) => a.name },
  { header: 'PARTNER_ID', value: (a: AccountRow) => a.partner_id },
  { header: 'ROOMS', value: (a: AccountRow) => (a.rooms && a.rooms.length === 11 ? 'all (11)' : a.rooms) },
  { header: 'CREATED_AT', value: (a: AccountRow) => a.created_at },
];

function showAccount(a: AccountRow): void {
  printRecord(a, ['account_id', 'name', 'partner_id', 'rooms', 'created_at'].filter((k) => k in a));
}

export function register(program: Command): void {
  const accounts = program.command('accounts').description('manage partner accounts (admin API)');

  accounts
    .command('create')
    .description('create an account')
    .option('--name <name>', 'display name')
    .option('--partner-id <slug>', 'partner slug used as webhook destination_id, e.g. partner_acme')
    .option('--rooms <rooms>', 'comma-separated event types the account may access (default: all)', accessRoomsArg)
    .option('--json', 'print the raw JSON answer')
    .action(async (opts: { name?: string; partnerId?: string; rooms?: string[]; json?: boolean }, cmd: Command) => {
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.partnerId !== undefined) body.partner_id = partnerIdArg(opts.partnerId);
      if (opts.rooms !== undefined) body.rooms = opts.rooms;
      const account = await adminClient(cmd).post<AccountRow>('/admin/accounts', body);
      if (opts.json) return printJson(account);
      showAccount(account);
      notice(`\nNext: tpx keys create --account ${account.account_id}`);
    });

  accounts
    .command('list')
    .description('list accounts')
    .option('--json', 'print the raw JSON answer')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const body = await adminClient(cmd).get('/admin/accounts');
      if (opts.json) return printJson(body);
      printTable(listOf<AccountRow>(body, 'accounts'), COLUMNS, '(no accounts yet: tpx accounts create)');
    });

  accounts
    .command('get <account_id>')
    .description('show one account')
    .option('--json', 'print the raw JSON answer')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const account = await adminClient(cmd).get<AccountRow>(`/admin/accounts/${encodeURIComponent(checkId(id, 'account id'))}`);
      if (opts.json) return printJson(account);
      showAccount(account);
    });

  accounts
    .command('update <account_id>')
    .description('change an account’s name, partner id or accessible rooms')
    .option('--name <name>', 'display name')
    .option('--partner-id <slug>', 'partner slug (webhook destination_id)')
    .option('--rooms <rooms>', 'comma-separated accessible event types (ALL = every type)', accessRoomsArg)
    .option('--json', 'print the raw JSON answer')
    .action(async (id: string, opts: { name?: string; partnerId?: string; rooms?: string[]; json?: boolean }, cmd: Command) => {
      const accountId = checkId(id, 'account id');
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.partnerId !== undefined) body.partner_id = partnerIdArg(opts.partnerId);
      if (opts.rooms !== undefined) body.rooms = opts.rooms;
      if (Object.keys(body).length === 0) throw new CliError('nothing to update: pass --name, --partner-id and/or --rooms');
      const account = await adminClient(cmd).patch<AccountRow>(`/admin/accounts/${encodeURIComponent(accountId)}`, body);
      if (opts.json) return printJson(account);
      showAccount(account);
    });

  accounts
    .command('delete <account_id>')
    .description('delete an account (its keys stop working; its connections are closed)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const accountId = checkId(id, 'account id');
      await adminClient(cmd).delete(`/admin/accounts/${encodeURIComponent(accountId)}`);
      notice(`account ${accountId} deleted`);
    });
}
