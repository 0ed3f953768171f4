/** The Shopify connector against the Shopify fake. */
import { startShopifyFake, type ShopifyFake } from '../../../simulator/fakes/shopify.js';
import * as shopify from '../../../connectors/shopify/index.js';
import { ctxOf, playBrowser, Receiver, type Creds, type ProviderUnderTest } from './adapter.js';

const SHOP = 'contract.myshopify.com';
const REDIRECT = 'https://concord.test/api/integrations/shopify/callback';

export function shopifyAdapter(): ProviderUnderTest & { fake(): ShopifyFake; settings(): shopify.ShopifySettings; app(): shopify.ShopifyAppSettings } {
  let fake: ShopifyFake;
  const receiver = new Receiver();
  let app: shopify.ShopifyAppSettings;
  let settings: shopify.ShopifySettings;
  let locationId = '';
  const creds = (c: Creds) => c as unknown as shopify.ShopifyCredentials;

  return {
    name: 'shopify',
    fake: () => fake,
    settings: () => settings,
    app: () => app,
    async setup() {
      fake = await startShopifyFake({ apiKey: 'contract-key', apiSecret: 'contract-secret', webhookSecret: 'contract-webhook-secret' });
      await receiver.start();
      app = { apiKey: 'contract-key', apiSecret: 'contract-secret', shopUrlTemplate: `${fake.url}/{shop}` };
      settings = { shop: SHOP, shopUrlTemplate: app.shopUrlTemplate };
      locationId = fake.control.seed(SHOP, [{ sku: 'CAS-1', quantity: 10 }])[0]!.locationId;
    },
    async teardown() {
      await fake.close();
      await receiver.stop();
    },
    oauth: {
      async connect(o = {}) {
        const state = `st-${Math.random().toString(36).slice(2)}`;
        const url = shopify.authorizeUrl(app, { shop: SHOP, scopes: ['read_products', 'write_inventory', 'read_locations'], redirectUri: REDIRECT, state });
        const callback = await playBrowser(url);
        if (!callback.href.startsWith(REDIRECT)) throw new Error(`redirected to ${callback.href}`);
        const q = callback.searchParams;
        o.tamper?.(q);
        const check = shopify.verifyCallback(q, app.apiSecret, Date.now());
        if (!check.ok) return { callbackOk: false, reason: check.reason };
        if (check.state !== state || check.shop !== SHOP) return { callbackOk: false, reason: 'state or shop' };
        const grant = await shopify.exchangeCode(app, { shop: check.shop, code: check.code, signal: AbortSignal.timeout(5_000) });
        return { callbackOk: true, creds: grant as unknown as Creds };
      },
      expireAccess: () => fake.control.expireTokens(SHOP),
      async refresh(c) {
        return (await shopify.refreshGrant(app, { shop: SHOP, refreshToken: String(c.refreshToken), signal: AbortSignal.timeout(5_000) })) as unknown as Creds;
      },
      refreshKind: 'grace',
    },
    async credentials() {
      const t = fake.control.issueToken(SHOP, { scope: 'read_products,write_inventory,read_locations' });
      return { accessToken: t.access_token, refreshToken: t.refresh_token };
    },
    probe: (c, signal) => shopify.listLocations(settings, creds(c), {}, ctxOf(signal)),
    async listAll(c) {
      const seeded = fake.control.seed(
        SHOP,
        Array.from({ length: 24 }, (_, i) => ({ sku: `PAGE-${String(i).padStart(2, '0')}`, quantity: i })),
      );
      const keys: string[] = [];
      let pages = 0;
      for await (const page of shopify.pages((after) => shopify.listVariants(settings, creds(c), { locationId, first: 10, after }, ctxOf()))) {
        pages++;
        keys.push(...page.variants.map((v) => shopify.variantToRecord(v).sku).filter((sku) => sku.startsWith('PAGE-')));
      }
      return { keys, expected: seeded.map((s) => s.sku), pages };
    },
    async casWrite(c) {
      const item = fake.control.seed(SHOP, [{ sku: 'CAS-2', quantity: 10 }])[0]!;
      const level = await shopify.getInventoryLevel(settings, creds(c), { inventoryItemId: item.inventoryItemId, locationId: item.locationId }, ctxOf());
      const current = level.level!.quantities[0]!.quantity;
      await shopify.setQuantities(settings, creds(c), { quantities: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, quantity: 7, changeFromQuantity: current }] }, ctxOf());
      const after = fake.control.level(SHOP, 'CAS-2')!.available;
      const stale = await shopify
        .setQuantities(settings, creds(c), { quantities: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, quantity: 3, changeFromQuantity: current }] }, ctxOf())
        .catch((e: unknown) => e);
      return { after, expectedAfter: 7, stale, afterStale: fake.control.level(SHOP, 'CAS-2')!.available };
    },
    async throttled(c) {
      const out: Array<{ what: string; error: unknown; expectRetryAfterMs?: number }> = [];
      // THROTTLED with HTTP 200: the wait comes from the restore rate (standard plan: 100 points/s)
      fake.control.setAvailablePoints(SHOP, 0);
      out.push({ what: 'THROTTLED (200)', error: await shopify.listLocations(settings, creds(c), { first: 50 }, ctxOf()).catch((e: unknown) => e), expectRetryAfterMs: 520 });
      // THROTTLED with HTTP 429 and Retry-After
      fake.control.setThrottledStatus(429);
      fake.control.setAvailablePoints(SHOP, 0);
      out.push({ what: 'THROTTLED (429)', error: await shopify.listLocations(settings, creds(c), { first: 50 }, ctxOf()).catch((e: unknown) => e), expectRetryAfterMs: 1000 });
      fake.control.setThrottledStatus(200);
      fake.control.setAvailablePoints(SHOP, 2000);
      // the REST-style request limit: 429 + Retry-After
      fake.control.setRequestLimit({ bucket: 1, leakPerSecond: 0.5 });
      await shopify.listLocations(settings, creds(c), {}, ctxOf());
      out.push({ what: 'request limit 429', error: await shopify.listLocations(settings, creds(c), {}, ctxOf()).catch((e: unknown) => e), expectRetryAfterMs: 2000 });
      fake.control.setRequestLimit(undefined);
      return out;
    },
    async webhook() {
      const payload = { inventory_item_id: 1, location_id: 2, available: 5, updated_at: new Date().toISOString() };
      receiver.received.length = 0;
      await fake.control.sendWebhook(SHOP, 'inventory_levels/update', payload, { to: `${receiver.url}/webhook`, eventId: 'evt-1', webhookId: 'wh-1' });
      await fake.control.sendWebhook(SHOP, 'inventory_levels/update', payload, { to: `${receiver.url}/webhook`, corruptSignature: true });
      await fake.control.sendWebhook(SHOP, 'inventory_levels/update', payload, { to: `${receiver.url}/webhook`, secret: 'someone-elses-secret' });
      const [good, ...bad] = receiver.received;
      const tamperedBody = { body: new TextEncoder().encode(JSON.stringify({ ...payload, available: 500 })), headers: good!.headers };
      return {
        webhooks: shopify.shopifyWebhooks as never,
        secret: 'contract-webhook-secret',
        good: good!,
        bad: [...bad, tamperedBody],
        expect: { topic: 'inventory_levels/update', shopDomain: SHOP, webhookId: 'wh-1', eventId: 'evt-1', payload },
      };
    },
    readMissing: (c) => shopify.getInventoryLevel(settings, creds(c), { inventoryItemId: 'gid://shopify/InventoryItem/1', locationId }, ctxOf()),
    fail: (status, retryAfterSeconds) => fake.control.fail({ status, count: 1, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }),
    hang: () => fake.control.hang({ count: 1 }),
    clearFaults: () => fake.control.clearFaults(),
    revoke: () => fake.control.revoke(SHOP),
    recover: (c) => shopify.refreshGrant(app, { shop: SHOP, refreshToken: String(c.refreshToken), signal: AbortSignal.timeout(5_000) }),
  };
}
