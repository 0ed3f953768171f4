/**
 * Providers' request budgets: how they are written (`RATE_LIMITS`, e.g.
 * `shopify=4/s:40,mercadolibre=200/min`) and the token bucket each one becomes. Pure.
 *
 * - `N/unit:B` (an explicit burst) is a token bucket: Shopify's "4 requests/s, burst 40": `B`
 *   tokens refilled at 99% of `N` per unit.
 * - `N/unit` (no burst) is a window limit, "never more than N in any window of one unit": a
 *   bucket of `B = max(1, ceil(N / 20))` tokens refilled at 99% of `N - B` per unit, so that any
 *   window of one unit holds at most `B + (N - B) = N` calls, a sustained rate of 94% of `N`
 *   (`N >= 20`; at least half of `N` below that; `N < 2` cannot keep the bound). `B` is also the
 *   most calls in flight at once (a token is spent when its call ends), hence 5% rather than less.
 *
 * The door (services/integrations/outbound/, migrations/0017) spends a token when a call ENDS and
 * admits a call while tokens minus calls in flight is at least 1, so these bounds hold for the
 * provider's count at arrival, whatever the delay between our grant and the arrival; the 1% is
 * for clocks read to the millisecond.
 *
 * Units: `ms`, `s`, `sec`, `min`, `m`, `h`, `hour`, or a number of them (`20/2s`, `200/10s`),
 * which tests use to shorten a window.
 *
 * @example
 * parseRateLimits('shopify=4/s:40,mercadolibre=200/min').shopify // { spec: '4/s:40', capacity: 40, refillPerSecond: 4, ... }
 */

export interface RateLimit {
  /** As written, e.g. `4/s:40`. */
  spec: string;
  /** Calls allowed per window. */
  limit: number;
  windowMs: number;
  /** The burst, when written. */
  burst: number | undefined;
  /** The bucket: its size and its refill per second. */
  capacity: number;
  refillPerSecond: number;
  /** `account`: a bucket per account (Shopify: per store); `tenant`: one per tenant; `app`: one for all. */
  scope: RateScope;
}

export type RateScope = 'account' | 'tenant' | 'app';

/** The seed's numbers: MercadoLibre 200/min per tenant, Shopify 4/s burst 40 per store, Shein 100/min per partner, TikTok Shop 1000/h per app. */
export const DEFAULT_RATE_LIMITS = 'shopify=4/s:40,mercadolibre=200/min,shein=100/min,tiktok=1000/h';

/** What each provider's budget is counted per. */
export const RATE_SCOPES: Readonly<Record<string, RateScope>> = Object.freeze({ shopify: 'account', mercadolibre: 'tenant', shein: 'tenant', tiktok: 'app', generic: 'account' });

const UNITS: Record<string, number> = { ms: 1, s: 1_000, sec: 1_000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000 };
const SPEC = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)?([a-z]+)(?::(\d+))?$/;
const NAME = /^[a-z][a-z0-9_-]*$/;
/** The refill's share of the rate: 1% for clocks read to the millisecond. */
const MARGIN = 0.99;

/** One budget, `N/unit[:burst]`; throws a message naming what is wrong. */
export function parseRateLimit(spec: string, scope: RateScope = 'tenant'): RateLimit {
  const m = SPEC.exec(spec.trim());
  const unit = m ? UNITS[m[3]!] : undefined;
  if (!m || unit === undefined) throw new Error(`'${spec}' is not N/unit or N/unit:burst (units ms, s, min, h; e.g. 4/s:40, 200/min, 20/2s)`);
  const limit = Number(m[1]);
  const windowMs = (m[2] === undefined ? 1 : Number(m[2])) * unit;
  const burst = m[4] === undefined ? undefined : Number(m[4]);
  if (!(limit > 0) || !(windowMs > 0)) throw new Error(`'${spec}': the limit and the window must be positive`);
  if (burst !== undefined && burst < 1) throw new Error(`'${spec}': the burst must be at least 1`);
  const perSecond = (n: number) => (n * 1000) / windowMs;
  if (burst !== undefined) return { spec: spec.trim(), limit, windowMs, burst, capacity: burst, refillPerSecond: perSecond(limit * MARGIN), scope };
  const capacity = Math.max(1, Math.ceil(limit / 20));
  return { spec: spec.trim(), limit, windowMs, burst, capacity, refillPerSecond: perSecond(Math.max(limit - capacity, limit / 2) * MARGIN), scope };
}

/**
 * `provider=N/unit[:burst],...` over the defaults; `provider=none` lifts a provider's budget.
 * Throws one message listing every bad entry.
 */
export function parseRateLimits(value: string | undefined, defaults: string = DEFAULT_RATE_LIMITS): Record<string, RateLimit | null> {
  const out: Record<string, RateLimit | null> = {};
  const problems: string[] = [];
  for (const [source, text] of [['default', defaults], ['RATE_LIMITS', value ?? '']] as const) {
    for (const entry of text.split(',').map((s) => s.trim()).filter(Boolean)) {
      const eq = entry.indexOf('=');
      const name = eq < 0 ? '' : entry.slice(0, eq).trim().toLowerCase();
      const spec = eq < 0 ? '' : entry.slice(eq + 1).trim();
      if (!NAME.test(name) || spec === '') {
        problems.push(`'${entry}' is not provider=N/unit[:burst]`);
        continue;
      }
      if (spec === 'none' || spec === 'off') {
        out[name] = null;
        continue;
      }
      try {
        out[name] = parseRateLimit(spec, RATE_SCOPES[name] ?? 'tenant');
      } catch (err) {
        problems.push(`${source === 'default' ? 'default ' : ''}${name}: ${(err as Error).message}`);
      }
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return out;
}
