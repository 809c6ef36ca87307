/**
 * `tpx bench`: delegates to bench/run.ts (`runBench`), imported lazily so the CLI still works
 * where the benchmark code is not shipped. The benchmark starts its own servers (tpx and a
 * bare-ws baseline), prints its table on stdout and writes the JSON report to bench/results/.
 * Options this command does not declare are passed through (`--foo-bar 3` → `{ fooBar: 3 }`).
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { durationArg, positiveIntArg } from '../validate.js';

type BenchModule = typeof import('../../../bench/run.js');

async function loadBench(): Promise<BenchModule> {
  try {
    return await import('../../../bench/run.js');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && /bench[\\/]run/.test(String((err as Error).message))) {
      throw new CliError('the benchmark suite (bench/run.ts) is not available in this installation');
    }
    throw err;
  }
}

/** `--foo-bar 3 --baz` → { fooBar: 3, baz: true }. */
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

interface BenchCliOptions {
  quick?: boolean;
  scenarios?: string;
  out?: string;
  workers?: number;
  soakDuration?: string;
  profile?: boolean;
  servers?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks against tpx and a bare-ws baseline (starts its own servers)')
    .option('--quick', 'smaller loads and shorter windows (about 1–2 minutes)')
    .option('--scenarios <list>', 'comma-separated: fanout, latency, connect, memory, durability, cluster, webhooks, soak (default: all but soak)')
    .option('--out <file>', 'also write the JSON report to this file')
    .option('--workers <n>', 'load-generator worker threads', positiveIntArg)
    // Parsed here like every CLI duration (a plain number is seconds), handed over in ms.
    .option('--soak-duration <duration>', 'soak length, e.g. 10m (a plain number is seconds)', (v: string) => `${durationArg(v)}ms`)
    .option('--profile', 'record and summarise a CPU profile of the tpx server')
    .option('--servers <list>', 'which servers to run: tpx,baseline (default both)')
    .option('--json', 'print the JSON report on stdout instead of the table')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(async (opts: BenchCliOptions, cmd: Command) => {
      const { runBench, ALL_SCENARIOS } = await loadBench();
      if (opts.scenarios) {
        const valid: readonly string[] = ALL_SCENARIOS;
        const bad = opts.scenarios.split(',').map((s) => s.trim()).filter((s) => s && !valid.includes(s));
        if (bad.length) throw new CliError(`unknown scenario ${bad.join(', ')} (valid: ${valid.join(', ')})`);
      }
      const { json, ...known } = opts;
      const report = await runBench({ ...parsePassThrough(cmd.args), ...known, ...(json ? { table: false } : {}) });
      if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    });
}
