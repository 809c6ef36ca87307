/**
 * "Did you mean …?" for names typed on the command line (rooms, event types): the candidate
 * closest by edit distance (Damerau–Levenshtein, case-insensitive, `-` read as `_`), if it is
 * close enough to be a typo rather than another word. Commands and options get commander's own
 * suggestions (`showSuggestionAfterError`).
 */

/** Optimal string alignment distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function canonical(name: string): string {
  return name.trim().toUpperCase().replace(/[-\s]/g, '_');
}

/** The closest candidate, or undefined when none is within a third of the name's length (at least 2 edits). */
export function closestName(input: string, candidates: readonly string[]): string | undefined {
  const wanted = canonical(input);
  if (!wanted) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, canonical(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(2, Math.floor(wanted.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** ` (did you mean X?)` or an empty string. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const match = closestName(input, candidates);
  return match && match !== input ? ` (did you mean ${match}?)` : '';
}
