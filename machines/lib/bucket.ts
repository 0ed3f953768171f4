/**
 * A token bucket, as plain data and pure functions: `rate` tokens come back every `perMs`, at
 * most `burst` are held. The caller owns the state and passes the time in (epoch ms), so the same
 * arithmetic serves the edge's per-tenant quotas and any budget that keeps its bucket elsewhere.
 *
 * ```ts
 * const rule = { rate: 4, perMs: 1_000, burst: 40 };
 * let b = fullBucket(rule, now);
 * const r = reserveToken(rule, b, now, 1_000); // { ok, waitMs } or { ok: false, retryAfterMs }
 * ```
 */
export interface RateRule {
  /** Tokens added per `perMs`. */
  rate: number;
  perMs: number;
  /** The most tokens held (the burst allowed after a quiet spell). */
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
}

export const fullBucket = (rule: RateRule, now: number): Bucket => ({ tokens: rule.burst, at: now });

/** The bucket as it stands at `now` (refilled; a clock that stepped back refills nothing). */
export function refill(rule: RateRule, b: Bucket, now: number): Bucket {
  if (now <= b.at) return b;
  return { tokens: Math.min(rule.burst, b.tokens + ((now - b.at) * rule.rate) / rule.perMs), at: now };
}

/**
 * Takes one token; a request a little over the rate may wait for its token instead of being
 * refused (a queue, as nginx's `limit_req` with a burst): the bucket lends up to `maxWaitMs` worth
 * of future tokens, and the answer says how long to wait. Past that, `ok: false` with the wait a
 * retry needs. A closed-loop client over its quota is slowed to the rate instead of spinning on
 * refusals.
 */
export function reserveToken(rule: RateRule, b: Bucket, now: number, maxWaitMs: number): { ok: true; waitMs: number; bucket: Bucket } | { ok: false; retryAfterMs: number; bucket: Bucket } {
  const cur = refill(rule, b, now);
  if (cur.tokens >= 1) return { ok: true, waitMs: 0, bucket: { tokens: cur.tokens - 1, at: cur.at } };
  const waitMs = Math.ceil(((1 - cur.tokens) * rule.perMs) / rule.rate);
  if (waitMs <= maxWaitMs) return { ok: true, waitMs, bucket: { tokens: cur.tokens - 1, at: cur.at } };
  return { ok: false, retryAfterMs: Math.max(1, waitMs - maxWaitMs), bucket: cur };
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, sec: 1_000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000 };

/**
 * Reads `4/s:40`, `200/min`, `1000/h` (rate per unit, then an optional burst; the burst is the
 * rate when not given). Returns a message instead of a rule when the text is not one.
 */
export function parseRateRule(text: string): RateRule | string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([a-z]+)\s*(?::\s*(\d+))?\s*$/i.exec(text);
  if (!m) return `'${text}' is not <rate>/<s|min|h>[:<burst>]`;
  const perMs = UNIT_MS[m[2]!.toLowerCase()];
  if (perMs === undefined) return `'${m[2]}' is not a unit (s, min or h)`;
  const rate = Number(m[1]);
  if (!(rate > 0)) return `the rate in '${text}' must be above 0`;
  const burst = m[3] === undefined ? Math.max(1, rate) : Number(m[3]);
  if (!(burst >= 1)) return `the burst in '${text}' must be at least 1`;
  return { rate, perMs, burst };
}
