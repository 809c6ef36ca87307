/** `tpx connections` — live WebSocket connections across all nodes (GET /admin/connections). */
import type { Command } from 'commander';
import { adminClient } from '../context.js';
import { listOf, printJson, printTable } from '../format.js';
import { idArg } from '../validate.js';

interface ConnectionRow {
  connection_id?: string;
  account_id?: string;
  account_name?: string | null;
  rooms?: string[];
  connected_since?: string;
  last_seq?: number;
  remote_address?: string;
  node?: string;
  [k: string]: unknown;
}

export function register(program: Command): void {
  program
    .command('connections')
    .description('list live WebSocket connections (account, rooms, connected since, node)')
    .option('--account <account_id>', 'only this account', idArg('account id'))
    .option('--json', 'print the raw JSON answer')
    .action(async (opts: { account?: string; json?: boolean }, cmd: Command) => {
      const body = await adminClient(cmd).get('/admin/connections', { account_id: opts.account });
      if (opts.json) return printJson(body);
      printTable(listOf<ConnectionRow>(body, 'connections'), [
        { header: 'CONNECTION_ID', value: (c) => c.connection_id },
        { header: 'ACCOUNT_ID', value: (c) => c.account_id },
        { header: 'NAME', value: (c) => c.account_name },
        { header: 'ROOMS', value: (c) => c.rooms },
        { header: 'CONNECTED_SINCE', value: (c) => c.connected_since },
        { header: 'LAST_SEQ', value: (c) => c.last_seq },
        { header: 'NODE', value: (c) => c.node },
        { header: 'REMOTE', value: (c) => c.remote_address },
      ], '(no live connections)');
    });
}
