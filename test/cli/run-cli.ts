/**
 * Run the `tpx` CLI as a child process (`node --import tsx src/cli/main.ts …`, cwd = repo root),
 * either to completion (`runCli`) or as a long-running process whose output lines can be
 * awaited (`spawnCli`, for `listen` and `webhooks forward`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { REPO_ROOT } from '../helpers/server.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  env?: Record<string, string | undefined>;
  input?: string;
  /** Hard stop so a hung CLI cannot hang the suite (not an assertion). */
  killAfterMs?: number;
}

/** Env with no TPX_* leaking in from the developer's shell, plus `env`. */
export function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPX_')) base[k] = v;
  base.NO_COLOR = '1';
  // An empty data dir so the admin-token file fallback never picks up a developer's ./data.
  base.TPX_DATA_DIR = '/nonexistent-tpx-cli-test';
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

function spawnRaw(args: string[], opts: CliRunOptions): ChildProcess {
  return spawn(process.execPath, ['--conditions=tpx-source', '--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliResult> {
  const child = spawnRaw(args, opts);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 60_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface LiveCli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolve once stdout (or stderr) contains a line matching `re`; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<string>;
  exited(): Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const live = new Set<LiveCli>();

export function spawnCli(args: string[], opts: CliRunOptions = {}): LiveCli {
  const proc = spawnRaw(args, opts);
  proc.stdin!.end();
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const poke = () => waiters.forEach((w) => w());
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    poke();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    poke();
  });
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    proc.once('close', (code) => {
      exitCode = code;
      live.delete(handle);
      poke();
      resolve(code);
    }),
  );
  const handle: LiveCli = {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited: () => exit,
    waitFor(re, stream = 'stdout', timeoutMs = 20_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const text = stream === 'stdout' ? out : err;
          const line = text.split('\n').find((l) => re.test(l));
          if (line !== undefined) {
            done();
            resolve(line);
          } else if (exitCode !== undefined) {
            done();
            reject(new Error(`CLI exited (${exitCode}) before ${stream} matched ${re}\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${stream} to match ${re}\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGINT') {
      if (exitCode === undefined) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
  };
  live.add(handle);
  return handle;
}

export async function stopAllCli(): Promise<void> {
  await Promise.all([...live].map((l) => l.stop('SIGKILL')));
}
