/**
 * The Shopify connector (GraphQL Admin API, OAuth offline access with expiring tokens, signed
 * webhooks). One connector per shop: `createShopifyConnector({ shop, apiVersion, shopUrlTemplate })`,
 * bound to the shop's credentials with the kit's `invokerOf`.
 *
 * @example
 * const shopify = createShopifyConnector({ shop: 'example.myshopify.com', shopUrlTemplate: config.providers.shopify.shopUrlTemplate });
 * const page = await shopify.calls.listVariants({ accessToken }, { locationId }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import { adjustQuantities, createWebhookSubscription, getInventoryLevel, listInventoryItems, listLocations, listProducts, listVariants, revoke, setQuantities, type ShopifySettings } from './client.js';
import { classifyShopify } from './errors.js';
import { stockMapping } from './mapping.js';
import { shopifyWebhooks } from './webhooks.js';

export function createShopifyConnector(settings: ShopifySettings) {
  return defineConnector({
    id: 'shopify',
    auth: 'oauth2',
    calls: {
      listProducts: (creds, input: Parameters<typeof listProducts>[2], ctx) => listProducts(settings, creds, input, ctx),
      listVariants: (creds, input: Parameters<typeof listVariants>[2], ctx) => listVariants(settings, creds, input, ctx),
      listInventoryItems: (creds, input: Parameters<typeof listInventoryItems>[2], ctx) => listInventoryItems(settings, creds, input, ctx),
      listLocations: (creds, input: Parameters<typeof listLocations>[2], ctx) => listLocations(settings, creds, input, ctx),
      getInventoryLevel: (creds, input: Parameters<typeof getInventoryLevel>[2], ctx) => getInventoryLevel(settings, creds, input, ctx),
      setQuantities: (creds, input: Parameters<typeof setQuantities>[2], ctx) => setQuantities(settings, creds, input, ctx),
      adjustQuantities: (creds, input: Parameters<typeof adjustQuantities>[2], ctx) => adjustQuantities(settings, creds, input, ctx),
      createWebhookSubscription: (creds, input: Parameters<typeof createWebhookSubscription>[2], ctx) => createWebhookSubscription(settings, creds, input, ctx),
      revoke: (creds, _input: Record<string, never>, ctx) => revoke(settings, creds, ctx),
    },
    webhooks: shopifyWebhooks,
    mapping: { stock: stockMapping },
    classify: classifyShopify,
  });
}

export type ShopifyConnector = ReturnType<typeof createShopifyConnector>;

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './webhooks.js';
