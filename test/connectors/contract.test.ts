import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { classify } from '../../connectors/kit/classify.js';
import { defineConnector, invokerOf, type CallContext, type InputOf, type OutputOf } from '../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';
import { createHash } from 'node:crypto';
import * as genericConnector from '../../connectors/generic/index.js';
import { createGenericConnector } from '../../connectors/generic/index.js';
import * as mlConnector from '../../connectors/mercadolibre/index.js';
import * as shopifyConnector from '../../connectors/shopify/index.js';
import { CONFIG_VARIABLES, loadConfig, unconfiguredProviders } from '../../runtime/config.js';
import { startGenericFake } from '../../simulator/fakes/generic.js';
import { startMercadoLibreFake } from '../../simulator/fakes/mercadolibre.js';
import { signOAuthQuery } from '../../simulator/fakes/shopify.js';
import { generateTestPki, hasOpenssl } from '../../simulator/fakes/tls.js';
import { ctxOf, playBrowser, type ProviderUnderTest } from './contract/adapter.js';
import { genericAdapter } from './contract/generic.js';
import { mercadolibreAdapter } from './contract/mercadolibre.js';
import { shopifyAdapter } from './contract/shopify.js';

const ctx = (): CallContext => ({ signal: new AbortController().signal, idempotencyKey: 'probe/1@1#0' });

const crm = defineConnector({
  id: 'crm',
  auth: 'oauth2',
  calls: {
    getContact: async (creds, input: { id: string }) => ({ id: input.id, token: creds.accessToken }),
    failing: async () => {
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    },
    declined: async () => {
      throw new ConnectorError('CARD_DECLINED', 'insufficient funds', { retryable: false });
    },
  },
  mapping: { contact: { fromProvider: (c: { id: string }) => ({ externalId: c.id }) } },
  classify: (err) => classify(err, { context: 'crm' }),
});

describe('the connector contract', () => {
  it('keeps each call’s own types, and ties credentials to the authentication pattern', () => {
    expectTypeOf<InputOf<typeof crm, 'getContact'>>().toEqualTypeOf<{ id: string }>();
    expectTypeOf<OutputOf<typeof crm, 'getContact'>>().toEqualTypeOf<{ id: string; token: string }>();
    // @ts-expect-error an api_key credential is not an oauth2 one
    invokerOf(crm, async () => ({ apiKey: 'k' }));
    // @ts-expect-error oauth2 credentials have no apiKey
    defineConnector({ id: 'bad', auth: 'oauth2', calls: { x: async (creds) => creds.apiKey }, mapping: {}, classify });
  });

  it('defineConnector checks the id and that there is a call, and freezes the module', () => {
    expect(() => defineConnector({ id: 'Shop Ify', auth: 'api_key', calls: { x: async () => 1 }, mapping: {}, classify })).toThrow(/lowercase/);
    expect(() => defineConnector({ id: 'empty', auth: 'api_key', calls: {}, mapping: {}, classify })).toThrow(/no calls/);
    expect(Object.isFrozen(crm)).toBe(true);
  });

  it('invokerOf: calls with the account’s credentials; every failure leaves as a ConnectorError through the provider’s classify', async () => {
    const invoke = invokerOf(crm, async () => ({ accessToken: 'at-1' }));
    expect(await invoke('getContact', { id: 'c9' }, ctx())).toEqual({ id: 'c9', token: 'at-1' });
    await expect(invoke('failing', {}, ctx())).rejects.toMatchObject({ name: 'ConnectorError', code: ConnectorCode.Network, retryable: true, message: 'crm: ECONNRESET: socket hang up' });
    await expect(invoke('declined', {}, ctx())).rejects.toMatchObject({ code: 'CARD_DECLINED', retryable: false });
    await expect(invoke('toString', {}, ctx())).rejects.toMatchObject({ code: ConnectorCode.Validation, retryable: false });
  });

  it('invokerOf: a provider classify that throws falls back to the kit’s classification', async () => {
    const broken = defineConnector({
      id: 'broken',
      auth: 'api_key',
      calls: { get: async () => Promise.reject(Object.assign(new Error('reset'), { code: 'ECONNRESET' })) },
      mapping: {},
      classify: () => {
        throw new Error('classify bug');
      },
    });
    await expect(invokerOf(broken, async () => ({ apiKey: 'k' }))('get', {}, ctx())).rejects.toMatchObject({ code: ConnectorCode.Network, retryable: true });
  });
});

