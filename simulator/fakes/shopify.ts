/**
 * A local Shopify for many shops at once, speaking the real wire formats: OAuth (authorize
 * redirect with a hex HMAC, expiring offline tokens with rotating refresh tokens), the GraphQL
 * Admin API with the cost-based throttle, signed webhooks out, and induced faults.
 *
 * @example
 * const shopify = await startShopifyFake({ apiKey: 'key', apiSecret: 'secret' });
 * shopify.control.seed('example.myshopify.com', [{ sku: 'SKU-1', quantity: 10 }]);
 * // SHOPIFY_SHOP_URL_TEMPLATE = `${shopify.url}/{shop}`
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { FakeClock, Faults, Listener, RateRecorder, type FakeServer, type FaultSpec } from './common.js';
import { gid, ShopData, type Level } from './shopify-admin.js';
import { graphqlRoute, ShopifyLimits, type CallRecord, type ShopifyPlan } from './shopify-graphql.js';
import { oauthRoutes, ShopifyTokens, type RefreshGrace } from './shopify-oauth.js';
import { WebhookSender, type SendWebhookOptions, type WebhookDelivery } from './shopify-webhooks.js';

export { gid, gidNumber } from './shopify-admin.js';
export { SHOPIFY_PLANS, type ShopifyPlan } from './shopify-graphql.js';
export { signOAuthQuery, type RefreshGrace } from './shopify-oauth.js';
export { topicHeader, type SendWebhookOptions, type WebhookDelivery } from './shopify-webhooks.js';

export interface ShopifyFakeOptions {
  port?: number;
  host?: string;
  apiKey?: string;
  apiSecret?: string;
  /** Signs webhooks; defaults to the API secret, as Shopify signs with the app's client secret. */
  webhookSecret?: string;
  clock?: 'real' | 'manual';
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  refreshGrace?: RefreshGrace;
  plan?: ShopifyPlan;
  /** HTTP status of a THROTTLED GraphQL answer: 200 (usual) or 429 (reported by some). */
  throttledStatus?: 200 | 429;
  /**
   * REST-style request limit in front of the API: a leaky bucket of `bucket` requests leaking
   * `leakPerSecond`; over it, 429 with `Retry-After` and Shopify's REST error body.
   */
  requestLimit?: { bucket: number; leakPerSecond: number };
  /** Send `inventory_levels/update` to subscriptions when the app itself changes a level (Shopify does). */
  webhooksOnApiChanges?: boolean;
}

export interface ShopifyState {
  shops: Map<string, ShopData>;
  tokens: ShopifyTokens;
  webhookDeliveries: WebhookDelivery[];
  /** Every Admin API call: shop, operation (root field) and answer status. */
  calls: CallRecord[];
}

export interface SeedItem {
  sku: string;
  quantity: number;
  /** A location GID or a location name; created if new. Default: the shop's first location. */
  locationId?: string;
  title?: string;
  price?: string;
}

export interface SeededItem {
  sku: string;
  productId: string;
  variantId: string;
  inventoryItemId: string;
  locationId: string;
}

export interface ShopifyControl {
  readonly clock: FakeClock;
  /** Per-shop times of every Admin API call. */
  readonly rate: RateRecorder;
  readonly faults: Faults;
  advance(ms: number): void;
  /** Expires every expiring access token (of one shop, or all). */
  expireTokens(shop?: string): void;
  /** Issues tokens without the OAuth dance (for tests of other parts). */
  issueToken(shop: string, o?: { scope?: string; expiring?: boolean }): { access_token: string; refresh_token?: string; scope: string };
  seed(shop: string, items: SeedItem[]): SeededItem[];
  addLocation(shop: string, name: string): string;
  /** Quantities of a SKU at a location (default: the shop's first). */
  level(shop: string, sku: string, locationId?: string): { available: number; on_hand: number; committed: number } | undefined;
  /** A merchant edit in the Shopify admin: sets available; sends the inventory webhook unless `webhook: false`. */
  setAvailable(shop: string, sku: string, available: number, o?: { locationId?: string; webhook?: boolean }): Promise<WebhookDelivery[]>;
  /** A sale on the channel: available -= n, committed += n; sends `inventory_levels/update` to subscriptions unless `webhook: false`. */
  sell(shop: string, sku: string, n: number, o?: { locationId?: string; webhook?: boolean; to?: string }): Promise<WebhookDelivery[]>;
  sendWebhook(shop: string, topic: string, payload: unknown, o: SendWebhookOptions): Promise<WebhookDelivery[]>;
  /** Sends a delivery again exactly as it was (a Shopify retry: same ids, same Triggered-At, original body). */
  redeliver(d: WebhookDelivery): Promise<WebhookDelivery>;
  /** Resolves when every webhook the fake started sending (also those the app's mutations caused) has ended. */
  webhooksIdle(): Promise<void>;
  /** The app is uninstalled: tokens answer 401, refresh answers invalid_grant. */
  revoke(shop: string): void;
  fail(spec: FaultSpec & { status: 500 | 502 | 503 | number; retryAfterSeconds?: number }): void;
  hang(spec?: FaultSpec): void;
  clearFaults(): void;
  /** Closes the listener: connections are refused until `up()`, on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  setPlan(shop: string, plan: ShopifyPlan): void;
  /** Sets the points currently available in a shop's bucket (drain it to test THROTTLED). */
  setAvailablePoints(shop: string, points: number): void;
  setThrottledStatus(status: 200 | 429): void;
  setRequestLimit(limit: { bucket: number; leakPerSecond: number } | undefined): void;
}

