import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { createApp } from '../../http/app.js';
import { credentialKey } from '../../runtime/config.js';
import type { Database } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import type { ActorTypeDefinition, PersistedSnapshot } from '../../runtime/registry.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { KeyRing } from '../../services/integrations/vault.js';
import { WebhookIntake } from '../../services/integrations/webhooks.js';
import { startMercadoLibreFake, startShopifyFake, type MercadoLibreFake, type ShopifyFake, type WebhookDelivery } from '../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';
import { ledgerType } from '../fixtures/machines.js';

const WEBHOOK_SECRET = `whsec_${randomBytes(12).toString('hex')}`;
const ML_APP = '5503910054141466';
const ML_SECRET = `mlsec_${randomBytes(12).toString('hex')}`;
const SELLER = 146322322;
const SHOPS = ['alpha.myshopify.com', 'beta.myshopify.com'];
const TENANT = (shop: string) => `vendor-${shop.split('.')[0]}`;

/** A stand-in for the connection actor (built apart): it records the webhooks it is handed. */
const integrationMachine = setup({
  types: { context: {} as { webhooks: string[] }, events: {} as { type: 'integration.webhook.received'; webhookId: string; topic: string; receivedAt: string } },
}).createMachine({
  id: 'integration',
  context: { webhooks: [] },
  on: { 'integration.webhook.received': { actions: assign({ webhooks: ({ context, event }) => [...context.webhooks, event.webhookId] }) } },
});
const integrationType: ActorTypeDefinition = {
  type: 'integration',
  machine: integrationMachine,
  version: 1,
  project: (s: PersistedSnapshot) => ({ status: 'CONNECTED', attrs: { webhooks: (s.context as { webhooks: string[] }).webhooks.length } }),
};

/** Every line logged while the app runs, at info level and above. */
const lines: string[] = [];
const log = createLogger(
  'info',
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  }),
);

let database: Database;
let runtime: Runtime;
let services: Services;
let server: ServerType;
let url: string;
let shopify: ShopifyFake;
let ml: MercadoLibreFake;

beforeAll(async () => {
  database = await freshDatabase();
  runtime = await testRuntime(database, {
    types: [integrationType],
    run: { timers: false, relay: false },
    env: { SHOPIFY_WEBHOOK_SECRET: WEBHOOK_SECRET, ML_CLIENT_ID: ML_APP, ML_WEBHOOK_SECRET: ML_SECRET },
  });
  services = createServices({ runtime, log, credentialKeys: new KeyRing([credentialKey('k1', randomBytes(32))]), run: { sagaIntake: false, events: false, housekeeping: false } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log, jwtSecret: 'test-secret-0123456789-0123456789-abcdef' });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      url = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  shopify = await startShopifyFake({ webhookSecret: WEBHOOK_SECRET });
  ml = await startMercadoLibreFake({ clientId: ML_APP, notificationsUrl: `${url}/api/integrations/mercadolibre/webhook?secret=${ML_SECRET}` });
  for (const shop of SHOPS) await services.vault.put({ tenantId: TENANT(shop), service: 'shopify', connectionId: shop }, { accessToken: 'shpat_x' });
  await services.vault.put({ tenantId: 'vendor-ml', service: 'mercadolibre', connectionId: String(SELLER) }, { accessToken: 'APP_USR-x' });
}, 60_000);

afterAll(async () => {
  await shopify?.close();
  await ml?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await services.stop();
  await runtime.stop();
  await database.close();
});

const hook = (service: string) => `${url}/api/integrations/${service}/webhook`;
const rows = async (where = 'true', params: unknown[] = []) =>
  (await database.pool.query<{ delivery_id: string; event_id: string | null; status: string; service: string; tenant_id: string; payload: unknown }>(`SELECT * FROM integration_webhooks WHERE ${where}`, params)).rows;

