import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../helpers/db.js';
import { connectShopify, runSync, token, useInventoryNode } from './support.js';

/**
 * A full sync reads a channel page, and before it compares it, a sale on the channel arrives by
 * webhook and is applied to our stock. The page's record is then older than what we already
 * applied: compared as read, its stock would be written back over the sale (our side reverting
 * to the old stock while the channel keeps the new one). Inbound and both-way syncs.
 */

const TENANT = 't-stale';
const SHOP = 'stale.myshopify.com';
const SKUS = ['SP-1', 'SP-2', 'SP-3'];
const SOLD = 'SP-2';

/** Set by a test: runs once between a page's read and its comparison. */
let between: (() => Promise<void>) | null = null;

const h = useInventoryNode({
  fakes: { shopify: { webhooksOnApiChanges: false } },
  node: {
    hooks: {
      pageRead: async () => {
        const run = between;
        between = null;
        await run?.();
      },
    },
  },
});

const vendor = token('vendor', TENANT);
const ours = async (sku: string) => (await h.node.call('GET', `/api/integrations/inventory/${sku}`, { token: vendor })).body as { stock: number };

const sync = (direction: 'inbound' | 'both') => runSync(h.node, TENANT, 'shopify', { mode: 'full', direction });

describe('a sale applied by webhook between a sync page read and its comparison', () => {
  it.each(['inbound', 'both'] as const)('%s: the page does not write its old stock back over the sale', async (direction) => {
    const { fakes, node } = h;
    if (direction === 'inbound') {
      await connectShopify(node.services, TENANT, SHOP);
      fakes.shopify.control.seed(SHOP, SKUS.map((sku, i) => ({ sku, quantity: 10 + i })));
      for (const [i, sku] of SKUS.entries()) await node.services.inventory.setStock(TENANT, sku, 10 + i, { source: 'api', changedAt: '2026-01-01T00:00:00Z' });
      // the baselines: both sides agree
      expect(await sync('inbound')).toMatchObject({ status: 'completed', failed: 0 });
    }
    const before = (await ours(SOLD)).stock;
    const after = before - 4;
    between = async () => {
      // the page holds SOLD at `before`; the sale's webhook reaches us and is applied now
      await fakes.shopify.control.setAvailable(SHOP, SOLD, after);
      await waitFor('the sale in our stock', async () => (await ours(SOLD)).stock === after, 10_000);
    };
    const s = await sync(direction);
    expect(between).toBeNull(); // the hook ran
    expect(s).toMatchObject({ status: 'completed', failed: 0 });
    expect(fakes.shopify.control.level(SHOP, SOLD)?.available).toBe(after);
    expect((await ours(SOLD)).stock).toBe(after);
    // and it stays so: nothing later puts the old stock back
    await new Promise((r) => setTimeout(r, 500));
    expect((await ours(SOLD)).stock).toBe(after);
    expect(fakes.shopify.control.level(SHOP, SOLD)?.available).toBe(after);
  }, 60_000);
});
