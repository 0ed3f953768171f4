/**
 * The local fake providers, and one call that starts the marketplace pair with demo data and
 * answers the environment Concord needs to talk to them (for `npm run demo` and end-to-end tests).
 */
import { startMercadoLibreFake, type MercadoLibreFake, type MercadoLibreFakeOptions } from './mercadolibre.js';
import { startShopifyFake, type ShopifyFake, type ShopifyFakeOptions } from './shopify.js';

export * from './common.js';
export { startShopifyFake, signOAuthQuery, topicHeader, SHOPIFY_PLANS, type ShopifyFake, type ShopifyFakeOptions, type ShopifyControl, type WebhookDelivery } from './shopify.js';
export { startMercadoLibreFake, mlError, type MercadoLibreFake, type MercadoLibreFakeOptions, type MercadoLibreControl, type NotificationDelivery } from './mercadolibre.js';
export { startGenericFake, type GenericFake, type GenericFakeOptions, type GenericControl } from './generic.js';
export { generateTestPki, hasOpenssl, type TestPki } from './tls.js';
export { startMessagingFake, type MessagingFake, type MessagingControl, type MessagingState, type Received } from './messaging.js';
export { startSendGridFake, type SendGridFake } from './sendgrid.js';
export { startMailgunFake, type MailgunFake } from './mailgun.js';
export { startSlackFake, type SlackFake } from './slack.js';
export { startTeamsFake, type TeamsFake } from './teams.js';
export { startTwilioFake, type TwilioFake } from './twilio.js';
export { startSalesforceFake, SALESFORCE_API_VERSION, type SalesforceFake } from './salesforce.js';

export const DEMO_SHOP = 'example.myshopify.com';
export const DEMO_ML_SELLER = 146322322;

export interface MarketplaceFakes {
  shopify: ShopifyFake;
  mercadolibre: MercadoLibreFake;
  /** Concord's configuration variables pointing at the fakes. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts the Shopify and MercadoLibre fakes; with `seedSkus`, both channels list those SKUs
 * (Shopify shop `example.myshopify.com`, MercadoLibre seller 146322322).
 */
export async function startMarketplaceFakes(o: {
  shopify?: ShopifyFakeOptions;
  mercadolibre?: MercadoLibreFakeOptions;
  seedSkus?: Array<{ sku: string; quantity: number }>;
} = {}): Promise<MarketplaceFakes> {
  const shopify = await startShopifyFake({ apiKey: 'demo-shopify-key', apiSecret: 'demo-shopify-secret', ...o.shopify });
  const mercadolibre = await startMercadoLibreFake({ clientId: '5503910054141466', clientSecret: 'demo-ml-secret', ...o.mercadolibre });
  if (o.seedSkus) {
    shopify.control.seed(DEMO_SHOP, o.seedSkus);
    mercadolibre.control.seed(DEMO_ML_SELLER, o.seedSkus);
  }
  return {
    shopify,
    mercadolibre,
    env: {
      SHOPIFY_API_KEY: o.shopify?.apiKey ?? 'demo-shopify-key',
      SHOPIFY_API_SECRET: o.shopify?.apiSecret ?? 'demo-shopify-secret',
      SHOPIFY_SHOP_URL_TEMPLATE: `${shopify.url}/{shop}`,
      ML_CLIENT_ID: o.mercadolibre?.clientId ?? '5503910054141466',
      ML_CLIENT_SECRET: o.mercadolibre?.clientSecret ?? 'demo-ml-secret',
      ML_API_BASE_URL: mercadolibre.url,
      ML_AUTH_BASE_URL: mercadolibre.url,
    },
    async close() {
      await Promise.all([shopify.close(), mercadolibre.close()]);
    },
  };
}