/** Runs `tasks` with at most `n` at a time. */
async function pool<T>(tasks: Array<() => Promise<T>>, n: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

describe('Shopify', () => {
  it('accepts exactly the valid ones of 1,000 webhooks (10% bad signatures, 10% duplicates, 10% stale replays), each once, and hands each to its connection once', async () => {
    const base = Date.parse('2026-03-01T00:00:00Z');
    const level = (i: number) => ({ inventory_item_id: 1000 + i, location_id: 7, available: i, updated_at: new Date(base + i * 1000).toISOString() });
    const shopOf = (i: number) => SHOPS[i % 2]!;
    const one = async (shop: string, payload: unknown, o: Parameters<ShopifyFake['control']['sendWebhook']>[3]) => (await shopify.control.sendWebhook(shop, 'inventory_levels/update', payload, o))[0]!;

    // phase 1: 700 valid deliveries, one resource each, and 100 with a bad signature, interleaved
    const phase1: Array<() => Promise<{ kind: 'valid' | 'bad'; d: WebhookDelivery; i: number }>> = [];
    for (let i = 0; i < 800; i++) {
      if (i % 8 === 7) phase1.push(async () => ({ kind: 'bad', i, d: await one(shopOf(i), level(i), { to: hook('shopify'), corruptSignature: true, triggeredAt: new Date(base + i * 1000).toISOString() }) }));
      else phase1.push(async () => ({ kind: 'valid', i, d: await one(shopOf(i), level(i), { to: hook('shopify'), triggeredAt: new Date(base + i * 1000).toISOString() }) }));
    }
    const first = await pool(phase1, 16);
    const valid = first.filter((r) => r.kind === 'valid');
    const bad = first.filter((r) => r.kind === 'bad');
    expect(valid).toHaveLength(700);
    expect(valid.every((r) => r.d.status === 200)).toBe(true);
    expect(bad.every((r) => r.d.status === 401)).toBe(true);

    // phase 2: 100 exact redeliveries (same ids) and 100 new deliveries of an older Triggered-At for resources already accepted
    const phase2: Array<() => Promise<{ kind: 'dup' | 'stale'; d: WebhookDelivery }>> = [];
    for (let k = 0; k < 100; k++) {
      const original = valid[k]!;
      phase2.push(async () => ({ kind: 'dup', d: await shopify.control.redeliver(original.d) }));
      const target = valid[100 + k]!;
      phase2.push(async () => ({ kind: 'stale', d: await one(shopOf(target.i), { ...level(target.i), available: -1 }, { to: hook('shopify'), triggeredAt: new Date(base - 3_600_000).toISOString() }) }));
    }
    const second = await pool(phase2.sort(() => Math.random() - 0.5), 16);
    expect(second.every((r) => r.d.status === 200)).toBe(true);

    const stored = await rows("service = 'shopify'");
    expect(stored).toHaveLength(800);
    const byDelivery = new Map(stored.map((r) => [r.delivery_id, r]));
    expect(byDelivery.size).toBe(800);
    for (const r of valid) {
      const row = byDelivery.get(r.d.headers['x-shopify-webhook-id']!);
      expect(row?.status).not.toBe('stale');
      expect(row?.tenant_id).toBe(TENANT(r.d.shop));
      expect(row?.event_id).toBe(r.d.headers['x-shopify-event-id']);
    }
    for (const r of bad) expect(byDelivery.has(r.d.headers['x-shopify-webhook-id']!)).toBe(false);
    const stale = second.filter((r) => r.kind === 'stale');
    for (const r of stale) expect(byDelivery.get(r.d.headers['x-shopify-webhook-id']!)?.status).toBe('stale');

    // each accepted one reaches its connection's actor once; stale ones never do
    await waitFor('every accepted webhook handed on', async () => (await rows("service = 'shopify' AND status = 'accepted'")).length === 0);
    expect(await rows("service = 'shopify' AND status = 'handed'")).toHaveLength(700);
    const handed = new Set<string>();
    for (const shop of SHOPS) {
      const view = await runtime.host.get({ type: 'integration', id: `${TENANT(shop)}:shopify:${shop}` });
      const ids = (view.context as { webhooks: string[] }).webhooks;
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of ids) handed.add(id);
    }
    expect(handed.size).toBe(700);
    const timed = await database.pool.query<{ n: string }>("SELECT count(*) AS n FROM integration_webhooks WHERE status = 'handed' AND processing_ms >= 0 AND handed_at >= received_at");
    expect(Number(timed.rows[0]!.n)).toBe(700);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/concord_webhooks_total\{service="shopify",outcome="accepted"\} 700\n/);
    expect(metrics).toMatch(/concord_webhooks_total\{service="shopify",outcome="refused"\} 100\n/);
    expect(metrics).toMatch(/concord_webhooks_total\{service="shopify",outcome="duplicate"\} 100\n/);
    expect(metrics).toMatch(/concord_webhooks_total\{service="shopify",outcome="stale"\} 100\n/);
    expect(metrics).toMatch(/concord_webhook_processing_seconds_count\{service="shopify"\} 700\n/);
  }, 120_000);

  it('racing deliveries of one resource: the newer is never stale and stays the newest Triggered-At of the resource, whatever the order', async () => {
    const t1 = '2026-03-02T00:00:00.000Z';
    const t2 = '2026-03-02T00:00:05.000Z';
    const pairs = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const payload = { inventory_item_id: 9_000 + i, location_id: 3, available: i };
        const send = async (triggeredAt: string) => (await shopify.control.sendWebhook(SHOPS[0]!, 'inventory_levels/update', payload, { to: hook('shopify'), triggeredAt }))[0]!;
        const [older, newer] = await Promise.all([send(t1), send(t2)]);
        return { i, older, newer };
      }),
    );
    for (const { i, older, newer } of pairs) {
      expect([older.status, newer.status]).toEqual([200, 200]);
      const [o] = await rows('delivery_id = $1', [older.headers['x-shopify-webhook-id']]);
      const [n] = await rows('delivery_id = $1', [newer.headers['x-shopify-webhook-id']]);
      expect(n!.status).not.toBe('stale');
      expect(o).toBeDefined(); // stored either way: accepted if it got there first, else stale
      const { rows: r } = await database.pool.query<{ t: Date }>('SELECT newest_triggered_at AS t FROM integration_webhook_resources WHERE resource = $1', [`inventory_level:${9_000 + i}:3`]);
      expect(r[0]!.t.toISOString()).toBe(t2);
    }
  });

  it('deliveries that arrive together and share a delivery id, event id or resource are judged as if one came after the other', async () => {
    const signed = (topic: string, payload: unknown, h: { id: string; event?: string; at?: string }) => {
      const body = new TextEncoder().encode(JSON.stringify(payload));
      const headers: Record<string, string> = {
        'x-shopify-topic': topic,
        'x-shopify-hmac-sha256': createHmac('sha256', WEBHOOK_SECRET).update(body).digest('base64'),
        'x-shopify-shop-domain': SHOPS[1]!,
        'x-shopify-webhook-id': h.id,
      };
      if (h.event) headers['x-shopify-event-id'] = h.event;
      if (h.at) headers['x-shopify-triggered-at'] = h.at;
      return () => services.webhooks.accept('shopify', body, headers);
    };
    const level = { inventory_item_id: 77_001, location_id: 9, available: 1 };
    const [x, y, e] = [randomUUID(), randomUUID(), randomUUID()];
    const calls = [
      // the first ones go alone; the rest queue behind them and would share one statement
      ...Array.from({ length: 4 }, (_, i) => signed('inventory_levels/update', { inventory_item_id: 78_000 + i, location_id: 9, available: 1 }, { id: randomUUID(), at: '2026-03-02T00:00:00.000Z' })),
      signed('inventory_levels/update', level, { id: x, event: e, at: '2026-03-02T00:00:01.000Z' }), // accepted
      signed('inventory_levels/update', level, { id: x, event: e, at: '2026-03-02T00:00:01.000Z' }), // the same delivery again
      signed('inventory_levels/update', { ...level, available: 2 }, { id: randomUUID(), event: e, at: '2026-03-02T00:00:01.000Z' }), // its event again
      signed('inventory_levels/update', { ...level, available: 3 }, { id: randomUUID(), at: '2026-03-02T00:00:03.000Z' }), // newer: accepted
      signed('inventory_levels/update', { ...level, available: 4 }, { id: randomUUID(), at: '2026-03-02T00:00:02.000Z' }), // older than the one before: stale
    ];
    const outcomes = await Promise.all(calls.map((c) => c())); // all queued in one turn
    expect(outcomes.slice(4).map((o) => o.status)).toEqual(['accepted', 'duplicate', 'duplicate', 'accepted', 'stale']);
    // a repeat with nothing else in common, in a batch of its own: one row, one `accepted`
    const again = [
      ...Array.from({ length: 4 }, (_, i) => signed('products/update', { id: 79_000 + i }, { id: randomUUID() })),
      signed('products/update', { title: 'no id' }, { id: y }), // no resource, no event id
      signed('products/update', { title: 'no id' }, { id: y }), // the same delivery again
    ];
    const outcomes2 = await Promise.all(again.map((c) => c()));
    expect(outcomes2.slice(4).map((o) => o.status)).toEqual(['accepted', 'duplicate']);
    const ids = [...outcomes, ...outcomes2].filter((o) => o.id).map((o) => o.id);
    expect(new Set(ids).size).toBe(ids.length);
    const { rows: r } = await database.pool.query<{ t: Date }>('SELECT newest_triggered_at AS t FROM integration_webhook_resources WHERE resource = $1', ['inventory_level:77001:9']);
    expect(r[0]!.t.toISOString()).toBe('2026-03-02T00:00:03.000Z');
  });

  it('refuses a bad signature with a 401 problem, stores nothing and logs without the body', async () => {
    const marker = `BODY-MARKER-${randomUUID()}`;
    const [d] = await shopify.control.sendWebhook(SHOPS[0]!, 'products/update', { id: 1, title: marker }, { to: hook('shopify'), corruptSignature: true });
    expect(d!.status).toBe(401);
    expect(await rows('delivery_id = $1', [d!.headers['x-shopify-webhook-id']])).toHaveLength(0);
    const refused = lines.filter((l) => l.includes('bad signature'));
    expect(refused.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes(marker))).toBe(false);
  });

  it('verifies the signature over the raw bytes, not over a decoded or re-serialised body (a BOM, spacing)', async () => {
    const body = '\uFEFF{ "id" : 42,\n  "title": "caf\u00e9" }';
    const [d] = await shopify.control.sendWebhook(SHOPS[0]!, 'products/update', body, { to: hook('shopify') });
    // decoding as text drops the BOM and the signature would fail (401); over the raw bytes it
    // verifies, and the BOM then makes it no JSON webhook (400)
    expect(d!.status).toBe(400);
    const [spaced] = await shopify.control.sendWebhook(SHOPS[0]!, 'products/update', '{ "id" : 43,\n  "title": "caf\u00e9" }', { to: hook('shopify') });
    expect(spaced!.status).toBe(200);
  });

  it('refuses an unknown shop with a 401 and stores nothing', async () => {
    const [d] = await shopify.control.sendWebhook('stranger.myshopify.com', 'products/update', { id: 5 }, { to: hook('shopify') });
    expect(d!.status).toBe(401);
    expect(await rows("connection_id = 'stranger.myshopify.com'")).toHaveLength(0);
  });

  it('answers 413 to a body over 1 MB, and stores nothing', async () => {
    const big = JSON.stringify({ id: 9, blob: 'x'.repeat(1024 * 1024 + 10) });
    const [d] = await shopify.control.sendWebhook(SHOPS[0]!, 'products/update', big, { to: hook('shopify') });
    expect(d!.status).toBe(413);
    expect(await rows('delivery_id = $1', [d!.headers['x-shopify-webhook-id']])).toHaveLength(0);
    // the 413 closes its connection: the unread rest of the body must not hang the next delivery
    const next = await Promise.all([10, 11, 12, 13].map(async (id) => (await shopify.control.sendWebhook(SHOPS[0]!, 'products/update', { id }, { to: hook('shopify') }))[0]!));
    expect(next.map((d) => d.status)).toEqual([200, 200, 200, 200]);
  });
});

