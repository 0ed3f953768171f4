/**
 * Exponential backoff with a cap: the one formula every retry in Concord uses (saga steps,
 * workflow steps, the relay, consumers, webhook deliveries).
 *
 * ```ts
 * backoffDelay({ initialMs: 1000, multiplier: 2, maxMs: 30_000 }, 3) // 4000: the third retry
 * ```
 */
export interface Backoff {
  /** The wait before the first retry. */
  initialMs: number;
  /** Growth per retry; 2 when not given. */
  multiplier?: number;
  /** No wait is longer than this. */
  maxMs: number;
  /**
   * Share of the delay that randomness may take off (0..1; 0 when not given): with `random`
   * the delay is `d × (1 − jitter × random)`. Pure: the caller supplies the random value (a
   * machine takes it from an event, the runtime from its own source).
   */
  jitter?: number;
}

/**
 * The wait before retry `retry` (1 = the first retry): `initialMs × multiplier^(retry−1)`,
 * capped at `maxMs`, rounded to whole milliseconds. `random` in [0, 1) applies the policy's
 * jitter.
 */
export function backoffDelay(b: Backoff, retry: number, random?: number): number {
  if (b.initialMs <= 0) return 0;
  // past ~1000 doublings the product is Infinity (or NaN); the cap applies long before that
  const exponent = Math.min(Math.max(0, retry - 1), 1000);
  const raw = b.initialMs * (b.multiplier ?? 2) ** exponent;
  const capped = Number.isFinite(raw) ? Math.min(b.maxMs, raw) : b.maxMs;
  const jitter = random === undefined ? 0 : Math.min(1, Math.max(0, b.jitter ?? 0)) * Math.min(1, Math.max(0, random));
  return Math.round(capped * (1 - jitter));
}
