/**
 * A local MercadoLibre: the authorization page and `/oauth/token` (PKCE S256, single-use
 * refresh tokens), items and variations, the seller's item search with its offset cap and scan
 * mode, multiget, the `{message, error, status, cause}` error envelope, notifications out with
 * `/missed_feeds`, a per-client-id request recorder and an optional 429 limit. One server plays
 * both the auth domain (`ML_AUTH_BASE_URL`) and the API (`ML_API_BASE_URL`).
 *
 * @example
 * const ml = await startMercadoLibreFake({ clientId: '123', clientSecret: 's', notificationsUrl: hook });
 * ml.control.seed(146322322, [{ sku: 'SKU-1', quantity: 5 }]);
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { FakeClock, Faults, Listener, RateRecorder, readParams, type FakeServer, type FaultSpec } from './common.js';
import { itemRoutes } from './mercadolibre-items.js';
import { mlError, type MLItem, type MLVariation } from './mercadolibre-types.js';

export { mlError, type MLItem, type MLVariation } from './mercadolibre-types.js';

export interface MercadoLibreFakeOptions {
  port?: number;
  host?: string;
  /** The app's client id, also its numeric `application_id`. */
  clientId?: string;
  clientSecret?: string;
  /** When set, `redirect_uri` must match it exactly, as ML requires of the registered one. */
  redirectUri?: string;
  /** The app's notifications callback URL (where `notify` posts by default). */
  notificationsUrl?: string;
  siteId?: string;
  clock?: 'real' | 'manual';
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** A limit per client id the fake enforces itself (429 with `Retry-After`; null sends none). */
  rateLimit?: { limit: number; windowMs: number; retryAfterSeconds?: number | null };
  /** What a successful PUT /items/{id} answers: the item (core sites) or `{}` (Global Selling). */
  putResponse?: 'item' | 'empty';
  /** ML counts a notification not answered 2xx within this as failed (500 ms). */
  notificationTimeoutMs?: number;
}

export interface MLNotification {
  _id: string;
  resource: string;
  user_id: number;
  topic: string;
  application_id: number;
  attempts: number;
  sent: string;
  received: string;
  actions?: string[];
}

export interface NotificationDelivery {
  notification: MLNotification;
  to: string;
  status: number;
  ok: boolean;
  ms: number;
  error?: string;
}

interface TokenRecord {
  token: string;
  userId: number;
  expiresAt: number;
  dead: boolean;
}

export interface MercadoLibreState {
  items: Map<string, MLItem>;
  users: Map<number, { id: number; nickname: string; site_id: string }>;
  accessTokens: Map<string, TokenRecord>;
  refreshTokens: Map<string, TokenRecord>;
  deliveries: NotificationDelivery[];
  missedFeeds: Array<{ notification: MLNotification; to: string; status: number; ms: number; at: number }>;
  /** Every API call: method, path, status, and the caller's client id and user. */
  calls: Array<{ method: string; path: string; status: number; userId: number | undefined; at: number }>;
}

export type SeedListing =
  | { sku: string; quantity: number; title?: string; price?: number; status?: MLItem['status'] }
  | { title?: string; price?: number; status?: MLItem['status']; variations: Array<{ sku: string; quantity: number; color?: string }> };

