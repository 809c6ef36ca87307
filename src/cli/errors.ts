/**
 * CLI error type: a one-line message and an exit code. `main.ts` prints `error: <message>` to
 * stderr and exits with `exitCode` — never a stack trace (set TPX_DEBUG=1 to see one).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function fail(message: string, exitCode = 1): never {
  throw new CliError(message, exitCode);
}
