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

  it('answers 429 with Retry-After past the quota, and the tenant gets back in after the wait', async () => {
    const t = h.token('vendor', 'vendor-flood');
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<Harness['call']>> | undefined;
    for (let i = 0; i < 50; i++) {
      const r = await h.call('GET', `${BASE}/relationships`, { token: t });
      statuses.push(r.status);
      if (r.status === 429) refused ??= r;
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(45);
    expect(refused!.headers.get('content-type')).toBe('application/problem+json');
    expect(refused!.headers.get('retry-after')).toBe('1');
    expect(refused!.body).toMatchObject({ status: 429, code: 'QUOTA_EXCEEDED', retryAfter: 1 });

    h.clock.advance(1_000); // 5 tokens come back in a second
    const again = await Promise.all(Array.from({ length: 6 }, () => h.call('GET', `${BASE}/relationships`, { token: t })));
    expect(again.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it("one tenant's flood does not spend another's quota; overrides and unlimited tenants apply", async () => {
    const flood = h.token('vendor', 'vendor-a');
    for (let i = 0; i < 20; i++) await h.call('GET', `${BASE}/relationships`, { token: flood });
    const other = h.token('partner', 'partner-b');
    const b = await Promise.all(Array.from({ length: 5 }, () => h.call('GET', `${BASE}/relationships`, { token: other })));
    expect(b.every((r) => r.status === 200)).toBe(true);

    const big = h.token('vendor', 'vendor-big');
    const bigs = await Promise.all(Array.from({ length: 50 }, () => h.call('GET', `${BASE}/relationships`, { token: big })));
    expect(bigs.filter((r) => r.status === 200)).toHaveLength(50);
    const free = h.token('partner', 'partner-free');
    const frees = await Promise.all(Array.from({ length: 100 }, () => h.call('GET', `${BASE}/relationships`, { token: free })));
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
