#!/usr/bin/env node
/**
 * The `tpx` command. Every client command talks to a running server only through the HTTP APIs
 * and the WebSocket; `serve` starts the server in-process. Errors print one line on stderr
 * (`error: …`) and exit 1 (2 for an authentication failure on the WebSocket); TPX_DEBUG=1 adds
 * the stack trace.
 */
import { Command, CommanderError } from 'commander';
import { addConnectionOptions } from './context.js';
import { CliError } from './errors.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerAccounts } from './commands/accounts.js';
import { register as registerKeys } from './commands/keys.js';
import { register as registerWebhooks } from './commands/webhooks.js';
import { register as registerDeliveries } from './commands/deliveries.js';
import { register as registerPublish } from './commands/publish.js';
import { register as registerListen } from './commands/listen.js';
import { register as registerSimulate } from './commands/simulate.js';
import { register as registerBench } from './commands/bench.js';
import { register as registerConnections } from './commands/connections.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tpx')
    .description('TPX real-time partner-event gateway: server, admin and developer tools')
    .version(VERSION, '-V, --version')
    .option('--url <url>', 'server base URL (env TPX_URL, default http://127.0.0.1:8080)')
    .option('--admin-token <token>', 'admin bearer token (env TPX_ADMIN_TOKEN, else <TPX_DATA_DIR>/admin-token)')
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (str, write) => write(str),
    });
  registerServe(program);
  registerAccounts(program);
  registerKeys(program);
  registerWebhooks(program);
  registerDeliveries(program);
  registerPublish(program);
  registerListen(program);
  registerSimulate(program);
  registerConnections(program);
  registerBench(program);
  // `listen` and `webhooks forward` authenticate with a partner API key, not the admin token.
  addConnectionOptions(program, new Set(['serve', 'bench']), new Set(['listen', 'forward']));
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
      if (process.env.TPX_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e?.message ?? String(err)}\n`);
    if (process.env.TPX_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}

await main();
