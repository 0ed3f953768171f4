import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startShopifyFake, type ShopifyFake } from '../../../simulator/fakes/shopify.js';
import { connectError, startReceiver } from './receiver.js';

const SHOP = 'example.myshopify.com';
const KEY = 'test-key';
const SECRET = 'test-secret';

/** The callback check as Concord must do it, written here independently of the fake. */
function callbackHmacValid(query: URLSearchParams, secret: string): boolean {
  const given = query.get('hmac') ?? '';
  const pairs = [...query.entries()].filter(([k]) => k !== 'hmac' && k !== 'signature').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const message = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const want = createHmac('sha256', secret).update(message).digest('hex');
  return given.length === want.length && timingSafeEqual(Buffer.from(given), Buffer.from(want));
}

async function oauth(fake: ShopifyFake, scope = 'read_products,write_inventory,read_locations') {
  const authorize = new URL(`${fake.url}/${SHOP}/admin/oauth/authorize`);
  authorize.search = new URLSearchParams({ client_id: KEY, scope, redirect_uri: 'http://127.0.0.1:9/callback', state: 'nonce-1', 'grant_options[]': '' }).toString();
  const res = await fetch(authorize, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const callback = new URL(res.headers.get('location')!);
  const token = await fetch(`${fake.url}/${SHOP}/admin/oauth/access_token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: KEY, client_secret: SECRET, code: callback.searchParams.get('code'), expiring: 1 }),
  });
  return { callback, status: token.status, body: (await token.json()) as Record<string, unknown> };
}

function gql(fake: ShopifyFake, token: string, query: string, variables: Record<string, unknown> = {}, version = '2026-04') {
  return fetch(`${fake.url}/${SHOP}/admin/api/${version}/graphql.json`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shopify-access-token': token },
    body: JSON.stringify({ query, variables }),
  });
}

async function gqlJson(fake: ShopifyFake, token: string, query: string, variables: Record<string, unknown> = {}, version = '2026-04') {
  const res = await gql(fake, token, query, variables, version);
  return { status: res.status, headers: res.headers, body: (await res.json()) as { data?: any; errors?: any; extensions?: any } }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const refresh = (fake: ShopifyFake, refreshToken: string) =>
  fetch(`${fake.url}/${SHOP}/admin/oauth/access_token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: KEY, client_secret: SECRET, grant_type: 'refresh_token', refresh_token: refreshToken }),
  });

const SET = `mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}`;

