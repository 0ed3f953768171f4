import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../../http/app.js';
import { signToken } from '../../../../http/auth/jwt.js';
import type { ConnectorInvoker } from '../../../../connectors/kit/contract.js';
import { integrationType } from '../../../../machines/integration/index.js';
import type { Database } from '../../../../runtime/db.js';
import type { Runtime } from '../../../../runtime/runtime.js';
import { createServices, type Services } from '../../../../services/index.js';
import type { ConnectionRef } from '../../../../services/integrations/outbound/index.js';
import { DEMO_ML_SELLER, startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { testLog, testRuntime } from '../../../helpers/runtime.js';

/**
 * The error-rate alert (over 5% of the calls of the window: IntegrationAlert published through
 * the outbox, health `degraded`; back under: `healthy`), the status route and `/metrics`. The
 * alert window is shortened to 3 s (OUTBOUND_ALERT_WINDOW_MS) and usage is counted per second
 * (OUTBOUND_STATS_WINDOW_MS) so the test is quick.
 */

const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const SECRET = randomBytes(32).toString('hex');
const vendor = (tenantId: string) => ({ sub: 'v', role: 'vendor' as const, tenantId });
const token = (tenantId: string) => signToken({ sub: `vendor@${tenantId}`, role: 'vendor', tenantId, exp: Math.floor(Date.now() / 1000) + 3_600 }, SECRET);

let fakes: MarketplaceFakes;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const alerts: Array<Record<string, unknown>> = [];

async function consent(url: string): Promise<Record<string, string>> {
  const res = await fetch(url, { redirect: 'manual' });
  return Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
}

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>();
  runtime = await testRuntime(database, {
    types: [integrationType],
    connectors,
    env: {
      ...fakes.env,
      PUBLIC_BASE_URL: 'http://concord.test',
      CREDENTIALS_KEYS: KEYS,
      JWT_SECRET: SECRET,
      OUTBOUND_RETRY_INITIAL_MS: '20',
      OUTBOUND_STATS_WINDOW_MS: '1000',
      OUTBOUND_ALERT_WINDOW_MS: '3000',
      OUTBOUND_ALERT_MIN_CALLS: '10',
      // the budget is not what this file tests: wide enough that no call waits
      RATE_LIMITS: 'mercadolibre=100/s:100',
    },
  });
  services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  runtime.bus.subscribe('concord.events.IntegrationAlert', (m) => void alerts.push(m.data as Record<string, unknown>));
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

describe('error-rate alert, status and metrics', () => {
  it('over 5% failed calls: IntegrationAlert (firing) through the outbox and health degraded; under it again: resolved and healthy', async () => {
    const a = await services.integrations.authorize(vendor('t-alert'), 'mercadolibre', {});
    await services.integrations.callback('mercadolibre', await consent(a.authorizationUrl));
    const c: ConnectionRef = { tenantId: 't-alert', provider: 'mercadolibre', account: String(DEMO_ML_SELLER) };
    // 19 good calls, 1 that fails (a 404, terminal: one attempt): 1 of 20 = 5%, not over it
    for (let i = 0; i < 19; i++) await services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: randomUUID() });
    await services.outbound.call(c, { operation: 'getItem', input: { itemId: 'MLA404' }, idempotencyKey: randomUUID(), deadLetter: false }).catch(() => undefined);
    await services.outbound.checkHealth();
    expect((await services.outbound.status(c)).health).toBe('healthy');
    expect(alerts).toEqual([]);
    // a second failure: 2 of 21, over 5%
    await services.outbound.call(c, { operation: 'getItem', input: { itemId: 'MLA405' }, idempotencyKey: randomUUID(), deadLetter: false }).catch(() => undefined);
    await services.outbound.checkHealth();
    await services.outbound.checkHealth(); // a change is published once, however often it is checked
    const s = await services.outbound.status(c);
    expect(s.health).toBe('degraded');
    expect(s.errorRate).toBeCloseTo(2 / 21, 5);
    await waitFor('IntegrationAlert published', () => alerts.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ tenantId: 't-alert', provider: 'mercadolibre', health: 'degraded', status: 'firing', threshold: 0.05, calls: 21, errors: 2 });

    // the failures leave the 3 s window; good calls keep coming: healthy again, and the alert resolves
    await new Promise((r) => setTimeout(r, 3_100));
    for (let i = 0; i < 10; i++) await services.outbound.call(c, { operation: 'getMe', input: {}, idempotencyKey: randomUUID() });
    await services.outbound.checkHealth();
    expect((await services.outbound.status(c)).health).toBe('healthy');
    await waitFor('the alert resolved', () => alerts.length === 2);
    expect(alerts[1]).toMatchObject({ tenantId: 't-alert', health: 'healthy', status: 'resolved' });
  });

  it('GET /api/integrations/:service/status shows the door figures per connection; another tenant sees none of them', async () => {
    const res = await app.request('/api/integrations/mercadolibre/status', { headers: { authorization: `Bearer ${await token('t-alert')}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { connections: Array<{ outbound: Record<string, unknown> }> };
    expect(body.connections[0]!.outbound).toMatchObject({
      budget: { limit: '100/s:100', scope: 'tenant', windowSeconds: 1 },
      breaker: { state: 'closed', consecutiveFailures: 0, openedAt: null },
      health: 'healthy',
      deadLetters: 0,
    });
    expect(typeof body.connections[0]!.outbound.errorRate).toBe('number');
    expect(body.connections[0]!.outbound.averageResponseMs).toBeGreaterThan(0);
    const other = await app.request('/api/integrations/mercadolibre/status', { headers: { authorization: `Bearer ${await token('t-other')}` } });
    expect(other.status).toBe(404);
  });

  it('/metrics has the door figures labelled by provider only', async () => {
    await services.outbound.flush();
    const text = await (await app.request('/metrics')).text();
    expect(text).toMatch(/^concord_outbound_calls_total\{provider="mercadolibre",outcome="ok"\} \d+/m);
    expect(text).toMatch(/^concord_outbound_calls_total\{provider="mercadolibre",outcome="failed"\} 2/m);
    expect(text).toMatch(/^concord_outbound_call_duration_seconds_count\{provider="mercadolibre"\} \d+/m);
    expect(text).toMatch(/^concord_outbound_breakers\{provider="mercadolibre",state="closed"\} 1/m);
    expect(text).toMatch(/^concord_outbound_error_rate\{provider="mercadolibre"\} [\d.]+/m);
    expect(text).not.toContain('t-alert');
  });
});