export type ShopifyFake = FakeServer<ShopifyState, ShopifyControl>;

export async function startShopifyFake(options: ShopifyFakeOptions = {}): Promise<ShopifyFake> {
  const apiKey = options.apiKey ?? 'fake-shopify-api-key';
  const apiSecret = options.apiSecret ?? 'fake-shopify-api-secret';
  const clock = new FakeClock(options.clock);
  const rate = new RateRecorder();
  const faults = new Faults();
  const tokens = new ShopifyTokens(clock, {
    accessTtlMs: (options.accessTokenTtlSeconds ?? 3600) * 1000,
    refreshTtlMs: (options.refreshTokenTtlSeconds ?? 90 * 24 * 3600) * 1000,
    grace: options.refreshGrace ?? 'until-replacement-used',
  });
  const limits = new ShopifyLimits(clock, options.plan ?? 'standard', options);
  const state: ShopifyState = { shops: new Map(), tokens, webhookDeliveries: [], calls: [] };
  const webhooks = new WebhookSender(clock, options.webhookSecret ?? apiSecret, state.webhookDeliveries);
  let idCounter = 8_000_000_000;
  const nextId = () => ++idCounter;

  const shopData = (domain: string): ShopData => {
    let s = state.shops.get(domain);
    if (!s) {
      s = new ShopData(domain);
      const loc = nextId();
      s.locations.set(loc, { id: loc, name: 'Shop location', isActive: true });
      state.shops.set(domain, s);
    }
    return s;
  };

  const levelPayload = (lv: Level) => ({
    inventory_item_id: lv.itemId,
    location_id: lv.locationId,
    available: lv.available,
    updated_at: lv.updatedAt,
    admin_graphql_api_id: `${gid('InventoryLevel', lv.locationId)}?inventory_item_id=${lv.itemId}`,
  });

  /** `inventory_levels/update` to every subscription of the shop (or to `to`), one event id for all. */
  const notifyLevel = async (shop: string, lv: Level, to?: string): Promise<WebhookDelivery[]> => {
    const targets = to ? [to] : [...shopData(shop).webhookSubscriptions.values()].filter((s) => s.topic === 'INVENTORY_LEVELS_UPDATE').map((s) => s.uri);
    const eventId = randomUUID();
    return (await Promise.all(targets.map((t) => webhooks.send(shop, 'inventory_levels/update', levelPayload(lv), { to: t, eventId })))).flat();
  };

  const app = new Hono();
  app.use('*', faults.middleware(() => ({ errors: 'Internal Server Error' })));
  oauthRoutes(app, { apiKey, apiSecret, clock, tokens, onInstall: (shop) => void shopData(shop) });
  graphqlRoute(app, {
    clock,
    rate,
    tokens,
    limits,
    shops: state.shops,
    calls: state.calls,
    nextId,
    onLevelsChanged: (shop, levels) => {
      if (options.webhooksOnApiChanges ?? true) for (const lv of levels) void notifyLevel(shop, lv);
    },
  });
  app.all('*', (c) => c.json({ errors: 'Not Found' }, 404));

  const listener = await Listener.start(app, { port: options.port, host: options.host });
  listener.onDown = () => faults.releaseHanging();

  const findLevel = (shop: string, sku: string, locationId?: string): Level | undefined => {
    const s = state.shops.get(shop);
    const i = s?.itemBySku(sku);
    if (!s || !i) return undefined;
    const loc = locationId ? locationOf(s, locationId) : s.defaultLocation()?.id;
    return loc === undefined ? undefined : s.level(i.id, loc);
  };

  const locationOf = (s: ShopData, idOrName: string): number | undefined => {
    const m = /^gid:\/\/shopify\/Location\/(\d+)$/.exec(idOrName);
    if (m) return s.locations.has(Number(m[1])) ? Number(m[1]) : undefined;
    for (const l of s.locations.values()) if (l.name === idOrName) return l.id;
    return undefined;
  };

  const control: ShopifyControl = {
    clock,
    rate,
    faults,
    advance: (ms) => clock.advance(ms),
    expireTokens: (shop) => tokens.expire(shop),
    issueToken(shop, o = {}) {
      shopData(shop);
      return tokens.issue(shop, o.scope ?? 'read_products,write_inventory,read_locations', o.expiring ?? true);
    },
    seed(shop, items) {
      const s = shopData(shop);
      const now = clock.iso();
      return items.map((it) => {
        let loc = it.locationId ? locationOf(s, it.locationId) : s.defaultLocation()!.id;
        if (loc === undefined) {
          loc = nextId();
          s.locations.set(loc, { id: loc, name: it.locationId!.startsWith('gid://') ? `Location ${loc}` : it.locationId!, isActive: true });
        }
        let inv = s.itemBySku(it.sku);
        if (!inv) {
          const productId = nextId();
          const variantId = nextId();
          const itemId = nextId();
          s.products.set(productId, { id: productId, title: it.title ?? it.sku, handle: it.sku.toLowerCase(), createdAt: now, updatedAt: now, variantIds: [variantId] });
          s.variants.set(variantId, { id: variantId, productId, sku: it.sku, title: 'Default Title', price: it.price ?? '10.00', inventoryItemId: itemId, updatedAt: now });
          inv = { id: itemId, sku: it.sku, variantId, tracked: true, createdAt: now, updatedAt: now };
          s.items.set(itemId, inv);
        }
        const key = `${inv.id}:${loc}`;
        const existing = s.levels.get(key);
        if (existing) {
          existing.available = it.quantity;
          existing.updatedAt = now;
        } else s.levels.set(key, { itemId: inv.id, locationId: loc, available: it.quantity, committed: 0, createdAt: now, updatedAt: now });
        const variant = s.variants.get(inv.variantId)!;
        return { sku: it.sku, productId: gid('Product', variant.productId), variantId: gid('ProductVariant', variant.id), inventoryItemId: gid('InventoryItem', inv.id), locationId: gid('Location', loc) };
      });
    },
    addLocation(shop, name) {
      const s = shopData(shop);
      const id = nextId();
      s.locations.set(id, { id, name, isActive: true });
      return gid('Location', id);
    },
    level(shop, sku, locationId) {
      const lv = findLevel(shop, sku, locationId);
      return lv && { available: lv.available, on_hand: lv.available + lv.committed, committed: lv.committed };
    },
    async setAvailable(shop, sku, available, o = {}) {
      const lv = findLevel(shop, sku, o.locationId);
      if (!lv) throw new Error(`shopify fake: no level for ${sku} in ${shop}`);
      lv.available = available;
      lv.updatedAt = clock.iso();
      state.shops.get(shop)!.items.get(lv.itemId)!.updatedAt = lv.updatedAt;
      return o.webhook === false ? [] : notifyLevel(shop, lv);
    },
    async sell(shop, sku, n, o = {}) {
      const lv = findLevel(shop, sku, o.locationId);
      if (!lv) throw new Error(`shopify fake: no level for ${sku} in ${shop}`);
      lv.available -= n;
      lv.committed += n;
      lv.updatedAt = clock.iso();
      state.shops.get(shop)!.items.get(lv.itemId)!.updatedAt = lv.updatedAt;
      return o.webhook === false ? [] : notifyLevel(shop, lv, o.to);
    },
    sendWebhook: (shop, topic, payload, o) => webhooks.send(shop, topic, payload, o),
    redeliver: (d) => webhooks.redeliver(d),
    webhooksIdle: () => webhooks.idle(),
    revoke: (shop) => tokens.revoke(shop),
    fail: (spec) => faults.fail(spec),
    hang: (spec) => faults.hang(spec),
    clearFaults: () => faults.clear(),
    down: () => listener.down(),
    up: () => listener.up(),
    setPlan: (shop, plan) => limits.setPlan(shop, plan),
    setAvailablePoints(shop, points) {
      limits.bucket(shop).available = points;
    },
    setThrottledStatus(status) {
      limits.throttledStatus = status;
    },
    setRequestLimit: (limit) => limits.setRequestLimit(limit),
  };

  return {
    get url() {
      return listener.url;
    },
    get port() {
      return listener.port;
    },
    state,
    control,
    async close() {
      await webhooks.close();
      faults.clear();
      await listener.down();
    },
  };
}
