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
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { FakeClock, Faults, Listener, RateRecorder, readParams, retryAfterSeconds, type FakeServer, type FaultSpec } from './common.js';
import { execute, FieldError, GraphQLSyntaxError, parse, pickOperation, requestedCost, resolveArgs, resolveValue, rootFields } from './graphql.js';
import { adminRoot, checkScope, gid, IDEMPOTENT_MUTATIONS, ShopData, versionAtLeast, type Level } from './shopify-admin.js';

export { gid, gidNumber } from './shopify-admin.js';

/** GraphQL cost buckets per plan: points, and points restored per second. */
export const SHOPIFY_PLANS = {
  standard: { maximumAvailable: 2000, restoreRate: 100 },
  advanced: { maximumAvailable: 4000, restoreRate: 200 },
  plus: { maximumAvailable: 20000, restoreRate: 1000 },
  enterprise: { maximumAvailable: 40000, restoreRate: 2000 },
  unlimited: { maximumAvailable: Number.MAX_SAFE_INTEGER, restoreRate: Number.MAX_SAFE_INTEGER },
} as const;

export type ShopifyPlan = keyof typeof SHOPIFY_PLANS | { maximumAvailable: number; restoreRate: number };

/**
 * How the fake treats the refresh token a refresh replaced: `until-replacement-used` (Shopify
 * since 2026-08-28: usable until the new access or refresh token is first used, 30 days at most),
 * `immediate` (dead at once), or `{ windowMs }` (usable for a while, as the 60-minute window before).
 */
export type RefreshGrace = 'until-replacement-used' | 'immediate' | { windowMs: number };

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

interface AccessTokenRecord {
  token: string;
  shop: string;
  scope: string;
  expiresAt: number | null;
  revoked: boolean;
  used: boolean;
  /** The refresh token whose use issued this one. */
  parent: string | undefined;
}

interface RefreshTokenRecord {
  token: string;
  shop: string;
  scope: string;
  expiresAt: number;
  state: 'live' | 'rotated' | 'dead';
  rotatedAt?: number;
  used: boolean;
  parent: string | undefined;
}

/** One webhook POST the fake made. */
export interface WebhookDelivery {
  to: string;
  topic: string;
  shop: string;
  headers: Record<string, string>;
  body: string;
  /** 0 when the request failed (refused, timed out). */
  status: number;
  error?: string;
  ms: number;
}

export interface ShopifyState {
  shops: Map<string, ShopData>;
  accessTokens: Map<string, AccessTokenRecord>;
  refreshTokens: Map<string, RefreshTokenRecord>;
  webhookDeliveries: WebhookDelivery[];
  /** Every Admin API call: shop, operation (root field) and answer status. */
  calls: Array<{ shop: string; operation: string; status: number; throttled: boolean; at: number }>;
}