// ------------------------------------------------------------------------------------------------
// The provider contract suite: the same cases against every provider and its local fake server
// (per-provider adapters in ./contract/). The generic connector's four authentication patterns
// follow in their own block.
// ------------------------------------------------------------------------------------------------

const providers: ProviderUnderTest[] = [shopifyAdapter(), mercadolibreAdapter(), genericAdapter()];

/** What every classified failure must look like for the runtime. */
function expectFailure(err: unknown, code: string, retryable: boolean): ConnectorError {
  expect(err).toBeInstanceOf(ConnectorError);
  expect(err).toMatchObject({ code, retryable });
  return err as ConnectorError;
}

describe.each(providers.map((p) => [p.name, p] as const))('the provider contract: %s', (_name, p) => {
  beforeAll(() => p.setup(), 30_000);
  afterAll(() => p.teardown());
  afterEach(() => p.clearFaults());

  it.runIf(p.oauth !== undefined)('authorize + callback + code exchange (the browser played by the test); a tampered callback is refused', async () => {
    const ok = await p.oauth!.connect();
    expect(ok.callbackOk).toBe(true);
    await expect(p.probe(ok.creds!)).resolves.toBeDefined();
    const tampered = await p.oauth!.connect({ tamper: (q) => q.set('state', 'forged') });
    expect(tampered.callbackOk).toBe(false);
  });

  it.runIf(p.oauth !== undefined)('an expiring token: the dead access token is UNAUTHORIZED (retryable), the refresh rotates, the old refresh token per the provider’s rule', async () => {
    const { creds } = await p.oauth!.connect();
    p.oauth!.expireAccess();
    expectFailure(await p.probe(creds!).catch((e: unknown) => e), ConnectorCode.Unauthorized, true);
    const next = await p.oauth!.refresh(creds!);
    expect(next.refreshToken).not.toBe(creds!.refreshToken);
    const again = await p.oauth!.refresh(creds!).catch((e: unknown) => e);
    if (p.oauth!.refreshKind === 'single-use') {
      expectFailure(again, ConnectorCode.ReauthorizationRequired, false);
      await expect(p.probe(next)).resolves.toBeDefined();
    } else {
      // Shopify's grace: the old refresh token works until its replacement is first used
      expect(again).not.toBeInstanceOf(Error);
      await expect(p.probe(again as Record<string, unknown>)).resolves.toBeDefined();
      expectFailure(await p.oauth!.refresh(creds!).catch((e: unknown) => e), ConnectorCode.ReauthorizationRequired, false);
    }
  });

  it('paginates to the end over more than one page', async () => {
    const creds = await p.credentials();
    const { keys, expected, pages } = await p.listAll(creds);
    expect(pages).toBeGreaterThan(1);
    expect([...keys].sort()).toEqual([...expected].sort());
  });

  it('writes with compare-and-set; a stale expectation is a terminal CONFLICT and changes nothing', async () => {
    const creds = await p.credentials();
    const r = await p.casWrite(creds);
    expect(r.after).toBe(r.expectedAfter);
    expectFailure(r.stale, ConnectorCode.Conflict, false);
    expect(r.afterStale).toBe(r.expectedAfter);
  });

  it('throttling answers are RATE_LIMITED, retryable, with retryAfterMs', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    for (const t of await p.throttled(creds)) {
      const e = expectFailure(t.error, ConnectorCode.RateLimited, true);
      expect(e.retryAfterMs, t.what).toBeGreaterThan(0);
      if (t.expectRetryAfterMs !== undefined) expect(Math.abs(e.retryAfterMs! - t.expectRetryAfterMs), `${t.what}: ${e.retryAfterMs}`).toBeLessThanOrEqual(t.expectRetryAfterMs * 0.25 + 100);
    }
  });

  it('webhooks: a real delivery verifies and parses; bad signatures and foreign senders are refused', async () => {
    const w = await p.webhook();
    expect(w.webhooks.verify(w.good, w.secret, Date.now())).toEqual({ ok: true });
    expect(w.webhooks.parse(w.good)[0]).toMatchObject(w.expect);
    expect(w.bad.length).toBeGreaterThan(0);
    for (const bad of w.bad) expect(w.webhooks.verify(bad, w.secret, Date.now()).ok).toBe(false);
  });

  it('error answers: 5xx retryable (with Retry-After), a missing record NOT_FOUND (terminal)', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    expectFailure(await p.readMissing(creds).catch((x: unknown) => x), ConnectorCode.NotFound, false);
    p.fail(503, 7);
    const e = expectFailure(await p.probe(creds).catch((x: unknown) => x), ConnectorCode.Unavailable, true);
    expect(e.retryAfterMs).toBe(7000);
    p.fail(500);
    expectFailure(await p.probe(creds).catch((x: unknown) => x), ConnectorCode.Unavailable, true);
  });

  it('a hang is cut by the caller’s signal and classified TIMEOUT (retryable)', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    p.hang();
    const started = Date.now();
    expectFailure(await p.probe(creds, AbortSignal.timeout(300)).catch((x: unknown) => x), ConnectorCode.Timeout, true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a revoked grant ends REAUTHORIZATION_REQUIRED (after the refresh it allows, if any)', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    p.revoke();
    let err = await p.probe(creds).catch((x: unknown) => x);
    if (err instanceof ConnectorError && err.code === ConnectorCode.Unauthorized && p.recover) err = await p.recover(creds).catch((x: unknown) => x);
    expectFailure(err, ConnectorCode.ReauthorizationRequired, false);
  });
});

