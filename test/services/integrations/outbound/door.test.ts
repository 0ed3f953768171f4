import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInvoker } from '../../../../connectors/kit/contract.js';
import { isConnectorError, type ConnectorError } from '../../../../connectors/kit/errors.js';
import { integrationType } from '../../../../machines/integration/index.js';
import type { Database } from '../../../../runtime/db.js';
import { createServices, type Services } from '../../../../services/index.js';
import type { ConnectionRef } from '../../../../services/integrations/outbound/index.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { testLog, testRuntime } from '../../../helpers/runtime.js';

const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const SHOP = 'door.myshopify.com';
const SELLER = 146322322;
const vendor = (tenantId: string) => ({ sub: 'v', role: 'vendor' as const, tenantId });

let fakes: MarketplaceFakes;
let database: Database;
let services: Services;
let connectorsOf: Map<string, ConnectorInvoker>;
const stops: Array<() => Promise<void>> = [];

/** One Concord node (runtime with relay and timers: the connection actor's refresh runs there). */
async function node(env: Record<string, string> = {}) {
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await testRuntime(database, {
    types: [integrationType],
    connectors,
    env: {
      ...fakes.env,
      PUBLIC_BASE_URL: 'http://concord.test',
      CREDENTIALS_KEYS: KEYS,
      OUTBOUND_RETRY_INITIAL_MS: '50',
      OUTBOUND_RETRY_JITTER: '0',
      BREAKER_COOLDOWN_MS: '600',
      OUTBOUND_STATS_WINDOW_MS: '60000',
      ...env,
    },
  });
  const s = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  connectorsOf ??= connectors;
  await runtime.start();
  await s.start();
  stops.push(async () => {
    await s.stop();
    await runtime.stop();
  });
  return s;
}

async function consent(url: string): Promise<Record<string, string>> {
  const res = await fetch(url, { redirect: 'manual' });
  return Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
}

async function connectShopify(s: Services, tenant: string, shop: string): Promise<ConnectionRef> {
  const a = await s.integrations.authorize(vendor(tenant), 'shopify', { shop });
  await s.integrations.callback('shopify', await consent(a.authorizationUrl));
  return { tenantId: tenant, provider: 'shopify', account: shop };
}

async function connectMercadoLibre(s: Services, tenant: string): Promise<ConnectionRef> {
  const a = await s.integrations.authorize(vendor(tenant), 'mercadolibre', {});
  await s.integrations.callback('mercadolibre', await consent(a.authorizationUrl));
  return { tenantId: tenant, provider: 'mercadolibre', account: String(SELLER) };
}

const failure = (p: Promise<unknown>): Promise<ConnectorError> =>
  p.then(
    () => {
      throw new Error('the call succeeded');
    },
    (err: unknown) => {
      if (!isConnectorError(err)) throw err;
      return err;
    },
  );

const mlCalls = (path: string) => fakes.mercadolibre.state.calls.filter((c) => c.path.includes(path));
const parked = async (actorId: string) =>
  (await database.pool.query(`SELECT id, subject, message_id, payload, headers, error, attempts, replayed_at FROM dead_letters WHERE origin = 'outbound' AND actor_id = $1 ORDER BY id`, [actorId])).rows;

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  services = await node();
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await database?.close();
  await fakes?.close();
});