export interface SendWebhookOptions {
  to: string;
  secret?: string;
  eventId?: string;
  webhookId?: string;
  triggeredAt?: string;
  apiVersion?: string;
  /** Sign with a wrong signature. */
  corruptSignature?: boolean;
  /** Send the same delivery this many times (true = twice), same ids. */
  duplicate?: boolean | number;
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

const INVALID_TOKEN = { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' };
const hex = (n: number) => randomBytes(n).toString('hex');
const THIRTY_DAYS = 30 * 24 * 3600 * 1000;

/** The query a Shopify OAuth callback carries, with its hex HMAC (sorted, URL-encoded pairs). */
export function signOAuthQuery(params: Record<string, string>, secret: string): string {
  const message = new URLSearchParams(Object.keys(params).sort().map((k): [string, string] => [k, params[k]!])).toString();
  return createHmac('sha256', secret).update(message).digest('hex');
}

/** GraphQL enum `INVENTORY_LEVELS_UPDATE` -> header topic `inventory_levels/update`. */
export function topicHeader(topic: string): string {
  const i = topic.lastIndexOf('_');
  return `${topic.slice(0, i)}/${topic.slice(i + 1)}`.toLowerCase();
}

export async function startShopifyFake(options: ShopifyFakeOptions = {}): Promise<ShopifyFake> {
  const apiKey = options.apiKey ?? 'fake-shopify-api-key';
  const apiSecret = options.apiSecret ?? 'fake-shopify-api-secret';
  const webhookSecret = options.webhookSecret ?? apiSecret;
  const accessTtl = (options.accessTokenTtlSeconds ?? 3600) * 1000;
  const refreshTtl = (options.refreshTokenTtlSeconds ?? 90 * 24 * 3600) * 1000;
  const grace: RefreshGrace = options.refreshGrace ?? 'until-replacement-used';
  const clock = new FakeClock(options.clock);
  const rate = new RateRecorder();
  const faults = new Faults();
  let throttledStatus: 200 | 429 = options.throttledStatus ?? 200;
  let requestLimit = options.requestLimit;
  const webhooksOnApiChanges = options.webhooksOnApiChanges ?? true;
  const outgoing = new AbortController();
  const pending = new Set<Promise<unknown>>();

  const state: ShopifyState = { shops: new Map(), accessTokens: new Map(), refreshTokens: new Map(), webhookDeliveries: [], calls: [] };
  const codes = new Map<string, { shop: string; scope: string; online: boolean; expiresAt: number; used: boolean }>();
  const buckets = new Map<string, { max: number; restore: number; available: number; at: number }>();
  const requestBuckets = new Map<string, { level: number; at: number }>();
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

  const planOf = (p: ShopifyPlan) => (typeof p === 'string' ? SHOPIFY_PLANS[p] : p);
  const bucketOf = (shop: string) => {
    let b = buckets.get(shop);
    const now = clock.now();
    if (!b) {
      const p = planOf(options.plan ?? 'standard');
      b = { max: p.maximumAvailable, restore: p.restoreRate, available: p.maximumAvailable, at: now };
      buckets.set(shop, b);
    }
    b.available = Math.min(b.max, b.available + ((now - b.at) / 1000) * b.restore);
    b.at = now;
    return b;
  };

  const issue = (shop: string, scope: string, expiring: boolean, parent?: string) => {
    const access: AccessTokenRecord = { token: `shpat_${hex(16)}`, shop, scope, expiresAt: expiring ? clock.now() + accessTtl : null, revoked: false, used: false, parent };
    state.accessTokens.set(access.token, access);
    if (!expiring) return { access_token: access.token, scope };
    const refresh: RefreshTokenRecord = { token: `shprt_${hex(16)}`, shop, scope, expiresAt: clock.now() + refreshTtl, state: 'live', used: false, parent };
    state.refreshTokens.set(refresh.token, refresh);
    return {
      access_token: access.token,
      expires_in: Math.round(accessTtl / 1000),
      refresh_token: refresh.token,
      refresh_token_expires_in: Math.round(refreshTtl / 1000),
      scope,
    };
  };

  /** The first use of a replacement ends the grace of the token it replaced. */
  const firstUse = (rec: { used: boolean; parent: string | undefined }) => {
    if (rec.used) return;
    rec.used = true;
    const parent = rec.parent ? state.refreshTokens.get(rec.parent) : undefined;
    if (parent && parent.state === 'rotated' && grace === 'until-replacement-used') parent.state = 'dead';
  };

  const refreshUsable = (r: RefreshTokenRecord): boolean => {
    const now = clock.now();
    if (r.state === 'dead' || r.expiresAt <= now) return false;
    if (r.state === 'live') return true;
    if (grace === 'immediate') return false;
    if (grace === 'until-replacement-used') return now - r.rotatedAt! < THIRTY_DAYS;
    return now - r.rotatedAt! < grace.windowMs;
  };

  const invalidGrant = (description: string) => ({ error: 'invalid_grant', error_description: description });

  const deliver = async (shop: string, topic: string, body: string, headers: Record<string, string>, to: string): Promise<WebhookDelivery> => {
    const started = performance.now();
    const d: WebhookDelivery = { to, topic, shop, headers, body, status: 0, ms: 0 };
    try {
      const res = await fetch(to, { method: 'POST', headers, body, signal: AbortSignal.any([outgoing.signal, AbortSignal.timeout(5000)]) });
      d.status = res.status;
      await res.arrayBuffer();
    } catch (err) {
      d.error = err instanceof Error ? err.message : String(err);
    }
    d.ms = performance.now() - started;
    state.webhookDeliveries.push(d);
    return d;
  };

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };

  const sendWebhook = async (shop: string, topic: string, payload: unknown, o: SendWebhookOptions): Promise<WebhookDelivery[]> => {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    let hmac = createHmac('sha256', o.secret ?? webhookSecret).update(Buffer.from(body, 'utf8')).digest('base64');
    if (o.corruptSignature) hmac = (hmac[0] === 'A' ? 'B' : 'A') + hmac.slice(1);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-shopify-topic': topic,
      'x-shopify-hmac-sha256': hmac,
      'x-shopify-shop-domain': shop,
      'x-shopify-api-version': o.apiVersion ?? '2026-04',
      'x-shopify-webhook-id': o.webhookId ?? randomUUID(),
      'x-shopify-triggered-at': o.triggeredAt ?? clock.iso(),
      'x-shopify-event-id': o.eventId ?? randomUUID(),
    };
    const times = o.duplicate === true ? 2 : typeof o.duplicate === 'number' ? o.duplicate : 1;
    const out: WebhookDelivery[] = [];
    for (let i = 0; i < times; i++) out.push(await track(deliver(shop, topic, body, headers, o.to)));
    return out;
  };

