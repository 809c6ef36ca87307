/**
 * One JSON line per significant event (SPEC §5), via pino. Secrets never reach the log:
 * tokens, secrets and authorization headers are redacted by path.
 */
import { pino, destination as pinoDestination, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'secret', '*.token', '*.secret', 'authorization', '*.authorization', 'req.headers.authorization', 'headers["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    destination ?? pinoDestination({ sync: false }),
  );
}