describe('overload', () => {
  it('sheds new deliveries with a 503 problem and Retry-After once the oldest waiting one has waited over a second; every waiting one is still accepted', async () => {
    // the accepts stall (a lock on the table), deliveries pile up behind them
    const blocker = await database.pool.connect();
    let released = false;
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE integration_webhooks IN ACCESS EXCLUSIVE MODE');
      const waiting = [0, 1, 2, 3, 4, 5].map((i) => shopify.control.sendWebhook(SHOPS[0]!, 'products/update', { id: 7000 + i }, { to: hook('shopify') }));
      await new Promise((r) => setTimeout(r, 1_200));
      const t0 = performance.now();
      const [shed] = await shopify.control.sendWebhook(SHOPS[1]!, 'products/update', { id: 7100 }, { to: hook('shopify') });
      expect(shed!.status).toBe(503);
      expect(performance.now() - t0).toBeLessThan(500); // refused at once, not queued
      const raw = await fetch(hook('shopify'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(raw.status).toBe(503);
      expect(raw.headers.get('content-type')).toBe('application/problem+json');
      expect(raw.headers.get('retry-after')).toBe('1');
      expect(await raw.json()).toMatchObject({ status: 503, code: 'UNAVAILABLE', retryAfter: 1 });
      await blocker.query('COMMIT');
      released = true;
      expect((await Promise.all(waiting)).map(([d]) => d!.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(await rows("payload->>'id' IN ('7000', '7001', '7002', '7003', '7004', '7005')")).toHaveLength(6);
      expect(await rows("payload->>'id' = '7100'")).toHaveLength(0);
      // the provider's retry of the shed one is accepted once the queue has drained
      const again = await shopify.control.redeliver(shed!);
      expect(again.status).toBe(200);
      expect(await rows("payload->>'id' = '7100'")).toHaveLength(1);
    } finally {
      if (!released) await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
    }
  });
});

describe('MercadoLibre', () => {
  it('accepts a connected seller’s notification within 500 ms, keeps only its ids, and dedupes a retry on _id', async () => {
    const d = await ml.control.notify('items', '/items/MLA123', SELLER);
    expect(d.status).toBe(200);
    expect(d.ok).toBe(true); // answered within ML's 500 ms
    const again = await ml.control.redeliver(d);
    expect(again.status).toBe(200);
    const stored = await rows('delivery_id = $1', [d.notification._id]);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ tenant_id: 'vendor-ml', service: 'mercadolibre', payload: { resource: '/items/MLA123', user_id: SELLER, topic: 'items' } });
    expect(Object.keys(stored[0]!.payload as object)).not.toContain('application_id');
  });

  it('refuses an unknown seller, a wrong application, and a missing or wrong secret (401, nothing stored)', async () => {
    const unknown = await ml.control.notify('items', '/items/MLA1', 999);
    const other = await startMercadoLibreFake({ clientId: '1111', notificationsUrl: `${url}/api/integrations/mercadolibre/webhook?secret=${ML_SECRET}` });
    try {
      const wrongApp = await other.control.notify('items', '/items/MLA2', SELLER);
      const noSecret = await ml.control.notify('items', '/items/MLA3', SELLER, { to: hook('mercadolibre') });
      const badSecret = await ml.control.notify('items', '/items/MLA4', SELLER, { to: `${hook('mercadolibre')}?secret=${ML_SECRET.slice(0, -1)}x` });
      for (const d of [unknown, wrongApp, noSecret, badSecret]) {
        expect(d.status).toBe(401);
        expect(await rows('delivery_id = $1', [d.notification._id])).toHaveLength(0);
      }
    } finally {
      await other.close();
    }
    // the secret rides in the callback URL's query: no log line (access log included) carries it
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes(ML_SECRET) || l.includes(WEBHOOK_SECRET))).toBe(false);
  });
});

