/** `tpx keys create|list|deactivate|activate|revoke` — the API-key admin routes. */
import type { Command } from 'commander';
import { adminClient } from '../context.js';
import { listOf, notice, printJson, printRecord, printTable } from '../format.js';
import { checkId, idArg, isoDateArg } from '../validate.js';

interface KeyRow {
  key_id: string;
  token?: string;
  name?: string | null;
  status?: string;
  expires_at?: string | null;
  created_at?: string;
  last_used_at?: string | null;
  [k: string]: unknown;
}

export function register(program: Command): void {
  const keys = program.command('keys').description('manage API keys of an account (admin API)');

  keys
    .command('create')
    .description('create an API key; the token is printed once and cannot be shown again')
    .requiredOption('--account <account_id>', 'account the key belongs to', idArg('account id'))
    .option('--name <name>', 'label, e.g. "prod trading bot"')
    .option('--expires-at <iso>', 'expiry as ISO-8601, e.g. 2026-01-01T00:00:00Z', isoDateArg)
    .option('--json', 'print the raw JSON answer (includes the token)')
    .action(async (opts: { account: string; name?: string; expiresAt?: string; json?: boolean }, cmd: Command) => {
      const body: Record<string, unknown> = {};
      if (opts.name !== undefined) body.name = opts.name;
      if (opts.expiresAt !== undefined) {
        if (Date.parse(opts.expiresAt) <= Date.now()) notice('warning: --expires-at is in the past; the key will be expired immediately');
        body.expires_at = opts.expiresAt;
      }
      const key = await adminClient(cmd).post<KeyRow>(`/admin/accounts/${encodeURIComponent(opts.account)}/api-keys`, body);
      if (opts.json) return printJson(key);
      printRecord(key, ['key_id', 'token', 'status', 'expires_at'].filter((k) => k in key));
      notice('\nwarning: the token is shown only once. Store it now (e.g. in your secret manager); it cannot be retrieved later.');
    });

  keys
    .command('list')
    .description('list the keys of an account (tokens are never shown)')
    .requiredOption('--account <account_id>', 'account id', idArg('account id'))
    .option('--json', 'print the raw JSON answer')
    .action(async (opts: { account: string; json?: boolean }, cmd: Command) => {
      const body = await adminClient(cmd).get(`/admin/accounts/${encodeURIComponent(opts.account)}/api-keys`);
      if (opts.json) return printJson(body);
      printTable(listOf<KeyRow>(body, 'api_keys', 'keys'), [
        { header: 'KEY_ID', value: (k) => k.key_id },
        { header: 'NAME', value: (k) => k.name },
        { header: 'PREFIX', value: (k) => (k.token_prefix ? `${k.token_prefix}…` : undefined) },
        { header: 'STATUS', value: (k) => k.status },
        { header: 'EXPIRES_AT', value: (k) => k.expires_at },
        { header: 'CREATED_AT', value: (k) => k.created_at },
        { header: 'LAST_USED_AT', value: (k) => k.last_used_at },
      ], '(no keys: tpx keys create --account <id>)');
    });

  const action = (verb: 'deactivate' | 'activate' | 'revoke', description: string) =>
    keys
      .command(`${verb} <key_id>`)
      .description(description)
      .option('--json', 'print the raw JSON answer')
      .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        const keyId = checkId(id, 'key id');
        const client = adminClient(cmd);
        const path = `/admin/api-keys/${encodeURIComponent(keyId)}`;
        const body = verb === 'revoke' ? await client.delete(path) : await client.post(`${path}/${verb}`);
        if (opts.json) return printJson(body ?? { key_id: keyId, status: verb === 'revoke' ? 'revoked' : verb === 'activate' ? 'active' : 'inactive' });
        const past = { deactivate: 'deactivated', activate: 'activated', revoke: 'revoked' }[verb];
        process.stdout.write(`key ${keyId} ${past}\n`);
        if (verb !== 'activate') notice('connections using this key are closed with 4001 within two seconds');
      });

  action('deactivate', 'deactivate a key (connections using it are closed; can be re-activated)');
  action('activate', 're-activate a deactivated key');
  action('revoke', 'permanently revoke (delete) a key');
}
