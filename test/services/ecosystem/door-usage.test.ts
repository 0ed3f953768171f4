import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../http/app.js';
import { signToken } from '../../../http/auth/jwt.js';
import type { ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { ecosystemType } from '../../../machines/ecosystem/index.js';
import { integrationType } from '../../../machines/integration/index.js';
import type { Database } from '../../../runtime/db.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { createServices, type Services } from '../../../services/index.js';
import type { ConnectionRef } from '../../../services/integrations/outbound/index.js';
import { DEMO_ML_SELLER, startMarketplaceFakes, type MarketplaceFakes } from '../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';

/**
 * The partner registry and the outbound door / event delivery: usage analytics count the sync's
 * calls through the door and the events delivered to a registered integration (in memory: no
 * row until the flush), and the door holds a registered connection to its tier's share of the
 * provider's budget (services/ecosystem/tiers.json: community 0.1).
 */

const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const SECRET = randomBytes(32).toString('hex');
const vendor = (tenantId: string) => ({ sub: 'v', role: 'vendor' as const, tenantId });
const operator = signToken({ sub: 'op', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3_600 }, SECRET);
const HOUR = 3_600_000;

let fakes: MarketplaceFakes;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;

async function consent(url: string): Promise<Record<string, string>> {
  const res = await fetch(url, { redirect: 'manual' });
  return Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
}

async function connect(tenantId: string): Promise<ConnectionRef> {
  const a = await services.integrations.authorize(vendor(tenantId), 'mercadolibre', {});
  await services.integrations.callback('mercadolibre', await consent(a.authorizationUrl));
  return { tenantId, provider: 'mercadolibre', account: String(DEMO_ML_SELLER) };
}

/** A registry row as the registry writes it (its registration is tested in test/http/ecosystem.test.ts). */
async function registered(tenantId: string, name: string, platform: string, tier: string): Promise<string> {
  const id = `${tenantId}:${name}`;
  await database.pool.query(
    `INSERT INTO ecosystem_integrations (id, tenant_id, name, platform, template, tier, auth_pattern, auth, config, credentials_set_at, credentials_version)
     VALUES ($1, $2, $3, $4, 'data-platform', $5, 'api_key', '{}', '{}', now(), 1)`,
    [id, tenantId, name, platform, tier],
  );
  return id;
}

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>();
  runtime = await testRuntime(database, {
    types: [integrationType, ecosystemType],
    connectors,
    env: {
      ...fakes.env,
      PUBLIC_BASE_URL: 'http://concord.test',
      CREDENTIALS_KEYS: KEYS,
      JWT_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      EVENT_DELIVERY_POLL_MS: '20',
      // nothing is flushed during the test unless it flushes: the counting is in memory
      ECOSYSTEM_USAGE_FLUSH_MS: '600000',
      // 10 calls/s, burst 10: the bucket holds 9 (see connectors/kit/rate-limit.ts); a community share (0.1) holds 1, refilled at ~1/s
      RATE_LIMITS: 'mercadolibre=10/s:10',
    },
    run: { timers: true, relay: true },
  });
  services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: true, housekeeping: false } });
  await runtime.start();
  await services.start();
  app = createApp({ services, log: testLog, jwtSecret: SECRET });
});

afterAll(async () => {
  await services?.stop();
  await runtime?.stop();
  await database?.close();
  await fakes?.close();
});

describe('usage analytics count sync calls and events delivered', () => {
  it('the calls through the outbound door (sync calls, errors, budget units) and the deliveries to a registered integration, in memory until the flush, then the same from the table', async () => {
    const c = await connect('t-use');
    const crm = await registered('t-use', 'crm', 'salesforce', 'enterprise');
    for (let i = 0; i < 5; i++) await services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: randomUUID() });
    await services.outbound.call(c, { operation: 'getItem', input: { itemId: 'MLA404' }, idempotencyKey: randomUUID(), deadLetter: false }).catch(() => undefined);
    for (let i = 0; i < 3; i++) {
      const res = await app.request('/api/v1/vendor-partner-coordination/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
        body: JSON.stringify({ eventName: 'customer.updated', sourceIntegrationId: 'src-1', targetIntegrationIds: [crm, 'not-registered'], payload: { i }, eventCategory: 'data_sync', priority: 'medium' }),
      });
      expect(res.status).toBe(202);
    }
    await waitFor('the six deliveries delivered', async () => {
      const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_deliveries WHERE status = 'delivered'`);
      return rows[0]!.n === 6;
    });
    const sync = `t-use:mercadolibre:${DEMO_ML_SELLER}`;
    const q = { from: Date.now() - HOUR, to: Date.now() + HOUR, granularity: 'hour' as const, groupBy: 'integration' as const };
    const figures = async () => {
      const series = await services.ecosystem.meter.query({ ...q, tenantId: 't-use' });
      return Object.fromEntries(series.map((s) => [s.key, s.totals]));
    };
    await waitFor('the deliveries counted', async () => (await figures())[crm]?.eventsDelivered === 3);
    const before = await figures();
    expect(before[sync]).toMatchObject({ calls: 6, syncCalls: 6, errors: 1, budgetUnits: 6, eventsDelivered: 0 });
    expect(before[crm]).toMatchObject({ calls: 0, syncCalls: 0, eventsDelivered: 3 });
    expect(Object.keys(before).sort()).toEqual([sync, crm].sort()); // a target that is no registered integration is not counted
    // no write on the hot path: nothing in the table before the flush
    expect((await database.pool.query(`SELECT 1 FROM ecosystem_usage_hourly`)).rowCount).toBe(0);
    await services.ecosystem.meter.flush();
    const { rows } = await database.pool.query<{ integration_id: string; calls: string; sync_calls: string; events_delivered: string }>(`SELECT integration_id, calls, sync_calls, events_delivered FROM ecosystem_usage_hourly ORDER BY 1`);
    expect(rows.map((r) => [r.integration_id, Number(r.calls), Number(r.sync_calls), Number(r.events_delivered)])).toEqual([[crm, 0, 0, 3], [sync, 6, 6, 0]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
    expect(await figures()).toEqual(before);
    // the roll-up by provider carries them too
    const byProvider = await services.ecosystem.meter.query({ ...q, groupBy: 'provider', tenantId: 't-use' });
    expect(byProvider.find((s) => s.key === 'mercadolibre')?.totals.syncCalls).toBe(6);
    expect(byProvider.find((s) => s.key === 'salesforce')?.totals.eventsDelivered).toBe(3);
  });
});

describe("the tier's share of the provider budget, enforced by the outbound door", () => {
  it("a community-tier integration's calls get a tenth of the budget (one token, refilled at about 1/s); an unregistered connection the whole of it", async () => {
    const timed = async (c: ConnectionRef, n: number) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: randomUUID() });
      return performance.now() - t0;
    };
    const free = await connect('t-free');
    expect(await timed(free, 4)).toBeLessThan(800); // 4 of the bucket's 9: no wait
    const community = await connect('t-com');
    await registered('t-com', 'ml-sync', 'mercadolibre', 'community');
    expect(await services.ecosystem.shareOf(community)).toBe(0.1);
    // the first call takes the share's one token; each next one waits about a second for its refill
    expect(await timed(community, 4)).toBeGreaterThan(2_500);
    const enterprise = await connect('t-ent');
    await registered('t-ent', String(DEMO_ML_SELLER), 'other', 'enterprise'); // by name: the account
    expect(await services.ecosystem.shareOf(enterprise)).toBe(0.6);
    expect(await timed(enterprise, 4)).toBeLessThan(800); // 4 of 0.6 x 9 = 5 tokens: no wait
  });
});