describe('the hand-off to the connection actor', () => {
  it('leaves a webhook `accepted` while no `integration` actor type is registered, and a process that has one picks it up', async () => {
    // a process of this deployment that does not run connection actors (same database)
    const bare = await testRuntime(database, { types: [ledgerType], run: { timers: false, relay: false }, env: { SHOPIFY_WEBHOOK_SECRET: WEBHOOK_SECRET } });
    const intake = new WebhookIntake({ pool: database.pool, providers: bare.config.providers, host: bare.host, clock: services.clock, log, sweepMs: 0 });
    const body = Buffer.from(JSON.stringify({ id: 77, title: 'later' }));
    const headers = {
      'x-shopify-topic': 'products/update',
      'x-shopify-hmac-sha256': createHmac('sha256', WEBHOOK_SECRET).update(body).digest('base64'),
      'x-shopify-shop-domain': SHOPS[1]!,
      'x-shopify-webhook-id': randomUUID(),
      'x-shopify-event-id': randomUUID(),
      'x-shopify-triggered-at': new Date().toISOString(),
    };
    const outcome = await intake.accept('shopify', body, headers);
    expect(outcome.status).toBe('accepted');
    await intake.idle();
    expect(bare.host.registry.has('integration')).toBe(false);
    expect((await rows('id = $1', [outcome.id]))[0]?.status).toBe('accepted');
    expect(await intake.sweep()).toBe(0);
    // that process has no ML_CLIENT_ID: MercadoLibre notifications are a 503 naming it; an unknown service a 404
    await expect(intake.accept('mercadolibre', Buffer.from('{}'), {})).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { missing: ['ML_CLIENT_ID'] } });
    await expect(intake.accept('ebay', Buffer.from('{}'), {})).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // the periodic sweep leaves young rows to the hand-off queue that holds them (no double hand-off)
    expect(await services.webhooks.sweep(500, 600_000)).toBe(0);
    expect((await rows('id = $1', [outcome.id]))[0]?.status).toBe('accepted');
    // the process with the actor type sweeps it over, once
    expect(await services.webhooks.sweep()).toBeGreaterThanOrEqual(1);
    expect((await rows('id = $1', [outcome.id]))[0]?.status).toBe('handed');
    const view = await runtime.host.get({ type: 'integration', id: `${TENANT(SHOPS[1]!)}:shopify:${SHOPS[1]!}` });
    expect((view.context as { webhooks: string[] }).webhooks.filter((w) => w === outcome.id)).toHaveLength(1);
  });
});