  const levelPayload = (lv: Level) => ({
    inventory_item_id: lv.itemId,
    location_id: lv.locationId,
    available: lv.available,
    updated_at: lv.updatedAt,
    admin_graphql_api_id: `${gid('InventoryLevel', lv.locationId)}?inventory_item_id=${lv.itemId}`,
  });

  const notifyLevel = (shop: string, lv: Level, to?: string): Promise<WebhookDelivery[]> => {
    const subs = [...shopData(shop).webhookSubscriptions.values()].filter((s) => s.topic === 'INVENTORY_LEVELS_UPDATE');
    const targets = to ? [to] : subs.map((s) => s.uri);
    const eventId = randomUUID();
    return Promise.all(targets.map((t) => sendWebhook(shop, 'inventory_levels/update', levelPayload(lv), { to: t, eventId }))).then((x) => x.flat());
  };

  const app = new Hono();
  app.use('*', faults.middleware(() => ({ errors: 'Internal Server Error' })));

  // --- OAuth ---------------------------------------------------------------------------------
  app.get('/:shop/admin/oauth/authorize', (c) => {
    const shop = c.req.param('shop');
    const q = new URL(c.req.url).searchParams;
    if (q.get('client_id') !== apiKey) return c.text('Oauth error invalid_request: The client_id provided is invalid', 400);
    const redirect = q.get('redirect_uri');
    if (!redirect) return c.text('Oauth error invalid_request: The redirect_uri is missing', 400);
    shopData(shop);
    const code = hex(16);
    const grant = q.getAll('grant_options[]');
    codes.set(code, { shop, scope: q.get('scope') ?? '', online: grant.includes('per-user'), expiresAt: clock.now() + 10 * 60_000, used: false });
    const params: Record<string, string> = {
      code,
      host: Buffer.from(`admin.shopify.com/store/${shop.split('.')[0]}`).toString('base64url'),
      shop,
      state: q.get('state') ?? '',
      timestamp: String(Math.floor(clock.now() / 1000)),
    };
    const target = new URL(redirect);
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
    target.searchParams.set('hmac', signOAuthQuery(params, apiSecret));
    return c.redirect(target.toString(), 302);
  });