export interface MercadoLibreControl {
  readonly clock: FakeClock;
  /** Times of API calls per client id, and per seller as `user:<id>`. */
  readonly rate: RateRecorder;
  readonly faults: Faults;
  advance(ms: number): void;
  expireTokens(userId?: number): void;
  /** The seller the next authorization logs in as (default: the options' or 146322322). */
  loginAs(userId: number): void;
  issueToken(userId: number): { access_token: string; refresh_token: string };
  seed(userId: number, listings: SeedListing[]): Array<{ itemId: string; variationIds: number[] }>;
  /** Stock of a SKU (item or variation) of a seller. */
  stock(userId: number, sku: string): number | undefined;
  /** A seller edit on the site: sets the stock; notifies `items` unless `notify: false`. */
  setStock(userId: number, sku: string, quantity: number, o?: { notify?: boolean; to?: string }): Promise<NotificationDelivery | undefined>;
  /** A sale: stock -= n, sold += n; notifies `items` unless `notify: false`. */
  sell(userId: number, sku: string, n: number, o?: { notify?: boolean; to?: string }): Promise<NotificationDelivery | undefined>;
  notify(topic: string, resource: string, userId: number, o?: { to?: string; id?: string; attempts?: number; actions?: string[] }): Promise<NotificationDelivery>;
  /** Sends a notification again, as ML's retries do: same `_id`, attempts + 1. */
  redeliver(d: NotificationDelivery): Promise<NotificationDelivery>;
  /** The seller revokes the app (or changes password): tokens 401, refresh invalid_grant. */
  revoke(userId: number): void;
  fail(spec: FaultSpec & { status: number; retryAfterSeconds?: number }): void;
  /** The next `count` calls answer 429 with the ML envelope and this `Retry-After`. */
  throttle(spec: FaultSpec & { retryAfterSeconds?: number }): void;
  hang(spec?: FaultSpec): void;
  clearFaults(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  setRateLimit(limit: MercadoLibreFakeOptions['rateLimit']): void;
}

export type MercadoLibreFake = FakeServer<MercadoLibreState, MercadoLibreControl>;

const INVALID_TOKEN = { message: 'invalid_token', error: 'not_found', status: 401, cause: [] };
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'Error validating grant. Your authorization code or refresh token may be expired or it was already used',
  status: 400,
  cause: [],
};


