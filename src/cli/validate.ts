/** Argument parsers for commander options: each throws a CliError with a precise one-line message. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../config/duration.js';
import { EVENT_TYPES, ROOMS, isEventType, isRoom, type EventType, type Room } from '@tpx-realtime/protocol';
import { CliError } from './errors.js';
import { closestName, didYouMean } from './suggest.js';

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export function checkId(value: string, what = 'id'): string {
  const v = value.trim();
  if (!ID_RE.test(v)) throw new CliError(`invalid ${what} "${value}": expected an id such as 3f1c…-uuid (letters, digits, _ . : -)`);
  return v;
}

/** Commander option parser factory for ids. */
export function idArg(what: string) {
  return (value: string) => {
    try {
      return checkId(value, what);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** Repeatable `--account <id>` that also accepts comma lists. */
export function collectIds(what: string) {
  return (value: string, previous: string[] | undefined): string[] => {
    const out = [...(previous ?? [])];
    for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      try {
        out.push(checkId(part, what));
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    }
    if (out.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
    return out;
  };
}

export function parseRooms(value: string): Room[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new CliError('--rooms must list at least one room');
  const bad = names.filter((n) => !isRoom(n));
  if (bad.length) {
    const named = bad.map((n) => `${n}${didYouMean(n, ROOMS)}`).join(', ');
    throw new CliError(`unknown room${bad.length > 1 ? 's' : ''} ${named}; rooms are case-sensitive, valid: ${ROOMS.join(', ')}`);
  }
  return [...new Set(names)] as Room[];
}

export function roomsArg(value: string): Room[] {
  try {
    return parseRooms(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Account access rooms: event types only (ALL is not an access right but accepted as "all 11"). */
export function accessRoomsArg(value: string): string[] {
  const rooms = roomsArg(value);
  if (rooms.includes('ALL')) return [...EVENT_TYPES];
  return rooms;
}

export function checkEventType(value: string): EventType {
  if (isEventType(value)) return value;
  const match = closestName(value, EVENT_TYPES);
  const caseOnly = match !== undefined && value.toUpperCase().replace(/-/g, '_') === match;
  const hint = match ? ` (did you mean ${match}?${caseOnly ? ' types are case-sensitive' : ''})` : '';
  throw new CliError(`unknown event type "${value}"${hint}. Valid types:\n  ${EVENT_TYPES.join('\n  ')}`);
}

/**
 * A duration option in milliseconds. Units as in the configuration (`500ms`, `30s`, `5m`,
 * `2h`, `1d`); a plain number means SECONDS on the command line (`--duration 30` is 30 s),
 * never milliseconds.
 */
export function parseCliDuration(value: string): number {
  const v = value.trim();
  const ms = /^\d+(?:\.\d+)?$/.test(v) ? Math.round(Number(v) * 1000) : parseDuration(v);
  if (!Number.isFinite(ms)) throw new Error(`Invalid duration: "${value}"`);
  return ms;
}

export function durationArg(value: string): number {
  try {
    const ms = parseCliDuration(value);
    if (ms <= 0) throw new Error(`duration must be positive, got "${value}"`);
    return ms;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function positiveIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer ≥ 0, got "${value}"`);
  return n;
}

export function portArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) throw new InvalidArgumentError(`expected a port 0-65535, got "${value}"`);
  return n;
}

/** `5/s`, `300/m`, `2/h`, or a plain number (per second) → events per second. */
export function rateArg(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(ms|s|m|h|sec|min|hour))?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError(`invalid rate "${value}" (use e.g. 5/s, 120/m or 5)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const per: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600 };
  const rate = n / per[unit];
  if (!(rate > 0) || !Number.isFinite(rate)) throw new InvalidArgumentError(`rate must be positive, got "${value}"`);
  return rate;
}

export function isoDateArg(value: string): string {
  const d = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(d.getTime())) {
    throw new InvalidArgumentError(`invalid ISO-8601 date-time "${value}" (e.g. 2025-06-15T19:30:00Z)`);
  }
  return d.toISOString();
}

export function urlArg(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new InvalidArgumentError(`invalid URL "${value}" (e.g. http://localhost:3000/hook)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`URL must use http:// or https://, got "${value}"`);
  return u.toString();
}

/** Parse JSON with a one-line error naming the source. */
export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`invalid JSON in ${source}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `-` (stdin), inline JSON (starts with `{` or `[`), or a file path. A value that is neither
 * valid JSON nor an existing file is reported as what it most likely is: a file name (ends
 * with .json or has a directory) that does not exist, or JSON that does not parse.
 */
export async function readJsonSource(spec: string, option = '--payload'): Promise<unknown> {
  if (spec === '-') return parseJsonText(await readStdin(), 'stdin');
  const t = spec.trim();
  if (t.startsWith('{') || t.startsWith('[')) return parseJsonText(t, option);
  let text: string;
  try {
    text = readFileSync(spec, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new CliError(`cannot read ${spec}: ${(err as Error).message}`);
    if (/\.json$/i.test(t) || /[\\/]/.test(t)) throw new CliError(`file not found: ${spec}`);
    throw new CliError(
      `${option} ${JSON.stringify(spec.length > 60 ? `${spec.slice(0, 57)}…` : spec)} is neither JSON nor a file: ` +
        `pass a JSON object such as '{"conversation_id":"c-1"}', the path of a JSON file, or - to read stdin`,
    );
  }
  return parseJsonText(text, spec);
}
