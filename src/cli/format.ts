/** Output helpers: JSON or a plain aligned table on stdout, notices on stderr, ANSI colours only on a TTY. */

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.length ? v.map(cell).join(',') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

export function table<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

export function printTable<T>(rows: T[], columns: Column<T>[], empty = '(none)'): void {
  if (rows.length === 0) {
    process.stdout.write(empty + '\n');
    return;
  }
  process.stdout.write(table(rows, columns) + '\n');
}

/** `key: value` lines for a single record. */
export function printRecord(record: Record<string, unknown>, keys?: string[]): void {
  const ks = keys ?? Object.keys(record);
  const w = Math.max(...ks.map((k) => k.length));
  for (const k of ks) process.stdout.write(`${(k + ':').padEnd(w + 1)} ${cell(record[k])}\n`);
}

export function notice(message: string): void {
  process.stderr.write(message + '\n');
}

/** Pull the list out of `[...]` or `{ <key>: [...] }` answers. */
export function listOf<T = Record<string, unknown>>(body: unknown, ...keys: string[]): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    for (const k of [...keys, 'items', 'data', 'results']) if (Array.isArray(o[k])) return o[k] as T[];
  }
  return [];
}

const CODES = { reset: 0, bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90 } as const;
export type Colour = keyof typeof CODES;

export function colourer(enabled: boolean): (c: Colour, s: string) => string {
  if (!enabled) return (_c, s) => s;
  return (c, s) => `\u001b[${CODES[c]}m${s}\u001b[0m`;
}

/** Colours when stdout is a TTY, unless NO_COLOR is set; FORCE_COLOR forces them. */
export function stdoutColours(): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return process.stdout.isTTY === true;
}