describe('Shopify fake', () => {
  let fake: ShopifyFake;
  beforeAll(async () => {
    fake = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET, clock: 'manual' });
  });
  afterAll(() => fake.close());

  describe('OAuth', () => {
    it('redirects with a callback whose hex HMAC verifies independently, and exchanges the code once for an expiring offline token', async () => {
      const { callback, status, body } = await oauth(fake);
      expect(callback.origin + callback.pathname).toBe('http://127.0.0.1:9/callback');
      expect([...callback.searchParams.keys()].sort()).toEqual(['code', 'hmac', 'host', 'shop', 'state', 'timestamp']);
      expect(callback.searchParams.get('shop')).toBe(SHOP);
      expect(callback.searchParams.get('state')).toBe('nonce-1');
      expect(callbackHmacValid(callback.searchParams, SECRET)).toBe(true);
      expect(callbackHmacValid(callback.searchParams, 'another-secret')).toBe(false);
      const tampered = new URLSearchParams(callback.searchParams);
      tampered.set('shop', 'evil.myshopify.com');
      expect(callbackHmacValid(tampered, SECRET)).toBe(false);

      expect(status).toBe(200);
      expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'refresh_token_expires_in', 'scope']);
      expect(body.expires_in).toBe(3600);

      const again = await fetch(`${fake.url}/${SHOP}/admin/oauth/access_token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: KEY, client_secret: SECRET, code: callback.searchParams.get('code'), expiring: 1 }),
      });
      expect(again.status).toBe(400);
    });

    it('expires access tokens by the clock with the real 401 body', async () => {
      const { body } = await oauth(fake);
      const q = '{ shop { myshopifyDomain } }';
      expect((await gqlJson(fake, body.access_token as string, q)).body.data.shop.myshopifyDomain).toBe(SHOP);
      fake.control.advance(3600 * 1000);
      const expired = await gqlJson(fake, body.access_token as string, q);
      expect(expired.status).toBe(401);
      expect(expired.body).toEqual({ errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' });
    });

    it('rotates the refresh token; the old one works until the replacement is first used', async () => {
      const { body } = await oauth(fake);
      const r1 = body.refresh_token as string;
      const first = (await (await refresh(fake, r1)).json()) as Record<string, string>;
      expect(first.refresh_token).not.toBe(r1);
      // a crash before storing the new pair: the old refresh token still works
      const retry = await refresh(fake, r1);
      expect(retry.status).toBe(200);
      const second = (await retry.json()) as Record<string, string>;
      // once the replacement is used, the old token is gone
      expect((await gqlJson(fake, second.access_token!, '{ shop { id } }')).status).toBe(200);
      const late = await refresh(fake, r1);
      expect(late.status).toBe(400);
      expect(((await late.json()) as { error: string }).error).toBe('invalid_grant');
    });

    it('with immediate invalidation, a reused refresh token is invalid_grant', async () => {
      const strict = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET, refreshGrace: 'immediate' });
      try {
        const { body } = await oauth(strict);
        expect((await refresh(strict, body.refresh_token as string)).status).toBe(200);
        const reused = await refresh(strict, body.refresh_token as string);
        expect(reused.status).toBe(400);
        expect(await reused.json()).toMatchObject({ error: 'invalid_grant' });
      } finally {
        await strict.close();
      }
    });

    it('DELETE /admin/api_permissions/current.json: 200 {}; then the token answers 401 and its refresh token invalid_grant; an unknown token is 401', async () => {
      const other = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET });
      try {
        const { body } = await oauth(other);
        const url = `${other.url}/${SHOP}/admin/api_permissions/current.json`;
        expect((await fetch(url, { method: 'DELETE', headers: { 'x-shopify-access-token': 'shpat_unknown' } })).status).toBe(401);
        const res = await fetch(url, { method: 'DELETE', headers: { 'x-shopify-access-token': body.access_token as string } });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({});
        expect((await gqlJson(other, body.access_token as string, '{ shop { id } }')).status).toBe(401);
        const r = await refresh(other, body.refresh_token as string);
        expect(r.status).toBe(400);
        expect(await r.json()).toMatchObject({ error: 'invalid_grant' });
      } finally {
        await other.close();
      }
    });

    it('revoke: tokens answer 401 and refresh answers invalid_grant', async () => {
      const other = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET });
      try {
        const { body } = await oauth(other);
        other.control.revoke(SHOP);
        expect((await gqlJson(other, body.access_token as string, '{ shop { id } }')).status).toBe(401);
        const r = await refresh(other, body.refresh_token as string);
        expect(r.status).toBe(400);
        expect(await r.json()).toMatchObject({ error: 'invalid_grant' });
      } finally {
        await other.close();
      }
    });
  });

  describe('GraphQL Admin API', () => {
    let token: string;
    beforeAll(() => {
      fake.control.seed(
        SHOP,
        Array.from({ length: 7 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 10 + i })),
      );
      token = fake.control.issueToken(SHOP).access_token;
    });

    it('pages products with variants by cursor and answers only the selected fields, with the cost extension', async () => {
      const q = `query Products($after: String) {
        products(first: 3, after: $after) {
          edges { cursor node { id title variants(first: 5) { nodes { sku inventoryItem { id } } } } }
          pageInfo { hasNextPage endCursor }
        }
      }`;
      const skus: string[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const { body } = await gqlJson(fake, token, q, { after });
        pages++;
        const conn = body.data.products;
        for (const e of conn.edges) {
          expect(Object.keys(e.node).sort()).toEqual(['id', 'title', 'variants']);
          expect(e.node.id).toMatch(/^gid:\/\/shopify\/Product\/\d+$/);
          const v = e.node.variants.nodes[0];
          expect(v.inventoryItem.id).toMatch(/^gid:\/\/shopify\/InventoryItem\/\d+$/);
          skus.push(v.sku);
        }
        const cost = body.extensions.cost;
        expect(cost.requestedQueryCost).toBeGreaterThanOrEqual(cost.actualQueryCost);
        expect(cost.throttleStatus).toMatchObject({ maximumAvailable: 2000, restoreRate: 100 });
        if (!conn.pageInfo.hasNextPage) break;
        after = conn.pageInfo.endCursor;
      }
      expect(pages).toBe(3);
      expect(skus).toEqual(Array.from({ length: 7 }, (_, i) => `SKU-${i}`));
    });

    it('reads locations and inventory levels with quantities by name', async () => {
      const { body } = await gqlJson(
        fake,
        token,
        `{ locations(first: 5) { nodes { id name } }
           productVariants(first: 1, query: "sku:SKU-2") { nodes { sku inventoryItem { id inventoryLevels(first: 5) { nodes { location { id } quantities(names: ["available", "on_hand"]) { name quantity } } } } } } }`,
      );
      const loc = body.data.locations.nodes[0].id;
      const lv = body.data.productVariants.nodes[0].inventoryItem.inventoryLevels.nodes[0];
      expect(lv.location.id).toBe(loc);
      expect(lv.quantities).toEqual([
        { name: 'available', quantity: 12 },
        { name: 'on_hand', quantity: 12 },
      ]);
    });

    it('inventorySetQuantities: compare-and-set, changeFromQuantity required from 2026-04, idempotency keys replay the first answer', async () => {
      const [seeded] = fake.control.seed(SHOP, [{ sku: 'CAS-1', quantity: 5 }]);
      const q = (quantity: number, changeFromQuantity: number | null | undefined) => ({
        name: 'available',
        reason: 'correction',
        quantities: [{ inventoryItemId: seeded!.inventoryItemId, locationId: seeded!.locationId, quantity, ...(changeFromQuantity === undefined ? {} : { changeFromQuantity }) }],
      });

      const ok = await gqlJson(fake, token, SET, { input: q(8, 5), key: 'k-1' });
      expect(ok.body.data.inventorySetQuantities.userErrors).toEqual([]);
      expect(ok.body.data.inventorySetQuantities.inventoryAdjustmentGroup.changes).toContainEqual({ name: 'available', delta: 3, quantityAfterChange: 8 });
      expect(fake.control.level(SHOP, 'CAS-1')!.available).toBe(8);

      // the same key again: the original answer, nothing applied twice
      const replay = await gqlJson(fake, token, SET, { input: q(8, 5), key: 'k-1' });
      expect(replay.body.data).toEqual(ok.body.data);
      expect(fake.control.level(SHOP, 'CAS-1')!.available).toBe(8);
      // the same key with other parameters
      const mismatch = await gqlJson(fake, token, SET, { input: q(9, 8), key: 'k-1' });
      expect(mismatch.body.data.inventorySetQuantities.userErrors[0].code).toBe('IDEMPOTENCY_KEY_PARAMETER_MISMATCH');

      // a sale between our read (8) and our write
      await fake.control.sell(SHOP, 'CAS-1', 2, { webhook: false });
      const stale = await gqlJson(fake, token, SET, { input: q(20, 8), key: 'k-2' });
      expect(stale.body.data.inventorySetQuantities.userErrors).toEqual([
        { code: 'CHANGE_FROM_QUANTITY_STALE', field: ['input', 'quantities', 0, 'changeFromQuantity'], message: expect.any(String) },
      ]);
      expect(fake.control.level(SHOP, 'CAS-1')).toEqual({ available: 6, on_hand: 8, committed: 2 });

      // null opts out of the check; leaving it out is an error from 2026-04
      expect((await gqlJson(fake, token, SET, { input: q(20, null), key: 'k-3' })).body.data.inventorySetQuantities.userErrors).toEqual([]);
      const missing = await gqlJson(fake, token, SET, { input: q(21, undefined), key: 'k-4' });
      expect(missing.body.errors[0].message).toMatch(/changeFromQuantity/);
      // and the directive is required from 2026-04, optional in 2026-01
      const noKey = `mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { code } } }`;
      expect((await gqlJson(fake, token, noKey, { input: q(21, 20) })).body.errors[0].message).toMatch(/@idempotent/);
      expect((await gqlJson(fake, token, noKey, { input: q(21, 20) }, '2026-01')).body.data.inventorySetQuantities.userErrors).toEqual([]);
      // before 2026-01: compareQuantity, or an explicit opt-out
      const old = await gqlJson(fake, token, noKey, { input: { ...q(22, undefined), quantities: [{ ...q(22, undefined).quantities[0], compareQuantity: 3 }] } }, '2025-10');
      expect(old.body.data.inventorySetQuantities.userErrors[0].code).toBe('COMPARE_QUANTITY_STALE');
      expect(fake.control.level(SHOP, 'CAS-1')!.available).toBe(21);
    });

    it('inventoryAdjustQuantities applies a delta once per idempotency key', async () => {
      const [s] = fake.control.seed(SHOP, [{ sku: 'ADJ-1', quantity: 10 }]);
      const m = `mutation Adj($input: InventoryAdjustQuantitiesInput!) {
        inventoryAdjustQuantities(input: $input) @idempotent(key: "adj-1") { inventoryAdjustmentGroup { changes(quantityNames: ["available"]) { delta quantityAfterChange } } userErrors { code } }
      }`;
      const input = { name: 'available', reason: 'restock', changes: [{ delta: 4, inventoryItemId: s!.inventoryItemId, locationId: s!.locationId, changeFromQuantity: null }] };
      const a = await gqlJson(fake, token, m, { input });
      const b = await gqlJson(fake, token, m, { input });
      expect(a.body.data).toEqual(b.body.data);
      expect(a.body.data.inventoryAdjustQuantities.inventoryAdjustmentGroup.changes).toEqual([{ delta: 4, quantityAfterChange: 14 }]);
      expect(fake.control.level(SHOP, 'ADJ-1')!.available).toBe(14);
    });

    it('answers MAX_COST_EXCEEDED for a query over 1000 points', async () => {
      const { body } = await gqlJson(fake, token, '{ products(first: 250) { nodes { id variants(first: 5) { nodes { id } } } } }');
      expect(body.errors[0].extensions).toMatchObject({ code: 'MAX_COST_EXCEEDED', maxCost: 1000 });
      expect(body.extensions.cost.actualQueryCost).toBeNull();
    });

    it('refuses a field the token has no scope for', async () => {
      const readOnly = fake.control.issueToken(SHOP, { scope: 'read_products' }).access_token;
      const { body } = await gqlJson(fake, readOnly, SET, { input: { name: 'available', reason: 'correction', quantities: [] }, key: 'x' });
      expect(body.errors[0].extensions.code).toBe('ACCESS_DENIED');
    });
  });

  describe('throttle', () => {
    it('answers THROTTLED with a null actual cost when the bucket is short, and restores points by the clock', async () => {
      const token = fake.control.issueToken(SHOP).access_token;
      fake.control.setAvailablePoints(SHOP, 5);
      const q = '{ products(first: 10) { nodes { id } } }'; // 2 + 10 * 1
      const t = await gqlJson(fake, token, q);
      expect(t.status).toBe(200);
      expect(t.body.errors).toEqual([{ message: 'Throttled', extensions: expect.objectContaining({ code: 'THROTTLED' }) }]);
      expect(t.body.extensions.cost).toEqual({ requestedQueryCost: 12, actualQueryCost: null, throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 5, restoreRate: 100 } });
      fake.control.advance(1000);
      const ok = await gqlJson(fake, token, q);
      expect(ok.body.errors).toBeUndefined();
      expect(ok.body.extensions.cost.throttleStatus.currentlyAvailable).toBe(105 - ok.body.extensions.cost.actualQueryCost);
    });

    it('can answer throttling with HTTP 429 and Retry-After (GraphQL body or REST request limit)', async () => {
      const other = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET, clock: 'manual', throttledStatus: 429, plan: { maximumAvailable: 50, restoreRate: 10 } });
      try {
        const token = other.control.issueToken(SHOP).access_token;
        other.control.seed(SHOP, Array.from({ length: 30 }, (_, i) => ({ sku: `T-${i}`, quantity: 1 })));
        const q = '{ products(first: 30) { nodes { id } } }'; // 32 points
        expect((await gqlJson(other, token, q)).status).toBe(200);
        const t = await gqlJson(other, token, q);
        expect(t.status).toBe(429);
        expect(t.headers.get('retry-after')).toBe('2'); // 14 points short at 10/s
        expect(t.body.errors[0].extensions.code).toBe('THROTTLED');

        other.control.setRequestLimit({ bucket: 3, leakPerSecond: 2 });
        other.control.setPlan(SHOP, 'unlimited');
        const statuses: number[] = [];
        let last: Response | undefined;
        for (let i = 0; i < 4; i++) statuses.push((last = await gql(other, token, '{ shop { id } }')).status);
        expect(statuses).toEqual([200, 200, 200, 429]);
        expect(last!.headers.get('retry-after')).toBe('1');
        expect(await last!.json()).toEqual({ errors: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.' });
        expect(last!.headers.get('x-shopify-shop-api-call-limit')).toBe('3/3');
      } finally {
        await other.close();
      }
    });

    it('records every API call per shop, so tests can check a rate and a burst', async () => {
      const other = await startShopifyFake({ apiKey: KEY, apiSecret: SECRET });
      try {
        const token = other.control.issueToken(SHOP).access_token;
        await Promise.all(Array.from({ length: 12 }, () => gql(other, token, '{ shop { id } }').then((r) => r.arrayBuffer())));
        expect(other.control.rate.count(SHOP)).toBe(12);
        expect(other.control.rate.maxInWindow(SHOP, 1000)).toBe(12);
        expect(other.control.rate.bucketViolation(SHOP, { perSecond: 4, burst: 40 })).toBeNull();
        expect(other.control.rate.bucketViolation(SHOP, { perSecond: 4, burst: 10 })).toMatchObject({ count: 12 });
      } finally {
        await other.close();
      }
    });
  });

  describe('webhooks', () => {
    it('signs the raw body bytes (base64 HMAC-SHA256) with the real headers; corrupt, duplicate and redeliver on demand', async () => {
      const rx = await startReceiver();
      try {
        const payload = { inventory_item_id: 1, location_id: 2, available: 3, note: 'ünïcode' };
        const [d] = await fake.control.sendWebhook(SHOP, 'inventory_levels/update', payload, { to: rx.url, secret: 'whsec' });
        expect(d!.status).toBe(200);
        const got = rx.received[0]!;
        const expected = createHmac('sha256', 'whsec').update(got.raw).digest('base64');
        expect(got.headers['x-shopify-hmac-sha256']).toBe(expected);
        expect(got.headers['x-shopify-topic']).toBe('inventory_levels/update');
        expect(got.headers['x-shopify-shop-domain']).toBe(SHOP);
        for (const h of ['x-shopify-api-version', 'x-shopify-webhook-id', 'x-shopify-triggered-at', 'x-shopify-event-id']) expect(got.headers[h]).toBeTruthy();
        expect(JSON.parse(got.raw.toString('utf8'))).toEqual(payload);

        await fake.control.sendWebhook(SHOP, 'products/update', { id: 1 }, { to: rx.url, secret: 'whsec', corruptSignature: true });
        const bad = rx.received[1]!;
        expect(bad.headers['x-shopify-hmac-sha256']).not.toBe(createHmac('sha256', 'whsec').update(bad.raw).digest('base64'));

        const dups = await fake.control.sendWebhook(SHOP, 'products/update', { id: 2 }, { to: rx.url, secret: 'whsec', duplicate: true, triggeredAt: '2026-01-01T00:00:00.000Z' });
        expect(dups).toHaveLength(2);
        expect(rx.received[2]!.headers['x-shopify-event-id']).toBe(rx.received[3]!.headers['x-shopify-event-id']);
        expect(rx.received[3]!.headers['x-shopify-triggered-at']).toBe('2026-01-01T00:00:00.000Z');

        await fake.control.redeliver(d!);
        expect(rx.received[4]!.headers['x-shopify-webhook-id']).toBe(got.headers['x-shopify-webhook-id']);
        expect(rx.received[4]!.raw.equals(got.raw)).toBe(true);
      } finally {
        await rx.close();
      }
    });

    it('registers subscriptions through GraphQL and sends inventory_levels/update on a sale', async () => {
      const rx = await startReceiver();
      try {
        const token = fake.control.issueToken(SHOP).access_token;
        const create = await gqlJson(
          fake,
          token,
          `mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) { webhookSubscription { id topic uri } userErrors { field message } } }`,
          { topic: 'INVENTORY_LEVELS_UPDATE', sub: { uri: rx.url, format: 'JSON' } },
        );
        expect(create.body.data.webhookSubscriptionCreate.webhookSubscription).toMatchObject({ topic: 'INVENTORY_LEVELS_UPDATE', uri: rx.url });
        const list = await gqlJson(fake, token, '{ webhookSubscriptions(first: 10) { nodes { topic uri } } }');
        expect(list.body.data.webhookSubscriptions.nodes).toContainEqual({ topic: 'INVENTORY_LEVELS_UPDATE', uri: rx.url });

        fake.control.seed(SHOP, [{ sku: 'HOOK-1', quantity: 4 }]);
        const [d] = await fake.control.sell(SHOP, 'HOOK-1', 1);
        expect(d!.status).toBe(200);
        const body = JSON.parse(rx.received[0]!.raw.toString()) as Record<string, unknown>;
        expect(body).toMatchObject({ available: 3, admin_graphql_api_id: expect.stringMatching(/^gid:\/\/shopify\/InventoryLevel\/\d+\?inventory_item_id=\d+$/) });
        expect(rx.received[0]!.headers['x-shopify-hmac-sha256']).toBe(createHmac('sha256', SECRET).update(rx.received[0]!.raw).digest('base64'));

        // the app's own change is announced too, as Shopify does
        const [s] = fake.control.seed(SHOP, [{ sku: 'HOOK-2', quantity: 1 }]);
        const before = fake.state.webhookDeliveries.length;
        await gqlJson(fake, token, SET, { input: { name: 'available', reason: 'correction', quantities: [{ inventoryItemId: s!.inventoryItemId, locationId: s!.locationId, quantity: 5, changeFromQuantity: 1 }] }, key: 'hook-2' });
        await fake.control.webhooksIdle();
        expect(fake.state.webhookDeliveries.length).toBe(before + 1);
        expect(JSON.parse(fake.state.webhookDeliveries.at(-1)!.body)).toMatchObject({ available: 5 });
      } finally {
        await rx.close();
      }
    });
  });

  describe('faults', () => {
    it('answers 5xx for a count, hangs until the client gives up, and refuses connections while down', async () => {
      const token = fake.control.issueToken(SHOP).access_token;
      fake.control.fail({ status: 503, count: 2 });
      expect((await gql(fake, token, '{ shop { id } }')).status).toBe(503);
      expect((await gql(fake, token, '{ shop { id } }')).status).toBe(503);
      expect((await gql(fake, token, '{ shop { id } }')).status).toBe(200);

      fake.control.hang({ count: 1 });
      const hung = fetch(`${fake.url}/${SHOP}/admin/api/2026-04/graphql.json`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-shopify-access-token': token },
        body: JSON.stringify({ query: '{ shop { id } }' }),
        signal: AbortSignal.timeout(200),
      });
      await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(fake.control.faults.hits.hang).toBe(1);

      const port = fake.port;
      await fake.control.down();
      // a pooled keep-alive socket fails as "other side closed", a new connection is refused
      await expect(gql(fake, token, '{ shop { id } }')).rejects.toThrow('fetch failed');
      expect(await connectError(port)).toBe('ECONNREFUSED');
      await fake.control.up();
      expect(fake.port).toBe(port);
      expect((await gql(fake, token, '{ shop { id } }')).status).toBe(200);
    });
  });
});