  app.post('/:shop/admin/oauth/access_token', async (c) => {
    const shop = c.req.param('shop');
    const p = await readParams(c.req.raw);
    if (p.client_id !== apiKey || p.client_secret !== apiSecret) {
      return c.json({ error: 'invalid_client', error_description: 'Client authentication failed.' }, 400);
    }
    if (p.grant_type === 'refresh_token') {
      const r = state.refreshTokens.get(p.refresh_token ?? '');
      if (!r || r.shop !== shop || !refreshUsable(r)) return c.json(invalidGrant('The refresh token is invalid, expired, revoked or was already used.'), 400);
      firstUse(r);
      if (r.state === 'live') {
        r.state = grace === 'immediate' ? 'dead' : 'rotated';
        r.rotatedAt = clock.now();
      }
      return c.json(issue(shop, r.scope, true, r.token));
    }
    const code = codes.get(p.code ?? '');
    if (!code || code.used || code.shop !== shop || code.expiresAt <= clock.now()) {
      return c.json({ error: 'invalid_request', error_description: 'The authorization code was not found or was already used' }, 400);
    }
    code.used = true;
    if (code.online) {
      const t = issue(shop, code.scope, false);
      const rec = state.accessTokens.get(t.access_token)!;
      rec.expiresAt = clock.now() + 86_399_000;
      return c.json({
        ...t,
        expires_in: 86399,
        associated_user_scope: code.scope,
        associated_user: { id: 902541635, first_name: 'Fake', last_name: 'Merchant', email: 'merchant@example.com', email_verified: true, account_owner: true, locale: 'en', collaborator: false },
      });
    }
    return c.json(issue(shop, code.scope, p.expiring === '1' || p.expiring === 'true'));
  });