export async function startMercadoLibreFake(options: MercadoLibreFakeOptions = {}): Promise<MercadoLibreFake> {
  const clientId = options.clientId ?? '5503910054141466';
  const clientSecret = options.clientSecret ?? 'fake-ml-client-secret';
  const siteId = options.siteId ?? 'MLA';
  const accessTtl = (options.accessTokenTtlSeconds ?? 21600) * 1000;
  const refreshTtl = (options.refreshTokenTtlSeconds ?? 180 * 24 * 3600) * 1000;
  const notificationTimeout = options.notificationTimeoutMs ?? 500;
  const clock = new FakeClock(options.clock);
  const rate = new RateRecorder();
  const faults = new Faults();
  let rateLimit = options.rateLimit;
  const outgoing = new AbortController();
  const pending = new Set<Promise<unknown>>();
  let loginUser = 146322322;
  let itemCounter = 1_100_000_000;
  let variationCounter = 170_000_000_000;

  const state: MercadoLibreState = { items: new Map(), users: new Map(), accessTokens: new Map(), refreshTokens: new Map(), deliveries: [], missedFeeds: [], calls: [] };
  const codes = new Map<string, { userId: number; redirectUri: string; challenge?: string; method?: string; expiresAt: number; used: boolean }>();

  const user = (id: number) => {
    let u = state.users.get(id);
    if (!u) state.users.set(id, (u = { id, nickname: `TESTUSER${id}`, site_id: siteId }));
    return u;
  };

  const stamp = () => {
    const d = new Date(clock.now());
    return `${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}${String(d.getUTCHours()).padStart(2, '0')}`;
  };

  const issue = (userId: number) => {
    const access: TokenRecord = { token: `APP_USR-${clientId}-${stamp()}-${randomBytes(16).toString('hex')}-${userId}`, userId, expiresAt: clock.now() + accessTtl, dead: false };
    const refresh: TokenRecord = { token: `TG-${randomBytes(12).toString('hex')}-${userId}`, userId, expiresAt: clock.now() + refreshTtl, dead: false };
    state.accessTokens.set(access.token, access);
    state.refreshTokens.set(refresh.token, refresh);
    // the key order of ML's answer
    return { access_token: access.token, token_type: 'Bearer', expires_in: Math.round(accessTtl / 1000), scope: 'offline_access read write', user_id: userId, refresh_token: refresh.token };
  };

  const findSku = (userId: number, sku: string): { item: MLItem; variation?: MLVariation } | undefined => {
    for (const item of state.items.values()) {
      if (item.seller_id !== userId) continue;
      if (item.seller_custom_field === sku && item.variations.length === 0) return { item };
      const variation = item.variations.find((v) => v.seller_custom_field === sku);
      if (variation) return { item, variation };
    }
    return undefined;
  };

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };

  const send = async (n: MLNotification, to: string): Promise<NotificationDelivery> => {
    const started = performance.now();
    const d: NotificationDelivery = { notification: n, to, status: 0, ok: false, ms: 0 };
    try {
      const res = await fetch(to, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(n),
        signal: AbortSignal.any([outgoing.signal, AbortSignal.timeout(notificationTimeout)]),
      });
      d.status = res.status;
      await res.arrayBuffer();
    } catch (err) {
      d.error = err instanceof Error ? err.message : String(err);
    }
    d.ms = performance.now() - started;
    d.ok = d.status >= 200 && d.status < 300 && d.ms <= notificationTimeout;
    state.deliveries.push(d);
    if (!d.ok) state.missedFeeds.push({ notification: n, to, status: d.status, ms: d.ms, at: clock.now() });
    return d;
  };

  const notify: MercadoLibreControl['notify'] = (topic, resource, userId, o = {}) => {
    const to = o.to ?? options.notificationsUrl;
    if (!to) throw new Error('mercadolibre fake: no notifications URL (options.notificationsUrl or { to })');
    const now = clock.iso();
    const n: MLNotification = { _id: o.id ?? randomUUID(), resource, user_id: userId, topic, application_id: Number(clientId), attempts: o.attempts ?? 1, sent: now, received: now };
    if (o.actions) n.actions = o.actions;
    return track(send(n, to));
  };

  const changed = (item: MLItem, o: { notify?: boolean; to?: string }) => {
    item.last_updated = clock.iso();
    if (o.notify === false || (!o.to && !options.notificationsUrl)) return Promise.resolve(undefined);
    return notify('items', `/items/${item.id}`, item.seller_id, { to: o.to });
  };

  const app = new Hono<{ Variables: { userId: number } }>();
  app.use('*', faults.middleware((status) => mlError(status, status === 429 ? 'Too Many Requests' : 'Internal error')));

  // --- OAuth -----------------------------------------------------------------------------------
  app.get('/authorization', (c) => {
    const q = new URL(c.req.url).searchParams;
    if (q.get('response_type') !== 'code' || q.get('client_id') !== clientId) return c.json(mlError(400, 'invalid client_id or response_type', 'invalid_request'), 400);
    const redirect = q.get('redirect_uri') ?? '';
    if (!redirect || (options.redirectUri !== undefined && redirect !== options.redirectUri)) return c.json(mlError(400, 'redirect_uri does not match the registered one', 'invalid_request'), 400);
    const method = q.get('code_challenge_method') ?? undefined;
    if (q.get('code_challenge') && method !== 'S256' && method !== 'plain') return c.json(mlError(400, 'unsupported code_challenge_method', 'invalid_request'), 400);
    user(loginUser);
    const code = `TG-${randomBytes(12).toString('hex')}-${loginUser}`;
    codes.set(code, { userId: loginUser, redirectUri: redirect, challenge: q.get('code_challenge') ?? undefined, method, expiresAt: clock.now() + 10 * 60_000, used: false });
    const target = new URL(redirect);
    target.searchParams.set('code', code);
    if (q.has('state')) target.searchParams.set('state', q.get('state')!);
    return c.redirect(target.toString(), 302);
  });

  app.post('/oauth/token', async (c) => {
    const inQuery = new URL(c.req.url).searchParams;
    if (inQuery.has('client_secret') || inQuery.has('code') || inQuery.has('refresh_token')) {
      return c.json({ error: 'invalid_request', error_description: 'the parameters must be sent in the request body', status: 400, cause: [] }, 400);
    }
    const p = await readParams(c.req.raw);
    if (p.client_id !== clientId || p.client_secret !== clientSecret) {
      return c.json({ error: 'invalid_client', error_description: 'invalid client_id or client_secret', status: 401, cause: [] }, 401);
    }
    if (p.grant_type === 'authorization_code') {
      const code = codes.get(p.code ?? '');
      if (!code || code.used || code.expiresAt <= clock.now() || code.redirectUri !== p.redirect_uri) return c.json(INVALID_GRANT, 400);
      if (code.challenge) {
        const verifier = p.code_verifier ?? '';
        const derived = code.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
        if (!verifier || derived !== code.challenge) return c.json(INVALID_GRANT, 400);
      }
      code.used = true;
      return c.json(issue(code.userId));
    }
    if (p.grant_type === 'refresh_token') {
      const r = state.refreshTokens.get(p.refresh_token ?? '');
      if (!r || r.dead || r.expiresAt <= clock.now()) return c.json(INVALID_GRANT, 400);
      r.dead = true; // single use
      return c.json(issue(r.userId));
    }
    return c.json({ error: 'unsupported_grant_type', error_description: 'grant_type not supported', status: 400, cause: [] }, 400);
  });

  // --- API ---------------------------------------------------------------------------------------
  const api = new Hono<{ Variables: { userId: number } }>();
  const windowCalls: number[] = [];
  api.use('*', async (c, next) => {
    const now = Date.now();
    rate.record(clientId, now);
    const auth = c.req.header('authorization') ?? '';
    const bearer = /^Bearer (.+)$/i.exec(auth)?.[1];
    const rec = bearer ? state.accessTokens.get(bearer) : undefined;
    if (rec) rate.record(`user:${rec.userId}`, now);
    const log = (status: number) => state.calls.push({ method: c.req.method, path: new URL(c.req.url).pathname, status, userId: rec?.userId, at: now });
    if (rateLimit) {
      while (windowCalls.length > 0 && windowCalls[0]! <= now - rateLimit.windowMs) windowCalls.shift();
      if (windowCalls.length >= rateLimit.limit) {
        log(429);
        const retry = rateLimit.retryAfterSeconds === undefined ? Math.max(1, Math.ceil((windowCalls[0]! + rateLimit.windowMs - now) / 1000)) : rateLimit.retryAfterSeconds;
        if (retry !== null) c.header('retry-after', String(retry));
        return c.json(mlError(429, 'Too Many Requests'), 429);
      }
      windowCalls.push(now);
    }
    if (new URL(c.req.url).searchParams.has('access_token') || !rec || rec.dead || rec.expiresAt <= clock.now()) {
      log(401);
      return c.json(INVALID_TOKEN, 401);
    }
    c.set('userId', rec.userId);
    await next();
    log(c.res.status);
  });

  api.get('/users/me', (c) => c.json(user(c.get('userId'))));

  itemRoutes(api, { items: state.items, clock, putResponse: options.putResponse ?? 'item', nextVariationId: () => ++variationCounter });

  api.get('/missed_feeds', (c) => {
    const q = new URL(c.req.url).searchParams;
    if (q.get('app_id') !== clientId) return c.json(mlError(403, 'app_id does not belong to the caller', 'forbidden'), 403);
    const cutoff = clock.now() - 2 * 24 * 3600 * 1000;
    const topic = q.get('topic');
    const limit = Number(q.get('limit') ?? 10);
    const offset = Number(q.get('offset') ?? 0);
    const list = state.missedFeeds.filter((m) => m.at > cutoff && (!topic || m.notification.topic === topic));
    return c.json({
      messages: list.slice(offset, offset + limit).map((m) => ({
        ...m.notification,
        request: { url: m.to, headers: { 'content-type': 'application/json' }, data: m.notification },
        response: { req_time: Math.round(m.ms), http_code: m.status },
      })),
      total: list.length,
      offset,
      limit,
    });
  });

  app.route('/', api);
  app.all('*', (c) => c.json(mlError(404, `resource ${new URL(c.req.url).pathname} not found`), 404));

  const listener = await Listener.start(app, { port: options.port, host: options.host });
  listener.onDown = () => faults.releaseHanging();

  const control: MercadoLibreControl = {
    clock,
    rate,
    faults,
    advance: (ms) => clock.advance(ms),
    expireTokens(userId) {
      for (const t of state.accessTokens.values()) if (userId === undefined || t.userId === userId) t.expiresAt = clock.now() - 1;
    },
    loginAs(userId) {
      loginUser = userId;
    },
    issueToken(userId) {
      user(userId);
      return issue(userId);
    },
    seed(userId, listings) {
      user(userId);
      const now = clock.iso();
      return listings.map((l) => {
        const id = `${siteId}${++itemCounter}`;
        const item: MLItem = {
          id,
          site_id: siteId,
          title: l.title ?? ('sku' in l ? `Item ${l.sku}` : 'Item with variations'),
          seller_id: userId,
          category_id: `${siteId}3530`,
          price: l.price ?? 1000,
          currency_id: 'ARS',
          available_quantity: 'sku' in l ? l.quantity : 0,
          sold_quantity: 0,
          status: l.status ?? 'active',
          seller_custom_field: 'sku' in l ? l.sku : null,
          date_created: now,
          last_updated: now,
          variations:
            'variations' in l
              ? l.variations.map((v, i) => ({
                  id: ++variationCounter,
                  price: l.price ?? 1000,
                  attribute_combinations: [{ id: 'COLOR', name: 'Color', value_id: null, value_name: v.color ?? `Color ${i + 1}` }],
                  available_quantity: v.quantity,
                  sold_quantity: 0,
                  seller_custom_field: v.sku,
                }))
              : [],
        };
        state.items.set(id, item);
        return { itemId: id, variationIds: item.variations.map((v) => v.id) };
      });
    },
    stock(userId, sku) {
      const f = findSku(userId, sku);
      return f ? (f.variation ?? f.item).available_quantity : undefined;
    },
    setStock(userId, sku, quantity, o = {}) {
      const f = findSku(userId, sku);
      if (!f) throw new Error(`mercadolibre fake: seller ${userId} has no SKU ${sku}`);
      (f.variation ?? f.item).available_quantity = quantity;
      return changed(f.item, o);
    },
    sell(userId, sku, n, o = {}) {
      const f = findSku(userId, sku);
      if (!f) throw new Error(`mercadolibre fake: seller ${userId} has no SKU ${sku}`);
      const target = f.variation ?? f.item;
      if (target.available_quantity < n) throw new Error(`mercadolibre fake: only ${target.available_quantity} of ${sku} left`);
      target.available_quantity -= n;
      target.sold_quantity += n;
      return changed(f.item, o);
    },
    notify,
    redeliver: (d) => track(send({ ...d.notification, attempts: d.notification.attempts + 1, sent: clock.iso() }, d.to)),
    revoke(userId) {
      for (const t of state.accessTokens.values()) if (t.userId === userId) t.dead = true;
      for (const t of state.refreshTokens.values()) if (t.userId === userId) t.dead = true;
    },
    fail: (spec) => faults.fail(spec),
    throttle: (spec) => faults.fail({ ...spec, status: 429, body: mlError(429, 'Too Many Requests') }),
    hang: (spec) => faults.hang(spec),
    clearFaults: () => faults.clear(),
    down: () => listener.down(),
    up: () => listener.up(),
    setRateLimit(limit) {
      rateLimit = limit;
      windowCalls.length = 0;
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

