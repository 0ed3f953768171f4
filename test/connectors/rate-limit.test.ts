import { describe, expect, it } from 'vitest';
import { healthOf, pauseOf } from '../../connectors/kit/outage.js';
import { ConnectorError } from '../../connectors/kit/errors.js';
import { parseRateLimit, parseRateLimits } from '../../connectors/kit/rate-limit.js';
import { isConcordError } from '../../runtime/errors.js';
import { loadConfig } from '../../runtime/config.js';

describe('rate budgets (RATE_LIMITS)', () => {
  it("has the seed's defaults: Shopify 4/s burst 40 per store, MercadoLibre 200/min per tenant, Shein 100/min, TikTok 1000/h per app", () => {
    const l = parseRateLimits(undefined);
    // the whole burst; the refill at 99% (clocks read to the millisecond): the door spends a token when a call ends
    expect(l.shopify).toMatchObject({ spec: '4/s:40', burst: 40, capacity: 40, scope: 'account' });
    expect(l.shopify!.refillPerSecond).toBeCloseTo(3.96, 6);
    expect(l.mercadolibre).toMatchObject({ spec: '200/min', limit: 200, windowMs: 60_000, scope: 'tenant' });
    expect(l.shein).toMatchObject({ spec: '100/min', scope: 'tenant' });
    expect(l.tiktok).toMatchObject({ spec: '1000/h', windowMs: 3_600_000, scope: 'app' });
  });

  it('a window limit never allows more than N in any window, and runs at more than 90% of N', () => {
    for (const spec of ['200/min', '100/min', '1000/h', '40/2s']) {
      const r = parseRateLimit(spec);
      // the most a bucket lets through in one window: its size plus a window's refill
      expect(r.capacity + (r.refillPerSecond * r.windowMs) / 1000).toBeLessThanOrEqual(r.limit);
      expect((r.refillPerSecond * r.windowMs) / 1000).toBeGreaterThanOrEqual(0.9 * r.limit);
    }
  });

  it('overrides and lifts budgets, and refuses bad syntax with a message naming the entry', () => {
    const l = parseRateLimits('shopify=2/s:10, mercadolibre=none, generic=50/10s');
    expect(l.shopify).toMatchObject({ capacity: 10 });
    expect(l.shopify!.refillPerSecond).toBeCloseTo(1.98, 6);
    expect(l.mercadolibre).toBeNull();
    expect(l.generic).toMatchObject({ limit: 50, windowMs: 10_000, scope: 'account' });
    expect(() => parseRateLimits('shopify=4/fortnight')).toThrow(/shopify: '4\/fortnight' is not N\/unit/);
    expect(() => parseRateLimits('shopify')).toThrow(/'shopify' is not provider=N\/unit/);
    expect(() => parseRateLimits('shopify=0/s')).toThrow(/positive/);
    expect(() => parseRateLimits('shopify=4/s:0')).toThrow(/burst/);
  });

  it('a bad RATE_LIMITS stops start-up with INVALID_CONFIG naming the variable', () => {
    const err = (() => {
      try {
        loadConfig({ RATE_LIMITS: 'shopify=fast' });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(isConcordError(err) && err.code).toBe('INVALID_CONFIG');
    expect((err as Error).message).toMatch(/RATE_LIMITS: .*shopify/);
    expect(loadConfig({ RATE_LIMITS: 'shopify=2/s:20' }).outbound.rateLimits.shopify).toMatchObject({ burst: 20, capacity: 20 });
    expect(loadConfig({}).outbound).toMatchObject({ maxAttempts: 3, retryInitialMs: 1_000, breakerThreshold: 5, breakerCooldownMs: 30_000, alertErrorRate: 0.05, alertWindowMs: 300_000 });
  });
});

describe('what an outcome says about the provider (the breaker)', () => {
  it('5xx, timeouts, network and unknown failures count; answers that show the provider up do not', () => {
    for (const code of ['UNAVAILABLE', 'TIMEOUT', 'NETWORK', 'UNKNOWN'] as const) expect(healthOf(new ConnectorError(code, 'x'))).toBe('down');
    for (const code of ['RATE_LIMITED', 'VALIDATION', 'NOT_FOUND', 'CONFLICT', 'UNAUTHORIZED', 'REAUTHORIZATION_REQUIRED'] as const) expect(healthOf(new ConnectorError(code, 'x'))).toBe('up');
    expect(healthOf(null)).toBe('up');
  });

  it('a throttle pauses the key for its Retry-After (1 s when it names none)', () => {
    expect(pauseOf(new ConnectorError('RATE_LIMITED', 'x', { retryAfterMs: 2_500 }))).toBe(2_500);
    expect(pauseOf(new ConnectorError('RATE_LIMITED', 'x'))).toBe(1_000);
    expect(pauseOf(new ConnectorError('UNAVAILABLE', 'x', { retryAfterMs: 2_500 }))).toBe(0);
  });
});
