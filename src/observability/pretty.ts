/**
 * Human-readable log lines for a terminal: pino hands each record as one JSON line to
 * `write()`, and this prints
 *
 *   14:02:07.431 INFO  listening url=http://127.0.0.1:8080 port=8080 node=node-4711
 *   14:02:09.012 WARN  webhook attempt failed url=https://partner.example/hook status=503 …
 *
 * Values longer than MAX_VALUE characters are cut with "…" so one noisy field cannot push
 * everything else off the screen; an `err` stack follows on indented lines. Hand-written (about
 * 60 lines) rather than pino-pretty: we need this one fixed format, and pino-pretty brings
 * 13 packages, half of them for its command line. JSON stays the format of everything that is
 * not a terminal.
 */
import type { DestinationStream } from 'pino';

const MAX_VALUE = 160;
const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[41m\x1b[97m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err']);

function clip(text: string): string {
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return clip(/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value));
  return clip(JSON.stringify(value) ?? String(value));
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Turn one pino JSON record into one (or, with a stack, several) readable lines. */
export function formatRecord(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const [name, tint] = LEVELS[Number(rec.level)] ?? [String(rec.level).toUpperCase().padEnd(5), ''];
  const paint = (text: string, code: string) => (color && code ? `${code}${text}${RESET}` : text);
  const fields = Object.entries(rec)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${paint(`${k}=`, DIM)}${formatValue(v)}`);
  let out = `${paint(clock(typeof rec.time === 'number' ? rec.time : Date.now()), DIM)} ${paint(name, tint)} ${String(rec.msg ?? '')}`;
  if (fields.length) out += ` ${fields.join(' ')}`;
  const err = rec.err as { type?: string; message?: string; stack?: string } | string | undefined;
  if (typeof err === 'string') out += ` ${paint('err=', DIM)}${formatValue(err)}`;
  else if (err) out += `\n${(err.stack ?? `${err.type ?? 'Error'}: ${err.message ?? ''}`).replace(/^/gm, '    ')}`;
  return `${out}\n`;
}

/** A pino destination that writes readable lines to `out` (stdout by default). */
export function prettyDestination(out: { write(chunk: string): unknown }, opts: { color: boolean }): DestinationStream {
  return { write: (line: string) => void out.write(formatRecord(line, opts.color)) };
}
