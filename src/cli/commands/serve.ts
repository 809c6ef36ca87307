/**
 * `tpx serve`: start the server in-process. stdout carries only the server's pino JSON log
 * lines (tests and log shippers parse them, including the `"msg":"listening"` line); the
 * human banner goes to stderr. SIGTERM/SIGINT close gracefully and exit 0; a second signal
 * exits 1 at once.
 */
import path from 'node:path';
import { tpx } from '../invocation.js';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { CliError } from '../errors.js';
import { portArg } from '../validate.js';

type RunningServer = Pick<import('../../server.js').RunningServer, 'url' | 'adminToken' | 'adminTokenGenerated' | 'close'> & {
  adminTokenFile?: string | null;
};

interface ServeOptions {
  host?: string;
  port?: number;
  dataDir?: string;
}

/**
 * The start banner: where the server is, and commands that work when pasted into another
 * terminal (`npx tpx` in a clone or a project, `tpx` when installed globally: invocation.ts;
 * `--url` carries the real port).
 */
export function banner(server: RunningServer, config: Config, cwd = process.cwd(), cli: string = tpx()): string {
  const base = server.url.replace(/\/+$/, '');
  const ws = base.replace(/^http/, 'ws') + '/ws';
  const lines = [
    '',
    `  tpx-realtime is listening on ${base}`,
    `  WebSocket:  ${ws}`,
    `  Console:    ${base}/console`,
    `  Data dir:   ${config.dataDir}${config.databaseUrl ? ` (store: ${config.databaseUrl.replace(/\/\/[^@/]*@/, '//***@')})` : ''}`,
  ];
  const tokenFile = server.adminTokenFile ?? null;
  if (server.adminTokenGenerated) {
    lines.push(
      '',
      `  Admin token (generated, saved to ${tokenFile ?? `${config.dataDir}/admin-token`}):`,
      `    ${server.adminToken}`,
      '  Keep it secret: it authorizes the publish and admin APIs. Set TPX_ADMIN_TOKEN to choose your own.',
    );
  }
  // The CLI reads the admin token from TPX_ADMIN_TOKEN, else ./data/admin-token (TPX_DATA_DIR).
  let setup: string | undefined;
  if (!tokenFile) setup = '    export TPX_ADMIN_TOKEN=<the admin token this server was started with>';
  else if (path.resolve(cwd, tokenFile) !== path.resolve(cwd, 'data', 'admin-token')) setup = `    export TPX_ADMIN_TOKEN=$(cat ${path.resolve(cwd, tokenFile)})`;
  const url = `--url ${base}`;
  lines.push(
    '',
    `  Try it from another terminal${setup ? '' : ' in this directory'}:`,
    ...(setup ? [setup] : []),
    `    ${cli} accounts create --name "Acme" --partner-id partner_acme ${url}`,
    `    ${cli} keys create --account <account_id> ${url}`,
    `    ${cli} listen --token <tp_live_…> --rooms ALL ${url}`,
    `    ${cli} publish BID_REQUEST --account <account_id> --sample ${url}`,
    `    ${cli} simulate --account <account_id> --duration 30s ${url}`,
    '',
  );
  return lines.join('\n') + '\n';
}

/** Exit status after a fatal store failure (EX_IOERR) and the grace before it. */
export const FATAL_EXIT_CODE = 74;
const FATAL_GRACE_MS = 1000;

export function register(program: Command): void {
  program
    .command('serve')
    .description('start the gateway server (HTTP APIs + /ws) in this process')
    .option('--host <host>', 'listen address (env TPX_HOST, default 0.0.0.0)')
    .option('--port <port>', 'listen port, 0 = any free port (env TPX_PORT, default 8080)', portArg)
    .option('--data-dir <dir>', 'embedded store directory (env TPX_DATA_DIR, default ./data)')
    .addHelpText('after', '\nAll other settings come from TPX_* environment variables (see docs/cli.md).')
    .action(async (opts: ServeOptions) => {
      const env = { ...process.env };
      if (opts.host !== undefined) env.TPX_HOST = opts.host;
      if (opts.port !== undefined) env.TPX_PORT = String(opts.port);
      if (opts.dataDir !== undefined) env.TPX_DATA_DIR = opts.dataDir;
      const { loadConfig } = await import('../../config/index.js');
      let config: Config;
      try {
        config = loadConfig(env);
      } catch (err) {
        throw new CliError(`configuration: ${(err as Error).message}`);
      }
      // Loaded lazily so the client commands never pay for the server's dependencies.
      const { startServer } = await import('../../server.js');
      // A store that failed for good (a failed WAL sync) ends the process non-zero after a short
      // grace (answers in flight get out): a supervisor restarts it and recovery reads the disk.
      let server: Awaited<ReturnType<typeof startServer>> | undefined;
      let failed = false;
      const onFatal = (err: Error) => {
        failed = true;
        process.stderr.write(`tpx: fatal: ${err.message}; exiting with status ${FATAL_EXIT_CODE} in ${FATAL_GRACE_MS} ms\n`);
        setTimeout(() => {
          server?.logger.flush?.();
          process.exit(FATAL_EXIT_CODE);
        }, FATAL_GRACE_MS);
      };
      const running = await startServer(config, { onFatal });
      server = running;
      process.stderr.write(banner(running, config));

      let closing = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (closing) {
          process.stderr.write(`tpx: second ${signal}, exiting immediately\n`);
          process.exit(1);
        }
        closing = true;
        process.stderr.write(`tpx: ${signal} received, shutting down gracefully (send again to force)\n`);
        running.close().then(
          () => process.exit(failed ? FATAL_EXIT_CODE : 0),
          (err: unknown) => {
            process.stderr.write(`tpx: error during shutdown: ${(err as Error)?.message ?? err}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
}