describe('the outbound call door (real PostgreSQL, the fakes over real HTTP)', () => {
  it('calls the connector with the vault credentials and answers its output; the status counts the call', async () => {
    const c = await connectShopify(services, 't-ok', SHOP);
    // the connection's set-up requests (its webhook subscriptions) went through the budget too
    await services.outbound.flush();
    const setUp = (await services.outbound.status(c)).budget.usedInWindow;
    expect(setUp).toBe(4);
    const out = await services.outbound.call<{ locations: Array<{ id: string }> }>(c, { operation: 'listLocations', input: {}, idempotencyKey: randomUUID() });
    expect(out.locations.length).toBeGreaterThan(0);
    const status = await services.integrations.status(vendor('t-ok'), 'shopify');
    const o = (status.connections[0] as unknown as { outbound: Record<string, unknown> }).outbound;
    expect(o).toMatchObject({ budget: { limit: '4/s:40', usedInWindow: setUp + 1, throttledCalls: 0 }, breaker: { state: 'closed', consecutiveFailures: 0, openedAt: null }, errorRate: 0, health: 'healthy', deadLetters: 0 });
    expect(o.averageResponseMs).toBeGreaterThan(0);
    // the same door as the runtime's `outbound` connector (what a machine's callConnector effect reaches)
    const invoker = connectorsOf.get('outbound')!;
    const viaEffect = (await invoker('listLocations', { connection: c, input: {} }, { signal: AbortSignal.timeout(5_000), idempotencyKey: 'integration/x@1#0' })) as { locations: unknown[] };
    expect(viaEffect.locations.length).toBeGreaterThan(0);
    await services.outbound.flush();
    expect((await services.outbound.status(c)).budget.usedInWindow).toBe(setUp + 2);
    await expect(invoker('listLocations', { input: {} }, { signal: AbortSignal.timeout(5_000), idempotencyKey: 'k' })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('a provider down: the breaker opens after 5 consecutive failures, calls fail fast (the fake sees only the probes), then a probe closes it', async () => {
    const c = await connectMercadoLibre(services, 't-down');
    fakes.mercadolibre.control.seed(SELLER, [{ sku: 'DOWN-1', quantity: 3 }]);
    const before = fakes.mercadolibre.control.faults.hits.fail;
    fakes.mercadolibre.control.fail({ status: 503, path: '/users/' });
    // two calls of 3 attempts: the 5th consecutive failure opens the breaker, the 6th attempt fails fast
    const first = await failure(services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 'down-1', deadLetter: false }));
    expect(first.code).toBe('UNAVAILABLE');
    const second = await failure(services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 'down-2', deadLetter: false }));
    expect(second.code).toBe('CIRCUIT_OPEN');
    expect(fakes.mercadolibre.control.faults.hits.fail - before).toBe(5);
    const open = await services.outbound.status(c);
    expect(open.breaker).toMatchObject({ state: 'open', consecutiveFailures: 5 });
    expect(open.breaker.openedAt).not.toBeNull();
    // another Concord node over the same database sees the breaker open and fails fast too
    const other = await node();
    expect((await other.outbound.status(c)).breaker).toEqual(open.breaker);
    expect(await failure(other.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 'other' }))).toMatchObject({ code: 'CIRCUIT_OPEN' });
    // while open: fail fast, retryable, with the time to half-open; nothing reaches the fake
    for (let i = 0; i < 10; i++) {
      const e = await failure(services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: `fast-${i}` }));
      expect(e).toMatchObject({ code: 'CIRCUIT_OPEN', retryable: true });
      expect(e.retryAfterMs).toBeGreaterThan(0);
      expect(e.retryAfterMs).toBeLessThanOrEqual(600);
    }
    expect(fakes.mercadolibre.control.faults.hits.fail - before).toBe(5);
    // after the cooldown: one probe; it fails, the breaker opens again
    await new Promise((r) => setTimeout(r, 650));
    const probes = await Promise.all(Array.from({ length: 5 }, (_, i) => failure(services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: `probe-${i}`, deadLetter: false }))));
    expect(fakes.mercadolibre.control.faults.hits.fail - before).toBe(6);
    // the probe failed and reopened the breaker, so its own retry fails fast too
    expect(probes.map((e) => e.code)).toEqual(Array(5).fill('CIRCUIT_OPEN'));
    expect((await services.outbound.status(c)).breaker.state).toBe('open');
    // the provider recovers: the next probe succeeds and closes the breaker
    fakes.mercadolibre.control.clearFaults();
    await new Promise((r) => setTimeout(r, 650));
    const me = await services.outbound.call<{ id: number }>(c, { operation: 'getMe', input: {}, idempotencyKey: 'after' });
    expect(me.id).toBe(SELLER);
    expect((await services.outbound.status(c)).breaker).toEqual({ state: 'closed', consecutiveFailures: 0, openedAt: null });
  });

  it('with the budget lifted the breaker still opens and is honoured (no row lock per call while all is well)', async () => {
    const lifted = await node({ RATE_LIMITS: 'shopify=none' });
    const c = await connectShopify(lifted, 't-lifted', 'lifted.myshopify.com');
    await lifted.outbound.call(c, { operation: 'listLocations', input: {}, idempotencyKey: 'l-0' });
    const before = fakes.shopify.control.faults.hits.fail;
    fakes.shopify.control.fail({ status: 503, path: '/lifted.myshopify.com/admin/api' });
    try {
      await failure(lifted.outbound.call(c, { operation: 'listLocations', input: {}, idempotencyKey: 'l-1', deadLetter: false }));
      const second = await failure(lifted.outbound.call(c, { operation: 'listLocations', input: {}, idempotencyKey: 'l-2', deadLetter: false }));
      expect(second.code).toBe('CIRCUIT_OPEN');
      expect(fakes.shopify.control.faults.hits.fail - before).toBe(5);
      expect((await lifted.outbound.status(c)).breaker).toMatchObject({ state: 'open', consecutiveFailures: 5 });
      expect((await lifted.outbound.status(c)).budget.limit).toBe('none');
    } finally {
      fakes.shopify.control.clearFaults();
    }
  });

  it('stopping the door (services.stop on SIGTERM) ends a call still waiting for its budget at once', async () => {
    const slow = await node({ RATE_LIMITS: 'mercadolibre=1/min' });
    const c = await connectMercadoLibre(slow, 't-stop');
    await slow.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 's-0' });
    const waiting = slow.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 's-1' }).then(
      () => 'done',
      (err: unknown) => (err as Error).name,
    );
    await new Promise((r) => setTimeout(r, 200));
    const t = Date.now();
    await slow.outbound.stop();
    expect(await waiting).toBe('AbortError');
    expect(Date.now() - t).toBeLessThan(2_000);
  });

  it("Shopify's THROTTLED answer pauses the store's key for the restore time, and the call goes through after it", async () => {
    const c = await connectShopify(services, 't-thr', 'throttled.myshopify.com');
    fakes.shopify.control.setPlan(c.account, { maximumAvailable: 100, restoreRate: 50 });
    fakes.shopify.control.setAvailablePoints(c.account, 0);
    const n = fakes.shopify.state.calls.length;
    const started = Date.now();
    const out = await services.outbound.call<{ locations: unknown[] }>(c, { operation: 'listLocations', input: { first: 5 }, idempotencyKey: 'thr', cost: 7 });
    expect(out.locations.length).toBeGreaterThan(0);
    const calls = fakes.shopify.state.calls.slice(n).filter((x) => x.shop === c.account);
    expect(calls.map((x) => x.throttled)).toEqual([true, false]);
    // 7 points at 50/s: at least 140 ms before the second attempt
    expect(calls[1]!.at - started).toBeGreaterThanOrEqual(130);
    await services.outbound.flush();
    expect((await services.outbound.status(c)).budget.throttledCalls).toBeGreaterThanOrEqual(1);
  });

  it("Shopify's cost bucket paces the calls: with each call's cost given, a short shop is waited for instead of throttling", async () => {
    const c = await connectShopify(services, 't-cost', 'costly.myshopify.com');
    fakes.shopify.control.setPlan(c.account, { maximumAvailable: 100, restoreRate: 50 });
    const round = async (cost: number) => {
      fakes.shopify.control.setAvailablePoints(c.account, 25);
      // learns the shop's bucket from extensions.cost (about 21 points left after it)
      await services.outbound.call(c, { operation: 'listLocations', input: { first: 20 }, idempotencyKey: `cost-${cost}-0`, cost });
      const n = fakes.shopify.state.calls.length;
      await Promise.all(Array.from({ length: 6 }, (_, i) => services.outbound.call(c, { operation: 'listLocations', input: { first: 20 }, idempotencyKey: `cost-${cost}-${i + 1}`, cost })));
      return fakes.shopify.state.calls.slice(n).filter((x) => x.shop === c.account && x.throttled).length;
    };
    // without the cost (1 point each) the door lets calls through that Shopify throttles (and retries them)
    expect(await round(1)).toBeGreaterThan(0);
    // with each call's requested cost (22 points), it waits for the points: Shopify throttles none
    expect(await round(22)).toBe(0);
  });

  it('a token expiring (the fake answers 401): refreshed once, and the call goes on with the new token', async () => {
    const c = await connectShopify(services, 't-401', 'expiring.myshopify.com');
    const ref = { tenantId: 't-401', service: 'shopify', connectionId: c.account };
    const v1 = (await services.vault.describe(ref))!.version;
    fakes.shopify.control.expireTokens(c.account);
    // three calls at once: they share one refresh
    const outs = await Promise.all(
      Array.from({ length: 3 }, (_, i) => services.outbound.call<{ locations: unknown[] }>(c, { operation: 'listLocations', input: {}, idempotencyKey: `exp-${i}` })),
    );
    for (const o of outs) expect(o.locations.length).toBeGreaterThan(0);
    expect((await services.vault.describe(ref))!.version).toBe(v1 + 1);
    // (read from the table: the partition may be owned by the other node of the breaker test)
    await waitFor('the connection recorded its refresh', async () => (await database.pool.query(`SELECT snapshot->'context'->>'lastRefreshAt' AS at FROM actors WHERE type = 'integration' AND id = $1`, [`t-401:shopify:${c.account}`])).rows[0]?.at);
    expect(await parked(`t-401:shopify:${c.account}`)).toEqual([]);
  });

  it('Retry-After is honoured: the second attempt waits at least what the provider asked, and the key pauses', async () => {
    const c = await connectMercadoLibre(services, 't-429');
    fakes.mercadolibre.control.seed(SELLER, [{ sku: 'RA-1', quantity: 7 }]);
    const n = mlCalls('/users/me').length;
    fakes.mercadolibre.control.throttle({ count: 1, retryAfterSeconds: 1, path: '/users/me' });
    const started = Date.now();
    await services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 'ra' });
    const calls = mlCalls('/users/me').slice(n);
    expect(calls).toHaveLength(1); // the throttled one was answered by the fault, the retry reached the API
    expect(calls[0]!.at - started).toBeGreaterThanOrEqual(950);
    await services.outbound.flush();
    expect((await services.outbound.status(c)).budget.throttledCalls).toBeGreaterThanOrEqual(1);
  });

  it('a terminal failure is not retried and is parked as a dead letter; replay runs it again through the door', async () => {
    const c = await connectMercadoLibre(services, 't-dl');
    const n = mlCalls('/items/MLA999').length;
    const e = await failure(services.outbound.call(c, { operation: 'getItem', input: { itemId: 'MLA999' }, idempotencyKey: 'dl-1', subject: { sku: 'SKU-999' } }));
    expect(e).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    expect(mlCalls('/items/MLA999').length - n).toBe(1);
    const rows = await parked(`t-dl:mercadolibre:${SELLER}`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      subject: 'integration.mercadolibre.getItem',
      message_id: 'dl-1',
      attempts: 1,
      headers: { 'Concord-Tenant': 't-dl', 'Concord-Provider': 'mercadolibre', 'Concord-Subject-sku': 'SKU-999', 'Concord-Error-Code': 'NOT_FOUND' },
      replayed_at: null,
    });
    expect(rows[0].error).toMatch(/^NOT_FOUND/);
    // nothing secret in the dead letter
    const secret = (await services.vault.get({ tenantId: 't-dl', service: 'mercadolibre', connectionId: String(SELLER) })).secret;
    for (const v of Object.values(secret)) expect(JSON.stringify(rows[0])).not.toContain(v);
    expect((await services.outbound.status(c)).deadLetters).toBe(1);

    // a retryable failure uses its 3 attempts, then is parked
    const before = fakes.mercadolibre.control.faults.hits.fail;
    fakes.mercadolibre.control.fail({ status: 500, count: 3, path: '/items/MLA998' });
    const e2 = await failure(services.outbound.call(c, { operation: 'getItem', input: { itemId: 'MLA998' }, idempotencyKey: 'dl-2', subject: { sku: 'SKU-998' } }));
    expect(e2.code).toBe('UNAVAILABLE');
    expect(fakes.mercadolibre.control.faults.hits.fail - before).toBe(3);
    expect((await parked(`t-dl:mercadolibre:${SELLER}`)).map((r) => [r.message_id, r.attempts])).toEqual([
      ['dl-1', 1],
      ['dl-2', 3],
    ]);

    // replay: the item exists now; the replayed call reaches the provider and succeeds
    const [seeded] = fakes.mercadolibre.control.seed(SELLER, [{ sku: 'SKU-998', quantity: 4 }]);
    const item = { id: seeded!.itemId };
    const letter = (await database.pool.query(`SELECT id FROM dead_letters WHERE message_id = 'dl-2'`)).rows[0].id as string;
    await database.pool.query(`UPDATE dead_letters SET payload = jsonb_set(payload, '{call,input,itemId}', to_jsonb($2::text)) WHERE id = $1`, [letter, item.id]);
    const m = mlCalls(`/items/${item.id}`).length;
    const replayed = await services.deadLetters.replay({ principal: { sub: 'op', role: 'operator', tenantId: null }, requestId: 'test', idempotency: null, reason: 'the item id was wrong' }, Number(letter));
    expect(replayed.replayedAt).not.toBeNull();
    await waitFor('the replayed call reached the provider', () => mlCalls(`/items/${item.id}`).length > m);
    // replayed once: a second replay answers the row and runs nothing
    await services.deadLetters.replay({ principal: { sub: 'op', role: 'operator', tenantId: null }, requestId: 'test', idempotency: null, reason: 'the item id was wrong' }, Number(letter));
    await new Promise((r) => setTimeout(r, 100));
    expect(mlCalls(`/items/${item.id}`).length).toBe(m + 1);
    expect((await services.outbound.status(c)).deadLetters).toBe(1);
  });

  it('a revoked grant (REAUTHORIZATION_REQUIRED) is terminal and marks the connection', async () => {
    const c = await connectMercadoLibre(services, 't-revoked');
    fakes.mercadolibre.control.faults.fail({ status: 401, count: 1, path: '/users/me', body: { message: 'invalid_client', error: 'invalid_client', status: 401, cause: [] } });
    const e = await failure(services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: 'rev', deadLetter: false }));
    expect(e.code).toBe('REAUTHORIZATION_REQUIRED');
    await waitFor('reauthorization_required', async () => (await services.integrations.stateOf('t-revoked', 'mercadolibre', String(SELLER))) === 'reauthorization_required');
  });
});
