/**
 * One JSON line per significant event (SPEC §5), via pino. Secrets never reach the log:
 * tokens, secrets and authorization headers are redacted by path.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['token', 'secret', '*.token', '*.secret', 'authorization', '*.authorization', 'req.headers.authorization', 'headers["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
