import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTenantQuotas } from '../../runtime/config.js';
import { BASE, harness, type Harness } from './harness.js';

describe('per-tenant API quotas', () => {
  let h: Harness;
  beforeAll(async () => {
    // every tenant 5/s with a burst of 5; vendor-big 50/s; partner-free unlimited
    h = await harness({ env: { TENANT_QUOTAS: 'default=5/s:5,vendor-big=50/s,partner-free=off' } });
  });
  afterAll(async () => h.close());

  it('a little over the quota waits for its token; past a second of waiting it is 429 with Retry-After; the tenant gets back in after the wait', async () => {
    const t = h.token('vendor', 'vendor-flood');
    const statuses: number[] = [];
    const took: number[] = [];
    let refused: Awaited<ReturnType<Harness['call']>> | undefined;
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const r = await h.call('GET', `${BASE}/relationships`, { token: t });
      took.push(performance.now() - t0);
      statuses.push(r.status);
      if (r.status === 429) refused ??= r;
    }
    // the burst of 5 at once, then 5 more that waited 200, 400, ... 1,000 ms for tokens lent ahead
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(took.slice(5, 10).every((ms, i) => ms >= 200 * (i + 1) - 20)).toBe(true);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    expect(refused!.headers.get('content-type')).toBe('application/problem+json');
    expect(refused!.headers.get('retry-after')).toBe('1');
    expect(refused!.body).toMatchObject({ status: 429, code: 'QUOTA_EXCEEDED', retryAfter: 1 });

    h.clock.advance(3_000); // the 5 lent come back, and the bucket fills to its burst of 5
    const again = await Promise.all(Array.from({ length: 16 }, () => h.call('GET', `${BASE}/relationships`, { token: t })));
    expect(again.filter((r) => r.status === 200)).toHaveLength(10); // 5 at once, 5 after waiting
    expect(again.filter((r) => r.status === 429)).toHaveLength(6);
  });

  it("one tenant's flood does not spend another's quota; overrides and unlimited tenants apply", async () => {
    const flood = h.token('vendor', 'vendor-a');
    await Promise.all(Array.from({ length: 20 }, () => h.call('GET', `${BASE}/relationships`, { token: flood })));
    const other = h.token('partner', 'partner-b');
    const b = await Promise.all(Array.from({ length: 5 }, () => h.call('GET', `${BASE}/relationships`, { token: other })));
    expect(b.every((r) => r.status === 200)).toBe(true);

    const big = h.token('vendor', 'vendor-big');
    const bigs = await Promise.all(Array.from({ length: 50 }, () => h.call('GET', `${BASE}/relationships`, { token: big })));
    expect(bigs.filter((r) => r.status === 200)).toHaveLength(50);
    const free = h.token('partner', 'partner-free');
    const t0 = performance.now();
    const frees = await Promise.all(Array.from({ length: 100 }, () => h.call('GET', `${BASE}/relationships`, { token: free })));
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(frees.every((r) => r.status === 200)).toBe(true);
  });

  it('operators and services are not tenants: no quota applies to them', async () => {
    const op = h.token('operator');
    const rs = await Promise.all(Array.from({ length: 30 }, () => h.call('GET', `${BASE}/relationships`, { token: op })));
    expect(rs.every((r) => r.status === 200)).toBe(true);
  });
});

describe('TENANT_QUOTAS', () => {
  it('reads a bare default, named tenants, off, and refuses what it cannot read', () => {
    expect(parseTenantQuotas('100/s:200').quotas.default).toEqual({ rate: 100, perMs: 1000, burst: 200 });
    const q = parseTenantQuotas('default=200/min, vendor-7=10/s:40, partner-3=off').quotas;
    expect(q.default).toEqual({ rate: 200, perMs: 60_000, burst: 200 });
    expect(q.tenants.get('vendor-7')).toEqual({ rate: 10, perMs: 1000, burst: 40 });
    expect(q.tenants.get('partner-3')).toBeNull();
    expect(parseTenantQuotas(undefined).quotas.default).toBeNull();
    expect(parseTenantQuotas('ten per second').problems[0]).toMatch(/TENANT_QUOTAS: 'ten per second' is not/);
    expect(parseTenantQuotas('5/fortnight').problems[0]).toMatch(/not a unit/);
    expect(parseTenantQuotas('=5/s').problems[0]).toMatch(/no tenant/);
  });
});