// ------------------------------------------------------------------------------------------------
// Provider specifics the shared cases do not reach.
// ------------------------------------------------------------------------------------------------

describe('shopify specifics', () => {
  const p = shopifyAdapter();
  beforeAll(() => p.setup(), 30_000);
  afterAll(() => p.teardown());

  it('the callback check refuses a bad hmac, an old timestamp, a shop outside myshopify.com; the signature is over the sorted remaining parameters', async () => {
    const secret = p.app().apiSecret;
    const params = { code: 'c0de', host: 'aG9zdA', shop: 'contract.myshopify.com', state: 'st', timestamp: String(Math.floor(Date.now() / 1000)) };
    const q = new URLSearchParams({ ...params, hmac: signOAuthQuery(params, secret) });
    expect(shopifyConnector.verifyCallback(q, secret, Date.now())).toMatchObject({ ok: true, shop: 'contract.myshopify.com', code: 'c0de', state: 'st' });
    expect(shopifyConnector.verifyCallback(q, 'other-secret', Date.now())).toMatchObject({ ok: false, reason: 'hmac does not match' });
    expect(shopifyConnector.verifyCallback(q, secret, Date.now() + 10 * 60_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/timestamp/) });
    const evil = { ...params, shop: 'evil.example.com' };
    expect(shopifyConnector.verifyCallback(new URLSearchParams({ ...evil, hmac: signOAuthQuery(evil, secret) }), secret, Date.now())).toMatchObject({ ok: false, reason: expect.stringMatching(/myshopify/) });
    expect(shopifyConnector.authorizeUrl(p.app(), { shop: 'contract.myshopify.com', scopes: ['read_products'], redirectUri: 'https://x/cb', state: 's' })).not.toContain('per-user');
  });

  it('the code exchange asks for an expiring offline token; a used code is VALIDATION', async () => {
    const fake = p.fake();
    const ok = await p.oauth!.connect();
    expect(ok.creds).toMatchObject({ refreshToken: expect.stringMatching(/^shprt_/), expiresAt: expect.any(String) });
    expect(Date.parse(String(ok.creds!.expiresAt)) - Date.now()).toBeGreaterThan(3_500_000);
    const reused = await shopifyConnector.exchangeCode(p.app(), { shop: 'contract.myshopify.com', code: 'never-issued', signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
    expect(reused).toMatchObject({ code: ConnectorCode.Validation, retryable: false, status: 400 });
    expect(fake.state.tokens.refresh.size).toBeGreaterThan(0);
  });

  it('every answer reports its cost and throttle status to the caller (the budget paces on it)', async () => {
    const seen: unknown[] = [];
    const creds = await p.credentials();
    const r = await shopifyConnector.listLocations({ ...p.settings(), onCost: (c) => seen.push(c) }, creds as never, {}, ctxOf());
    expect(r.cost).toMatchObject({ requestedQueryCost: expect.any(Number), actualQueryCost: expect.any(Number), throttleStatus: { maximumAvailable: 2000, restoreRate: 100 } });
    expect(seen).toEqual([r.cost]);
    expect(shopifyConnector.throttleWaitMs({ requestedQueryCost: 250, actualQueryCost: null, throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 50, restoreRate: 100 } })).toBe(2000);
  });

  it('a retried inventorySetQuantities carries the same @idempotent key and is answered the first answer, applied once', async () => {
    const creds = await p.credentials();
    const item = p.fake().control.seed('contract.myshopify.com', [{ sku: 'IDEM-1', quantity: 10 }])[0]!;
    const ctx = ctxOf(undefined, 'integration/shop-1@4#2');
    const input = { quantities: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, quantity: 4, changeFromQuantity: 10 }] };
    const first = await shopifyConnector.setQuantities(p.settings(), creds as never, input, ctx);
    const retry = await shopifyConnector.setQuantities(p.settings(), creds as never, input, ctx);
    expect(retry.adjustmentGroupId).toBe(first.adjustmentGroupId);
    expect(p.fake().control.level('contract.myshopify.com', 'IDEM-1')!.available).toBe(4);
  });

  it('before 2026-01 the compare-and-set is compareQuantity (a stale one is a CONFLICT too)', async () => {
    const creds = await p.credentials();
    const item = p.fake().control.seed('contract.myshopify.com', [{ sku: 'LEGACY-1', quantity: 10 }])[0]!;
    const legacy = { ...p.settings(), apiVersion: '2025-10' };
    await shopifyConnector.setQuantities(legacy, creds as never, { quantities: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, quantity: 6, changeFromQuantity: 10 }] }, ctxOf());
    expect(p.fake().control.level('contract.myshopify.com', 'LEGACY-1')!.available).toBe(6);
    const stale = await shopifyConnector
      .setQuantities(legacy, creds as never, { quantities: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, quantity: 1, changeFromQuantity: 10 }] }, ctxOf())
      .catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: ConnectorCode.Conflict, retryable: false });
  });

  it('adjusts quantities and registers a webhook subscription', async () => {
    const creds = await p.credentials();
    const item = p.fake().control.seed('contract.myshopify.com', [{ sku: 'ADJ-1', quantity: 10 }])[0]!;
    const r = await shopifyConnector.adjustQuantities(p.settings(), creds as never, { reason: 'correction', changes: [{ inventoryItemId: item.inventoryItemId, locationId: item.locationId, delta: -3 }] }, ctxOf());
    expect(r.changes.find((c) => c.name === 'available')).toMatchObject({ delta: -3, quantityAfterChange: 7 });
    const sub = await shopifyConnector.createWebhookSubscription(p.settings(), creds as never, { topic: 'INVENTORY_LEVELS_UPDATE', callbackUrl: 'https://concord.test/api/integrations/shopify/webhook' }, ctxOf());
    expect(sub).toMatchObject({ id: expect.stringMatching(/^gid:\/\/shopify\/WebhookSubscription\//), topic: 'INVENTORY_LEVELS_UPDATE' });
    const dup = await shopifyConnector.createWebhookSubscription(p.settings(), creds as never, { topic: 'INVENTORY_LEVELS_UPDATE', callbackUrl: 'https://concord.test/api/integrations/shopify/webhook' }, ctxOf()).catch((e: unknown) => e);
    expect(dup).toMatchObject({ code: ConnectorCode.Validation });
  });

  it('maps a variant and its level to our record', async () => {
    const creds = await p.credentials();
    const [item] = p.fake().control.seed('contract.myshopify.com', [{ sku: 'MAP-1', quantity: 12 }]);
    const page = await shopifyConnector.listVariants(p.settings(), creds as never, { locationId: item!.locationId, query: 'sku:MAP-1' }, ctxOf());
    expect(page.variants.map(shopifyConnector.variantToRecord)).toEqual([
      { sku: 'MAP-1', stock: 12, externalIds: { inventoryItemId: item!.inventoryItemId, locationId: item!.locationId, variantId: item!.variantId, productId: item!.productId }, updatedAt: expect.any(String) },
    ]);
  });
});

describe('mercadolibre specifics', () => {
  const p = mercadolibreAdapter();
  beforeAll(() => p.setup(), 30_000);
  afterAll(() => p.teardown());

  it('the authorization URL: the country’s domain, PKCE S256, the override', () => {
    const verifier = mlConnector.pkceVerifier();
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    const url = new URL(mlConnector.authorizationUrl({ clientId: 'app', clientSecret: 's' }, { redirectUri: 'https://x/cb', state: 's1', codeChallenge: mlConnector.pkceChallenge(verifier), siteId: 'MLB' }));
    expect(url.origin).toBe('https://auth.mercadolivre.com.br');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toBe(createHash('sha256').update(verifier).digest('base64url'));
    expect(new URL(mlConnector.authorizationUrl({ clientId: 'app', clientSecret: 's', authBaseUrl: 'http://127.0.0.1:9/' }, { redirectUri: 'r', state: 's', codeChallenge: 'c' })).origin).toBe('http://127.0.0.1:9');
  });

  it('a wrong PKCE verifier is refused at the exchange (REAUTHORIZATION_REQUIRED: start over)', async () => {
    const callback = await playBrowser(mlConnector.authorizationUrl(p.app(), { redirectUri: 'https://concord.test/api/integrations/mercadolibre/callback', state: 's', codeChallenge: mlConnector.pkceChallenge('the-right-verifier-the-right-verifier-the-right') }));
    const err = await mlConnector
      .exchangeCode(p.app(), { code: callback.searchParams.get('code')!, redirectUri: 'https://concord.test/api/integrations/mercadolibre/callback', codeVerifier: 'another-verifier-another-verifier-another-ver', signal: AbortSignal.timeout(5_000) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ConnectorCode.ReauthorizationRequired, retryable: false });
  });

  it('refresh resolves only after the caller persisted the new grant; a failed persist is REAUTHORIZATION_REQUIRED, and the old token is spent', async () => {
    const creds = await p.credentials();
    const order: string[] = [];
    const grant = await mlConnector.refreshGrant(p.app(), {
      refreshToken: String(creds.refreshToken),
      persist: async (next) => {
        order.push(`persist ${next.refreshToken}`);
      },
      signal: AbortSignal.timeout(5_000),
    });
    order.push(`resolved ${grant.refreshToken}`);
    expect(order).toEqual([`persist ${grant.refreshToken}`, `resolved ${grant.refreshToken}`]);
    const lost = await mlConnector
      .refreshGrant(p.app(), { refreshToken: grant.refreshToken, persist: () => Promise.reject(new Error('db down')), signal: AbortSignal.timeout(5_000) })
      .catch((e: unknown) => e);
    expect(lost).toMatchObject({ code: ConnectorCode.ReauthorizationRequired, retryable: false });
    const again = await mlConnector.refreshGrant(p.app(), { refreshToken: grant.refreshToken, persist: async () => undefined, signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
    expect(again).toMatchObject({ code: ConnectorCode.ReauthorizationRequired });
  });

  it('past 1,000 items the listing scans with scroll_id; multiget asks 20 ids a call', async () => {
    const creds = await p.credentials();
    const fake = p.fake();
    fake.control.seed(146322322, Array.from({ length: 1_010 }, (_, i) => ({ sku: `BULK-${i}`, quantity: 1, status: 'closed' as const })));
    const ids: string[] = [];
    for await (const page of mlConnector.allItemIds(p.settings(), creds as never, { limit: 50, status: 'closed' }, ctxOf())) ids.push(...page);
    expect(new Set(ids).size).toBe(1_010);
    expect(fake.state.calls.some((c) => c.path.endsWith('/items/search'))).toBe(true);
    const before = fake.state.calls.filter((c) => c.path === '/items').length;
    const { items } = await mlConnector.multiget(p.settings(), creds as never, { ids: ids.slice(0, 45), attributes: ['id', 'available_quantity', 'seller_custom_field', 'variations'] }, ctxOf());
    expect(items).toHaveLength(45);
    expect(fake.state.calls.filter((c) => c.path === '/items').length - before).toBe(3);
    await expect(mlConnector.searchItems(p.settings(), creds as never, { offset: 990, limit: 50 }, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.Validation });
  });

  it('a validation error keeps its causes; a 404 is NOT_FOUND', async () => {
    const creds = await p.credentials();
    const [listing] = p.fake().control.seed(146322322, [{ sku: 'VAL-1', quantity: 3 }]);
    const err = await mlConnector.mlRequest(p.settings(), creds as never, 'PUT', `/items/${listing!.itemId}`, { body: { available_quantity: -1 }, signal: AbortSignal.timeout(5_000) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ConnectorCode.Validation, retryable: false, status: 400, causes: [{ code: 'item.available_quantity.invalid', type: 'error' }] });
    await expect(mlConnector.getItem(p.settings(), creds as never, { itemId: 'MLA404' }, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.NotFound, retryable: false });
  });

  it('maps items and variations: SKU from seller_custom_field, else the SELLER_SKU attribute', () => {
    expect(
      mlConnector.itemToRecords({
        id: 'MLA1',
        available_quantity: 9,
        last_updated: '2026-12-01T00:00:00.000Z',
        variations: [
          { id: 11, available_quantity: 4, seller_custom_field: 'V-RED' },
          { id: 12, available_quantity: 5, seller_custom_field: null, attributes: [{ id: 'SELLER_SKU', value_name: 'V-BLUE' }] },
          { id: 13, available_quantity: 0 },
        ],
      }),
    ).toEqual([
      { sku: 'V-RED', stock: 4, externalIds: { itemId: 'MLA1', variationId: 11 }, updatedAt: '2026-12-01T00:00:00.000Z' },
      { sku: 'V-BLUE', stock: 5, externalIds: { itemId: 'MLA1', variationId: 12 }, updatedAt: '2026-12-01T00:00:00.000Z' },
    ]);
    expect(mlConnector.stockBody({ id: 'MLA1', available_quantity: 9, variations: [{ id: 11, available_quantity: 4 }, { id: 12, available_quantity: 5 }] }, 2, 12)).toEqual({ variations: [{ id: 11 }, { id: 12, available_quantity: 2 }] });
  });
});

describe('the generic connector: each authentication pattern', () => {
  it('API key in a header or in the query (name configurable); a revoked key is REAUTHORIZATION_REQUIRED', async () => {
    const fake = await startGenericFake({ auth: { apiKey: { keys: ['k-1'], header: 'x-partner-key', query: 'api_key' } } });
    try {
      const inHeader = createGenericConnector({ baseUrl: `${fake.url}/v1`, auth: { pattern: 'api_key', in: 'header', name: 'x-partner-key' } });
      const inQuery = createGenericConnector({ baseUrl: `${fake.url}/v1`, auth: { pattern: 'api_key', in: 'query', name: 'api_key' } });
      expect((await inHeader.calls.request({ apiKey: 'k-1' }, { path: '/whoami' }, ctxOf())).body).toMatchObject({ method: 'key' });
      expect((await inQuery.calls.request({ apiKey: 'k-1' }, { path: '/whoami' }, ctxOf())).body).toMatchObject({ method: 'key' });
      fake.control.revokeKey('k-1');
      await expect(inHeader.calls.request({ apiKey: 'k-1' }, { path: '/whoami' }, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.ReauthorizationRequired, status: 401 });
    } finally {
      await fake.close();
    }
  });

  it('client credentials: one token request for many calls, a fresh one after the server expired it', async () => {
    const fake = await startGenericFake({ auth: { clientCredentials: { clients: [{ id: 'svc', secret: 'svc-secret', scopes: ['read'] }] } } });
    try {
      const c = createGenericConnector({ baseUrl: `${fake.url}/v1`, auth: { pattern: 'client_credentials', tokenUrl: `${fake.url}/oauth/token` } });
      const creds = { clientId: 'svc', clientSecret: 'svc-secret', scopes: ['read'] };
      await Promise.all([1, 2, 3].map(() => c.calls.request(creds, { path: '/whoami' }, ctxOf())));
      expect(fake.state.tokens.size).toBe(1);
      fake.control.expireTokens();
      expect((await c.calls.request(creds, { path: '/whoami' }, ctxOf())).body).toMatchObject({ caller: 'client:svc' });
      expect(fake.state.tokens.size).toBe(2);
      await expect(c.calls.request({ ...creds, clientSecret: 'wrong' }, { path: '/whoami' }, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.ReauthorizationRequired });
    } finally {
      await fake.close();
    }
  });

  it('authorization code with refresh (RFC 6749, PKCE), against a provider’s standard OAuth endpoints', async () => {
    const ml = await startMercadoLibreFake({ clientId: '777', clientSecret: 'gen-secret' });
    try {
      const auth = { pattern: 'oauth2' as const, authorizeUrl: `${ml.url}/authorization`, tokenUrl: `${ml.url}/oauth/token`, clientId: '777', clientSecret: 'gen-secret', clientAuth: 'body' as const };
      const c = createGenericConnector({ baseUrl: ml.url, auth });
      const verifier = mlConnector.pkceVerifier();
      const callback = await playBrowser(genericConnector.authorizationUrl(auth, { redirectUri: 'https://concord.test/cb', state: 'st-g', codeChallenge: mlConnector.pkceChallenge(verifier) }));
      expect(callback.searchParams.get('state')).toBe('st-g');
      const grant = await genericConnector.exchangeCode({}, auth, { code: callback.searchParams.get('code')!, redirectUri: 'https://concord.test/cb', codeVerifier: verifier, signal: AbortSignal.timeout(5_000) });
      expect((await c.calls.request({ accessToken: grant.accessToken, refreshToken: grant.refreshToken }, { path: '/users/me' }, ctxOf())).body).toMatchObject({ id: 146322322 });
      ml.control.expireTokens();
      await expect(c.calls.request({ accessToken: grant.accessToken, refreshToken: grant.refreshToken }, { path: '/users/me' }, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.Unauthorized, retryable: true });
      const next = await genericConnector.refreshGrant({}, auth, { refreshToken: grant.refreshToken!, signal: AbortSignal.timeout(5_000) });
      expect((await c.calls.request({ accessToken: next.accessToken }, { path: '/users/me' }, ctxOf())).status).toBe(200);
      await expect(genericConnector.refreshGrant({}, auth, { refreshToken: grant.refreshToken!, signal: AbortSignal.timeout(5_000) })).rejects.toMatchObject({ code: ConnectorCode.ReauthorizationRequired });
    } finally {
      await ml.close();
    }
  });

  it.runIf(hasOpenssl())('certificate: mutual TLS with the client certificate and key, the CA from the caller; a certificate of another CA never gets in', async () => {
    const pki = generateTestPki();
    const fake = await startGenericFake({ auth: { mtls: true }, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } });
    try {
      expect(fake.url).toMatch(/^https:/);
      const c = createGenericConnector({ baseUrl: fake.url, auth: { pattern: 'certificate' }, healthCheck: { path: '/health', expectStatus: 200 } });
      const creds = { certificatePem: pki.client.cert, privateKeyPem: pki.client.key, caPem: pki.ca.cert };
      expect((await c.calls.request(creds, { path: '/v1/whoami' }, ctxOf())).body).toMatchObject({ caller: 'cert:concord-client', method: 'cert' });
      expect(await c.calls.health(creds, {}, ctxOf())).toMatchObject({ ok: true, status: 200 });
      const rogue = await c.calls.request({ certificatePem: pki.rogue.cert, privateKeyPem: pki.rogue.key, caPem: pki.ca.cert }, { path: '/v1/whoami' }, ctxOf()).catch((e: unknown) => e);
      expect(rogue).toBeInstanceOf(ConnectorError);
      expect(fake.state.calls.filter((x) => x.path === '/v1/whoami')).toHaveLength(1);
      // without our CA the server's certificate is not trusted
      const untrusted = await c.calls.request({ certificatePem: pki.client.cert, privateKeyPem: pki.client.key }, { path: '/v1/whoami' }, ctxOf()).catch((e: unknown) => e);
      expect(untrusted).toBeInstanceOf(ConnectorError);
    } finally {
      await fake.close();
    }
  });

  it('the configured health check: the expected status is ok, another is not, a dead server throws NETWORK', async () => {
    const fake = await startGenericFake({ auth: { apiKey: { keys: ['k'] } } });
    const root = createGenericConnector({ baseUrl: fake.url, auth: { pattern: 'api_key', in: 'header', name: 'x-api-key' }, healthCheck: { path: '/health', expectStatus: 200 } });
    expect(await root.calls.health({ apiKey: 'k' }, {}, ctxOf())).toMatchObject({ ok: true, status: 200 });
    fake.control.setHealth({ status: 503 });
    expect(await root.calls.health({ apiKey: 'k' }, {}, ctxOf())).toMatchObject({ ok: false, status: 503 });
    await fake.close();
    await expect(root.calls.health({ apiKey: 'k' }, {}, ctxOf())).rejects.toMatchObject({ code: ConnectorCode.Network, retryable: true });
  });
});

describe('provider configuration (runtime/config.ts)', () => {
  it('reads the providers’ variables with defaults, and names the missing ones of an unconfigured provider', () => {
    const none = loadConfig({ PORT: '3100' });
    expect(none.providers).toMatchObject({ publicBaseUrl: 'http://localhost:3100', shopify: { apiVersion: '2026-04', shopUrlTemplate: 'https://{shop}' }, mercadolibre: { apiBaseUrl: 'https://api.mercadolibre.com' } });
    expect(unconfiguredProviders(none.providers)).toEqual([
      { provider: 'shopify', missing: ['SHOPIFY_API_KEY', 'SHOPIFY_API_SECRET'] },
      { provider: 'mercadolibre', missing: ['ML_CLIENT_ID', 'ML_CLIENT_SECRET'] },
    ]);
    const set = loadConfig({ SHOPIFY_API_KEY: 'k', SHOPIFY_API_SECRET: 's', ML_CLIENT_ID: '1', ML_CLIENT_SECRET: 'x', SHOPIFY_SHOP_URL_TEMPLATE: 'http://127.0.0.1:4010/{shop}', PUBLIC_BASE_URL: 'https://concord.example.com/' });
    expect(set.providers.shopify.webhookSecret).toBe('s');
    expect(set.providers.publicBaseUrl).toBe('https://concord.example.com');
    expect(unconfiguredProviders(set.providers)).toEqual([]);
    expect(() => loadConfig({ SHOPIFY_SHOP_URL_TEMPLATE: 'http://127.0.0.1:4010/' })).toThrow(/SHOPIFY_SHOP_URL_TEMPLATE/);
    expect(() => loadConfig({ SHOPIFY_API_VERSION: '2026-05' })).toThrow(/SHOPIFY_API_VERSION/);
    for (const name of ['SHOPIFY_API_KEY', 'SHOPIFY_API_SECRET', 'SHOPIFY_WEBHOOK_SECRET', 'SHOPIFY_API_VERSION', 'SHOPIFY_SHOP_URL_TEMPLATE', 'ML_CLIENT_ID', 'ML_CLIENT_SECRET', 'ML_WEBHOOK_SECRET', 'ML_API_BASE_URL', 'ML_AUTH_BASE_URL', 'PUBLIC_BASE_URL']) {
      expect(CONFIG_VARIABLES).toContain(name);
    }
  });
});
