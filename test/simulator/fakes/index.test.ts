import { describe, expect, it } from 'vitest';
import { DEMO_ML_SELLER, DEMO_SHOP, startMarketplaceFakes } from '../../../simulator/fakes/index.js';

describe('startMarketplaceFakes', () => {
  it('starts both marketplaces with the same SKUs and answers the environment that points Concord at them', async () => {
    const fakes = await startMarketplaceFakes({ seedSkus: [{ sku: 'DEMO-1', quantity: 4 }] });
    try {
      const shopUrl = fakes.env.SHOPIFY_SHOP_URL_TEMPLATE!.replace('{shop}', DEMO_SHOP);
      const token = fakes.shopify.control.issueToken(DEMO_SHOP).access_token;
      const res = await fetch(`${shopUrl}/admin/api/2026-04/graphql.json`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-shopify-access-token': token },
        body: JSON.stringify({ query: '{ productVariants(first: 5) { nodes { sku } } }' }),
      });
      expect(((await res.json()) as { data: unknown }).data).toEqual({ productVariants: { nodes: [{ sku: 'DEMO-1' }] } });

      const ml = fakes.mercadolibre.control.issueToken(DEMO_ML_SELLER).access_token;
      const search = await fetch(`${fakes.env.ML_API_BASE_URL}/users/${DEMO_ML_SELLER}/items/search?seller_sku=DEMO-1`, { headers: { authorization: `Bearer ${ml}` } });
      expect(((await search.json()) as { results: string[] }).results).toHaveLength(1);
    } finally {
      await fakes.close();
    }
  });
});
