/** Date handling shared by both stores: epoch ms in the hot tables, ISO-8601 UTC at the edge. */
import { StoreValidationError } from '../types.js';

export const iso = (ms: number): string => new Date(ms).toISOString();

export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** ISO-8601 (or null) → normalized ISO UTC; throws StoreValidationError on garbage. */
export function normalizeIso(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null;
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new StoreValidationError(`${field} must be an ISO-8601 date-time, got "${String(value)}"`);
  return iso(ms);
}

/** ISO-8601 → epoch ms (null when absent); throws StoreValidationError on garbage. */
export function isoToMs(value: string | null | undefined, field: string): number | null {
  if (value === undefined || value === null) return null;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new StoreValidationError(`${field} must be an ISO-8601 date-time, got "${value}"`);
  return ms;
}

/** 432000000 → "5d", 90000 → "90s": the largest unit that divides the duration. */
export function formatDurationMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
