/**
 * One JSON line per significant event (SPEC §5), via pino. Secrets never reach the log:
 * tokens, secrets and authorization headers are redacted by path.
 *
 * When stdout is a terminal (a person is reading) the same records are written as short
 * human-readable lines instead (`format: 'auto'`, the default; TPX_LOG_FORMAT=json|pretty
 * forces one). Log shippers and tests read stdout through a pipe and always get JSON.
 */
import { pino, destination as pinoDestination, type DestinationStream, type Logger } from 'pino';
import { prettyDestination } from './pretty.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  /** Where JSON lines go (default: stdout, asynchronous). Ignored when the format is pretty. */
  destination?: DestinationStream;
  format?: LogFormat;
  /** Is stdout a terminal? (decides `auto`; injectable for tests) */
  isTTY?: boolean;
}

export function createLogger(level = 'info', opts: LoggerOptions | DestinationStream = {}): Logger {
  const o: LoggerOptions = 'write' in opts ? { destination: opts as DestinationStream } : (opts as LoggerOptions);
  const isTTY = o.isTTY ?? Boolean(process.stdout.isTTY);
  const pretty = o.format === 'pretty' || ((o.format ?? 'auto') === 'auto' && isTTY && !o.destination);
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'secret', '*.token', '*.secret', 'authorization', '*.authorization', 'req.headers.authorization', 'headers["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    pretty ? prettyDestination(o.destination ?? process.stdout, { color: isTTY }) : (o.destination ?? pinoDestination({ sync: false })),
  );
}