  // --- GraphQL Admin API ------------------------------------------------------------------------
  app.post('/:shop/admin/api/:version/graphql.json', async (c) => {
    const shop = c.req.param('shop');
    const version = c.req.param('version');
    rate.record(shop);
    const log = (operation: string, status: number, throttled = false) => state.calls.push({ shop, operation, status, throttled, at: Date.now() });
    if (!/^(\d{4}-\d{2}|unstable)$/.test(version)) {
      log('', 404);
      return c.json({ errors: 'Not Found' }, 404);
    }
    c.header('x-shopify-api-version', version);
    if (requestLimit) {
      const rb = requestBuckets.get(shop) ?? { level: 0, at: clock.now() };
      const now = clock.now();
      rb.level = Math.max(0, rb.level - ((now - rb.at) / 1000) * requestLimit.leakPerSecond);
      rb.at = now;
      requestBuckets.set(shop, rb);
      if (rb.level + 1 > requestLimit.bucket) {
        log('', 429, true);
        c.header('retry-after', String(retryAfterSeconds(((rb.level + 1 - requestLimit.bucket) / requestLimit.leakPerSecond) * 1000)));
        c.header('x-shopify-shop-api-call-limit', `${Math.ceil(rb.level)}/${requestLimit.bucket}`);
        return c.json({ errors: `Exceeded ${requestLimit.leakPerSecond} calls per second for api client. Reduce request rates to resume uninterrupted service.` }, 429);
      }
      rb.level += 1;
      c.header('x-shopify-shop-api-call-limit', `${Math.ceil(rb.level)}/${requestLimit.bucket}`);
    }
    const token = state.accessTokens.get(c.req.header('x-shopify-access-token') ?? '');
    if (!token || token.shop !== shop || token.revoked || (token.expiresAt !== null && token.expiresAt <= clock.now()) || !state.shops.has(shop)) {
      log('', 401);
      return c.json(INVALID_TOKEN, 401);
    }
    firstUse(token);
    let body: { query?: unknown; variables?: unknown; operationName?: unknown };
    try {
      body = (await c.req.json()) as typeof body;
    } catch {
      log('', 400);
      return c.json({ errors: { query: 'Required parameter missing or invalid' } }, 400);
    }
    const vars = (body.variables && typeof body.variables === 'object' ? body.variables : {}) as Record<string, unknown>;
    const bucket = bucketOf(shop);
    const throttleStatus = () => ({ maximumAvailable: bucket.max, currentlyAvailable: Math.floor(bucket.available), restoreRate: bucket.restore });
    let operation = '';
    try {
      if (typeof body.query !== 'string') throw new GraphQLSyntaxError('No query string was present');
      const doc = parse(body.query);
      const op = pickOperation(doc, typeof body.operationName === 'string' ? body.operationName : undefined);
      for (const [k, dflt] of Object.entries(op.variables)) if (!(k in vars) && dflt !== undefined) vars[k] = resolveValue(dflt, vars);
      const fields = rootFields(op, doc, vars);
      operation = fields[0]?.name ?? '';
      const requested = requestedCost(op, doc, vars);
      if (requested > 1000) {
        log(operation, 200);
        return c.json({
          errors: [{ message: `Query cost is ${requested}, which exceeds the single query max cost limit (1000).`, extensions: { code: 'MAX_COST_EXCEEDED', cost: requested, maxCost: 1000 } }],
          extensions: { cost: { requestedQueryCost: requested, actualQueryCost: null, throttleStatus: throttleStatus() } },
        });
      }
      if (bucket.available < requested) {
        log(operation, throttledStatus, true);
        if (throttledStatus === 429) c.header('retry-after', String(retryAfterSeconds(((requested - bucket.available) / bucket.restore) * 1000)));
        return c.json(
          {
            errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED', documentation: 'https://shopify.dev/api/usage/rate-limits' } }],
            extensions: { cost: { requestedQueryCost: requested, actualQueryCost: null, throttleStatus: throttleStatus() } },
          },
          throttledStatus,
        );
      }
      const scopes = new Set(token.scope.split(',').map((s) => s.trim()).filter(Boolean));
      for (const f of fields) checkScope(f.name, scopes);
      const shopState = state.shops.get(shop)!;
      const changed: Level[] = [];
      const root = adminRoot({ shop: shopState, version, now: () => clock.iso(), nextId, scopes, onLevelChanged: (lv) => changed.push(lv) });
      let data: Record<string, unknown>;
      let cost: number;
      if (op.type === 'mutation') {
        ({ data, cost } = runMutation(root.mutation, fields, doc, vars, version, shopState));
        cost = Math.max(cost, 10);
      } else {
        ({ data, cost } = execute(root.query, fields, { vars, fragments: doc.fragments }));
      }
      bucket.available -= cost;
      log(operation, 200);
      if (webhooksOnApiChanges) for (const lv of changed) void track(notifyLevel(shop, lv));
      return c.json({ data, extensions: { cost: { requestedQueryCost: requested, actualQueryCost: cost, throttleStatus: throttleStatus() } } });
    } catch (err) {
      if (err instanceof GraphQLSyntaxError || err instanceof FieldError) {
        log(operation, 200);
        const extensions = err instanceof FieldError ? err.extensions : { code: 'SYNTAX_ERROR' };
        return c.json({ errors: [{ message: err.message, extensions }] });
      }
      throw err;
    }
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
    expireTokens(shop) {
      for (const t of state.accessTokens.values()) if ((!shop || t.shop === shop) && t.expiresAt !== null) t.expiresAt = clock.now() - 1;
    },
    issueToken(shop, o = {}) {
      shopData(shop);
      return issue(shop, o.scope ?? 'read_products,write_inventory,read_locations', o.expiring ?? true);
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
      return o.webhook === false ? [] : track(notifyLevel(shop, lv));
    },
    async sell(shop, sku, n, o = {}) {
      const lv = findLevel(shop, sku, o.locationId);
      if (!lv) throw new Error(`shopify fake: no level for ${sku} in ${shop}`);
      lv.available -= n;
      lv.committed += n;
      lv.updatedAt = clock.iso();
      state.shops.get(shop)!.items.get(lv.itemId)!.updatedAt = lv.updatedAt;
      return o.webhook === false ? [] : track(notifyLevel(shop, lv, o.to));
    },
    sendWebhook,
    redeliver: (d) => track(deliver(d.shop, d.topic, d.body, d.headers, d.to)),
    revoke(shop) {
      for (const t of state.accessTokens.values()) if (t.shop === shop) t.revoked = true;
      for (const r of state.refreshTokens.values()) if (r.shop === shop) r.state = 'dead';
    },
    fail: (spec) => faults.fail(spec),
    hang: (spec) => faults.hang(spec),
    clearFaults: () => faults.clear(),
    down: () => listener.down(),
    up: () => listener.up(),
    setPlan(shop, plan) {
      const p = planOf(plan);
      const b = bucketOf(shop);
      b.max = p.maximumAvailable;
      b.restore = p.restoreRate;
      b.available = Math.min(b.available, b.max);
    },
    setAvailablePoints(shop, points) {
      bucketOf(shop).available = points;
    },
    setThrottledStatus(status) {
      throttledStatus = status;
    },
    setRequestLimit(limit) {
      requestLimit = limit;
      requestBuckets.clear();
    },
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
      outgoing.abort();
      await Promise.allSettled([...pending]);
      faults.clear();
      await listener.down();
    },
  };
}

