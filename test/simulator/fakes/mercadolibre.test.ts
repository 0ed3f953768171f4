import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMercadoLibreFake, type MercadoLibreFake } from '../../../simulator/fakes/mercadolibre.js';
import { connectError, startReceiver } from './receiver.js';

const CLIENT = '5503910054141466';
const SECRET = 'ml-secret';
const REDIRECT = 'https://concord.example/api/integrations/mercadolibre/callback';
const SELLER = 146322322;

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: new URLSearchParams(fields).toString(),
});

async function authorize(fake: MercadoLibreFake, verifier: string) {
  const url = new URL(`${fake.url}/authorization`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT,
    redirect_uri: REDIRECT,
    state: 'st-1',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

const exchange = (fake: MercadoLibreFake, code: string, verifier: string) =>
  fetch(`${fake.url}/oauth/token`, form({ grant_type: 'authorization_code', client_id: CLIENT, client_secret: SECRET, code, redirect_uri: REDIRECT, code_verifier: verifier }));

const refresh = (fake: MercadoLibreFake, token: string) =>
  fetch(`${fake.url}/oauth/token`, form({ grant_type: 'refresh_token', client_id: CLIENT, client_secret: SECRET, refresh_token: token }));

const get = (fake: MercadoLibreFake, token: string, path: string, init: RequestInit = {}) =>
  fetch(`${fake.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'Error validating grant. Your authorization code or refresh token may be expired or it was already used',
  status: 400,
  cause: [],
};

describe('MercadoLibre fake', () => {
  let fake: MercadoLibreFake;
  beforeAll(async () => {
    fake = await startMercadoLibreFake({ clientId: CLIENT, clientSecret: SECRET, redirectUri: REDIRECT, clock: 'manual' });
  });
  afterAll(() => fake.close());

  describe('OAuth', () => {
    it('redirects with a TG- code and state, and exchanges it only with the right PKCE verifier', async () => {
      const verifier = randomBytes(32).toString('base64url');
      const callback = await authorize(fake, verifier);
      expect(callback.origin + callback.pathname).toBe(REDIRECT);
      expect(callback.searchParams.get('code')).toMatch(/^TG-/);
      expect(callback.searchParams.get('state')).toBe('st-1');

      const wrong = await exchange(fake, callback.searchParams.get('code')!, 'not-the-verifier');
      expect(wrong.status).toBe(400);
      expect(await wrong.json()).toEqual(INVALID_GRANT);

      const ok = await exchange(fake, callback.searchParams.get('code')!, verifier);
      expect(ok.status).toBe(200);
      const body = (await ok.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['access_token', 'token_type', 'expires_in', 'scope', 'user_id', 'refresh_token']);
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 21600, scope: 'offline_access read write', user_id: SELLER });
      expect(body.access_token).toMatch(/^APP_USR-/);
      expect(body.refresh_token).toMatch(/^TG-/);

      // a code is used once
      expect(await (await exchange(fake, callback.searchParams.get('code')!, verifier)).json()).toEqual(INVALID_GRANT);
    });

    it('refuses token parameters in the query string and a redirect_uri other than the registered one', async () => {
      const q = await fetch(`${fake.url}/oauth/token?grant_type=refresh_token&client_id=${CLIENT}&client_secret=${SECRET}&refresh_token=x`, { method: 'POST' });
      expect(q.status).toBe(400);
      const url = new URL(`${fake.url}/authorization`);
      url.search = new URLSearchParams({ response_type: 'code', client_id: CLIENT, redirect_uri: 'https://elsewhere.example/cb' }).toString();
      expect((await fetch(url, { redirect: 'manual' })).status).toBe(400);
    });

    it('refresh tokens are single use: a second use of the old one is invalid_grant', async () => {
      const t = fake.control.issueToken(SELLER);
      const r1 = await refresh(fake, t.refresh_token);
      expect(r1.status).toBe(200);
      const next = (await r1.json()) as { refresh_token: string; access_token: string };
      expect(next.refresh_token).not.toBe(t.refresh_token);
      const again = await refresh(fake, t.refresh_token);
      expect(again.status).toBe(400);
      expect(await again.json()).toEqual(INVALID_GRANT);
      // two concurrent refreshes with one token: exactly one wins
      const both = await Promise.all([refresh(fake, next.refresh_token), refresh(fake, next.refresh_token)]);
      expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
    });

    it('access tokens expire after 6 hours with the invalid_token envelope; only the Authorization header counts', async () => {
      const t = fake.control.issueToken(SELLER);
      expect((await get(fake, t.access_token, '/users/me')).status).toBe(200);
      const inQuery = await fetch(`${fake.url}/users/me?access_token=${t.access_token}`);
      expect(inQuery.status).toBe(401);
      fake.control.advance(21600 * 1000);
      const expired = await get(fake, t.access_token, '/users/me');
      expect(expired.status).toBe(401);
      expect(await expired.json()).toEqual({ message: 'invalid_token', error: 'not_found', status: 401, cause: [] });
    });

    it('revoke: tokens 401, refresh invalid_grant', async () => {
      const t = fake.control.issueToken(999);
      fake.control.revoke(999);
      expect((await get(fake, t.access_token, '/users/me')).status).toBe(401);
      expect(await (await refresh(fake, t.refresh_token)).json()).toEqual(INVALID_GRANT);
    });
  });

  describe('items', () => {
    let token: string;
    let simple: string;
    let withVariations: { itemId: string; variationIds: number[] };
    beforeAll(() => {
      token = fake.control.issueToken(SELLER).access_token;
      simple = fake.control.seed(SELLER, [{ sku: 'ML-SIMPLE', quantity: 5 }])[0]!.itemId;
      withVariations = fake.control.seed(SELLER, [{ variations: [{ sku: 'ML-RED', quantity: 3 }, { sku: 'ML-BLUE', quantity: 4 }] }])[0]!;
    });

    it('reads and writes available_quantity of a simple item', async () => {
      const item = (await (await get(fake, token, `/items/${simple}`)).json()) as Record<string, unknown>;
      expect(item).toMatchObject({ id: simple, seller_id: SELLER, available_quantity: 5, seller_custom_field: 'ML-SIMPLE' });
      expect(item.attributes).toContainEqual(expect.objectContaining({ id: 'SELLER_SKU', value_name: 'ML-SIMPLE' }));
      const put = await get(fake, token, `/items/${simple}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ available_quantity: 9 }) });
      expect(put.status).toBe(200);
      expect(fake.control.stock(SELLER, 'ML-SIMPLE')).toBe(9);
    });

    it('deletes the variations a PUT leaves out', async () => {
      const [red, blue] = withVariations.variationIds;
      const put = await get(fake, token, `/items/${withVariations.itemId}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ variations: [{ id: red, available_quantity: 7 }] }),
      });
      const body = (await put.json()) as { variations: Array<{ id: number; available_quantity: number }>; available_quantity: number };
      expect(body.variations).toEqual([expect.objectContaining({ id: red, available_quantity: 7 })]);
      expect(body.available_quantity).toBe(7);
      expect(fake.control.stock(SELLER, 'ML-BLUE')).toBeUndefined();
      expect(blue).toBeDefined();
    });

    it('answers validation errors with cause entries, 404 and 403 in the envelope', async () => {
      const bad = await get(fake, token, `/items/${simple}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ available_quantity: -1 }) });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({
        message: 'Validation error',
        error: 'validation_error',
        status: 400,
        cause: [expect.objectContaining({ department: 'items', type: 'error', code: 'item.available_quantity.invalid', references: expect.any(Array) })],
      });
      const missing = await get(fake, token, '/items/MLA1');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: 'not_found', status: 404, cause: [] });
      const stranger = fake.control.issueToken(5).access_token;
      expect((await get(fake, stranger, `/items/${simple}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"available_quantity":1}' })).status).toBe(403);
    });

    it('multiget: [{code, body}] with attributes, at most 20 ids', async () => {
      const res = await get(fake, token, `/items?ids=${simple},MLA404&attributes=id,available_quantity`);
      expect(await res.json()).toEqual([
        { code: 200, body: { id: simple, available_quantity: 9 } },
        { code: 404, body: expect.objectContaining({ error: 'not_found', status: 404 }) },
      ]);
      const many = Array.from({ length: 21 }, (_, i) => `MLA${i}`).join(',');
      expect((await get(fake, token, `/items?ids=${many}`)).status).toBe(400);
    });
  });

  describe('search', () => {
    const seller = 777;
    let token: string;
    beforeAll(() => {
      token = fake.control.issueToken(seller).access_token;
      fake.control.seed(seller, Array.from({ length: 1030 }, (_, i) => ({ sku: `S-${i}`, quantity: i, status: i % 10 === 0 ? ('paused' as const) : ('active' as const) })));
    });

    it('pages by offset up to 1000 and filters by status and seller_sku', async () => {
      const first = (await (await get(fake, token, `/users/${seller}/items/search?limit=100&offset=0`)).json()) as { paging: unknown; results: string[] };
      expect(first.paging).toEqual({ total: 1030, offset: 0, limit: 100 });
      expect(first.results).toHaveLength(100);
      expect((await get(fake, token, `/users/${seller}/items/search?limit=100&offset=900`)).status).toBe(200);
      const capped = await get(fake, token, `/users/${seller}/items/search?limit=100&offset=1000`);
      expect(capped.status).toBe(400);
      expect(await capped.json()).toMatchObject({ error: 'bad_request', status: 400 });
      const paused = (await (await get(fake, token, `/users/${seller}/items/search?status=paused&limit=1`)).json()) as { paging: { total: number } };
      expect(paused.paging.total).toBe(103);
      const bySku = (await (await get(fake, token, `/users/${seller}/items/search?seller_sku=S-42`)).json()) as { results: string[] };
      expect(bySku.results).toHaveLength(1);
      expect((await get(fake, token, `/users/${SELLER}/items/search`)).status).toBe(403);
    });

    it('scans every item with scroll_id past the offset cap', async () => {
      const seen = new Set<string>();
      let scroll: string | undefined;
      for (;;) {
        const path: string = `/users/${seller}/items/search?search_type=scan&limit=100${scroll ? `&scroll_id=${scroll}` : ''}`;
        const page = (await (await get(fake, token, path)).json()) as { scroll_id: string; results: string[]; paging: { total: number } };
        expect(page.paging.total).toBe(1030);
        if (page.results.length === 0) break;
        for (const id of page.results) seen.add(id);
        scroll = page.scroll_id;
      }
      expect(seen.size).toBe(1030);
    });
  });

  describe('notifications, limits and faults', () => {
    it('posts the notification body, records a slow or failed one in missed_feeds, and redelivers with the same _id', async () => {
      let answer = 200;
      const rx = await startReceiver(() => answer);
      try {
        const token = fake.control.issueToken(SELLER).access_token;
        const d = await fake.control.notify('items', '/items/MLA1', SELLER, { to: rx.url });
        expect(d.ok).toBe(true);
        const body = JSON.parse(rx.received[0]!.raw.toString()) as Record<string, unknown>;
        expect(Object.keys(body)).toEqual(['_id', 'resource', 'user_id', 'topic', 'application_id', 'attempts', 'sent', 'received']);
        expect(body).toMatchObject({ resource: '/items/MLA1', user_id: SELLER, topic: 'items', application_id: Number(CLIENT), attempts: 1 });

        answer = 500;
        const failed = await fake.control.notify('items', '/items/MLA2', SELLER, { to: rx.url });
        expect(failed.ok).toBe(false);
        const missed = (await (await get(fake, token, `/missed_feeds?app_id=${CLIENT}&topic=items`)).json()) as { messages: Array<Record<string, unknown>>; total: number };
        expect(missed.total).toBe(1);
        expect(missed.messages[0]).toMatchObject({ _id: failed.notification._id, resource: '/items/MLA2', response: { http_code: 500 } });

        answer = 200;
        const retry = await fake.control.redeliver(failed);
        expect(retry.ok).toBe(true);
        expect(JSON.parse(rx.received[2]!.raw.toString())).toMatchObject({ _id: failed.notification._id, attempts: 2 });

        // a sale notifies the items topic
        fake.control.seed(SELLER, [{ sku: 'SOLD-1', quantity: 3 }]);
        const sale = await fake.control.sell(SELLER, 'SOLD-1', 2, { to: rx.url });
        expect(sale!.notification.topic).toBe('items');
        expect(fake.control.stock(SELLER, 'SOLD-1')).toBe(1);
      } finally {
        await rx.close();
      }
    });

    it('records calls per client id and seller, and enforces an optional limit with 429 + Retry-After', async () => {
      const limited = await startMercadoLibreFake({ clientId: CLIENT, clientSecret: SECRET, rateLimit: { limit: 3, windowMs: 60_000, retryAfterSeconds: 7 } });
      try {
        const token = limited.control.issueToken(SELLER).access_token;
        const statuses: number[] = [];
        let last: Response | undefined;
        for (let i = 0; i < 4; i++) statuses.push((last = await get(limited, token, '/users/me')).status);
        expect(statuses).toEqual([200, 200, 200, 429]);
        expect(last!.headers.get('retry-after')).toBe('7');
        expect(await last!.json()).toEqual({ message: 'Too Many Requests', error: 'too_many_requests', status: 429, cause: [] });
        expect(limited.control.rate.count(CLIENT)).toBe(4);
        expect(limited.control.rate.count(`user:${SELLER}`)).toBe(4);
        expect(limited.control.rate.maxInWindow(CLIENT, 60_000)).toBe(4);
      } finally {
        await limited.close();
      }
    });

    it('induces 429s, 5xx, hangs and an outage', async () => {
      const token = fake.control.issueToken(SELLER).access_token;
      fake.control.throttle({ count: 1, retryAfterSeconds: 2 });
      const t = await get(fake, token, '/users/me');
      expect(t.status).toBe(429);
      expect(t.headers.get('retry-after')).toBe('2');
      expect(await t.json()).toMatchObject({ error: 'too_many_requests', status: 429 });

      fake.control.fail({ status: 502, count: 1 });
      expect((await get(fake, token, '/users/me')).status).toBe(502);
      fake.control.hang({ count: 1 });
      await expect(get(fake, token, '/users/me', { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ name: 'TimeoutError' });

      const port = fake.port;
      await fake.control.down();
      expect(await connectError(port)).toBe('ECONNREFUSED');
      await fake.control.up();
      expect((await get(fake, token, '/users/me')).status).toBe(200);
    });
  });
});
