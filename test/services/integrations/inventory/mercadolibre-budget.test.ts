import { describe, expect, it } from 'vitest';
import { DEMO_ML_SELLER } from '../../../../simulator/fakes/index.js';
import { connectMercadoLibre, runSync, useInventoryNode } from './support.js';

/**
 * MercadoLibre counts requests, and a stock write is two of them (the item read that checks the
 * expected stock, then the PUT): the budget must count both, or a sync's writes reach ML at up to
 * twice the budget. ML's 200/min, shortened to the same shape (40 per 2 s) so the test is quick.
 */

const TENANT = 't-ml-budget';
// 40 per 2 s: a bucket of 2 (ceil(40 / 20)), so a write's two requests fit it exactly
const LIMIT = { requests: 40, windowMs: 2_000 };
const ITEMS = 30;
const h = useInventoryNode({ node: { env: { RATE_LIMITS: `mercadolibre=${LIMIT.requests}/2s` } } });

describe('the MercadoLibre request budget during a sync', () => {
  it(`a full outbound sync that writes ${ITEMS} items never sends more than ${LIMIT.requests} requests in ${LIMIT.windowMs / 1000} s`, async () => {
    const { fakes, node } = h;
    await connectMercadoLibre(node.services, TENANT);
    fakes.mercadolibre.control.seed(DEMO_ML_SELLER, Array.from({ length: ITEMS }, (_, i) => ({ sku: `MB-${i}`, quantity: i })));
    for (let i = 0; i < ITEMS; i++) await node.services.inventory.setStock(TENANT, `MB-${i}`, 100 + i, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
    const rate = fakes.mercadolibre.control.rate;
    const key = `user:${DEMO_ML_SELLER}`;
    const before = rate.count(key);
    const s = await runSync(node, TENANT, 'mercadolibre', { mode: 'full', direction: 'outbound' }, 30_000);
    expect(s).toMatchObject({ status: 'completed', total: ITEMS, synced: ITEMS, failed: 0 });
    for (let i = 0; i < ITEMS; i++) expect(fakes.mercadolibre.control.stock(DEMO_ML_SELLER, `MB-${i}`)).toBe(100 + i);
    // a read and a PUT per item, and the pages' reads
    expect(rate.count(key) - before).toBeGreaterThanOrEqual(2 * ITEMS);
    expect(rate.maxInWindow(key, LIMIT.windowMs - 1)).toBeLessThanOrEqual(LIMIT.requests);
    expect(fakes.mercadolibre.state.calls.filter((c) => c.status === 429)).toEqual([]);
  }, 45_000);
});