/** Runs a mutation's root fields, honouring `@idempotent(key:)` as the version requires. */
function runMutation(
  root: Record<string, unknown>,
  fields: ReturnType<typeof rootFields>,
  doc: ReturnType<typeof parse>,
  vars: Record<string, unknown>,
  version: string,
  shop: ShopData,
): { data: Record<string, unknown>; cost: number } {
  const data: Record<string, unknown> = {};
  let cost = 0;
  for (const f of fields) {
    const directive = f.directives.find((d) => d.name === 'idempotent');
    const key = directive ? resolveValue(directive.args.key, vars) : undefined;
    if (directive && !versionAtLeast(version, '2026-01')) throw new FieldError(`Directive 'idempotent' is not defined in version ${version}`, { code: 'undefinedDirective' });
    if (directive && (typeof key !== 'string' || key === '')) throw new FieldError("Directive 'idempotent' requires a non-empty 'key'", { code: 'BAD_REQUEST' });
    if (!directive && IDEMPOTENT_MUTATIONS.has(f.name) && versionAtLeast(version, '2026-04')) {
      throw new FieldError(`The @idempotent directive is required for ${f.name} from version 2026-04`, { code: 'BAD_REQUEST' });
    }
    const fingerprint = JSON.stringify([f.name, resolveArgs(f.args, vars)]);
    const storeKey = `${f.name}:${String(key)}`;
    const seen = typeof key === 'string' ? shop.idempotency.get(storeKey) : undefined;
    const out = f.alias ?? f.name;
    if (seen) {
      if (seen.fingerprint !== fingerprint) {
        data[out] = {
          inventoryAdjustmentGroup: null,
          userErrors: [{ code: 'IDEMPOTENCY_KEY_PARAMETER_MISMATCH', field: null, message: 'The same idempotency key cannot be used with different operation parameters.' }],
        };
      } else data[out] = seen.data;
      continue;
    }
    const r = execute(root, [f], { vars, fragments: doc.fragments });
    cost += r.cost;
    data[out] = r.data[out];
    if (typeof key === 'string') shop.idempotency.set(storeKey, { fingerprint, data: r.data[out] });
  }
  return { data, cost };
}
