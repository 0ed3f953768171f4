/** Arithmetic on the ISO timestamps machines keep in context (time arrives in events). */

/** `at` moved by `ms` milliseconds. */
export const plusMs = (at: string, ms: number): string => new Date(Date.parse(at) + ms).toISOString();

/** Milliseconds since the epoch of an ISO time; 0 for none. */
export const epochMs = (at: string | null): number => (at ? Date.parse(at) : 0);

/** Minutes from one ISO time to another, to two decimals; null unless both are known. */
export const minutesBetween = (from: string | null, to: string | null): number | null =>
  from && to ? Math.round(((Date.parse(to) - Date.parse(from)) / 60_000) * 100) / 100 : null;

/** Milliseconds since the epoch as an ISO time. */
export const isoAt = (ms: number): string => new Date(ms).toISOString();
