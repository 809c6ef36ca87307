/**
 * Repeated measurements (issue 13: median of 3). Each figure is the median of its own values
 * across the repeats, and the spread (min–max) is kept so the report can say how stable it was.
 */
export function median(values: number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export interface Figure {
  median: number | null;
  min: number | null;
  max: number | null;
  values: number[];
}

export function figure(values: Array<number | null | undefined>): Figure {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return { median: median(v), min: v.length ? Math.min(...v) : null, max: v.length ? Math.max(...v) : null, values: v };
}

export interface Repeated<T> {
  runs: T[];
  /** Median (and spread) of each listed field across the runs. */
  figures: Record<string, Figure>;
}

export function repeated<T extends object>(runs: T[], fields: Array<keyof T & string>): Repeated<T> {
  const figures: Record<string, Figure> = {};
  for (const f of fields) figures[f] = figure(runs.map((r) => r[f] as unknown as number | null));
  return { runs, figures };
}

/** The median of one field, or null when it was not measured. */
export function med<T>(r: Repeated<T> | undefined | null, field: string): number | null {
  return r?.figures[field]?.median ?? null;
}
