/**
 * `tpx bench`: delegates to bench/run.ts (`runBench(opts)`), loaded lazily so the CLI works
 * even where the benchmark code is not shipped. Unknown options are passed through.
 */
import type { Command } from 'commander';
import { globalOpts } from '../context.js';
import { CliError } from '../errors.js';

type RunBench = (opts: Record<string, unknown>) => Promise<unknown>;

async function loadRunBench(): Promise<RunBench> {
  const candidates = ['../../../bench/run.js', '../../../bench/run.ts'];
  for (const spec of candidates) {
    try {
      const mod = (await import(spec)) as { runBench?: RunBench; default?: RunBench };
      const fn = mod.runBench ?? mod.default;
      if (typeof fn === 'function') return fn;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    }
  }
  throw new CliError('the benchmark suite (bench/run.ts) is not available in this installation');
}

/** `--foo-bar 3 --baz` → { fooBar: 3, baz: true } for options bench/run.ts defines itself. */
export function parsePassThrough(args: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new CliError(`unexpected argument "${a}" for tpx bench`);
    const [rawKey, inline] = a.slice(2).split(/=(.*)/s, 2);
    const key = rawKey.replace(/-([a-z])/g, (_m, ch: string) => ch.toUpperCase());
    let value: unknown = inline;
    if (value === undefined) value = args[i + 1] !== undefined && !args[i + 1].startsWith('--') ? args[++i] : true;
    if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) value = Number(value);
    out[key] = value;
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks (bench/run.ts) and print a JSON report')
    .option('--scenario <name>', 'scenario to run (default: all)')
    .option('--out <file>', 'also write the JSON report to this file')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const runBench = await loadRunBench();
      const g = globalOpts(cmd);
      const extra = parsePassThrough(cmd.args);
      const report = await runBench({ ...extra, ...opts, url: g.url ?? process.env.TPX_URL, adminToken: g.adminToken });
      if (report !== undefined) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    });
}
