/** Parse human durations used by configuration: `500ms`, `5s`, `2m`, `72h`, `7d`, or plain milliseconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`Invalid duration: "${text}" (use e.g. 500ms, 5s, 2m, 72h, 7d)`);
  const value = Number(m[1]) * UNIT_MS[m[2] ?? 'ms'];
  if (!Number.isFinite(value)) throw new Error(`Invalid duration: "${text}"`);
  return Math.round(value);
}

/** `5s,30s,2m` → [5000, 30000, 120000]. */
export function parseDurationList(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new Error('Duration list is empty');
  return parts.map(parseDuration);
}
