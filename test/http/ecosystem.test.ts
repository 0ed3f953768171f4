import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { ecosystemType } from '../../machines/ecosystem/index.js';
import { integrationType } from '../../machines/integration/index.js';
import type { Database } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { startGenericFake, type GenericFake } from '../../simulator/fakes/generic.js';
import { generateTestPki, hasOpenssl, type TestPki } from '../../simulator/fakes/tls.js';
import builtinTiers from '../../services/ecosystem/tiers.json' with { type: 'json' };
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

const SECRET = 'test-secret-0123456789-0123456789-abcdef';
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const API_KEY = `key-${randomBytes(12).toString('hex')}`;
const OTHER_KEY = `key2-${randomBytes(12).toString('hex')}`;
const WRONG_KEY = `wrong-${randomBytes(12).toString('hex')}`;
const CLIENT_SECRET = `cs-${randomBytes(12).toString('hex')}`;
const WRONG_SECRET = `bad-${randomBytes(12).toString('hex')}`;
const E = '/api/v1/ecosystem';

let api: GenericFake;
let flappy: GenericFake;
let counted: GenericFake;
let mtls: GenericFake | undefined;
let pki: TestPki | undefined;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const logLines: string[] = [];
const log = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }));
const answers: string[] = [];
const healthEvents = new Map<string, { name: string; status: string }>(); // by message id: delivery is at least once

const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? '-'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
const operator = () => token('operator');
const vendor = (t: string) => token('vendor', t);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, p: string, o: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const res = await app.request(p, { method, headers, body });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, body: text ? JSON.parse(text) : null, text };
}

const whoami = { path: '/whoami', expectStatus: 200 };
const apiKeyBody = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  platform: 'databricks',
  template: 'data-platform',
  tier: 'professional',
  authPattern: 'api_key',
  credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' },
  config: { baseUrl: `${api.url}/v1`, healthCheck: whoami },
  ...over,
});
const rows = async (sql: string, params: unknown[] = []) => (await database.pool.query(sql, params)).rows;

beforeAll(async () => {
  api = await startGenericFake({ auth: { apiKey: { keys: [API_KEY], header: 'x-api-key', query: 'api_key' }, clientCredentials: { clients: [{ id: 'svc-1', secret: CLIENT_SECRET, scopes: ['read', 'write'] }] } } });
  flappy = await startGenericFake({ auth: { apiKey: { keys: [API_KEY] } } });
  counted = await startGenericFake({ auth: { apiKey: { keys: [OTHER_KEY], query: 'api_key' } } });
  if (hasOpenssl()) {
    pki = generateTestPki();
    mtls = await startGenericFake({ tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert }, auth: { mtls: true } });
  }
  // the tier table is configuration: a test table with short intervals (a new table is a file, not code)
  const dir = mkdtempSync(path.join(tmpdir(), 'concord-tiers-'));
  const tiers = structuredClone(builtinTiers);
  tiers.tiers.enterprise.healthCheckIntervalMs = 150;
  tiers.tiers.enterprise.unhealthyAfter = 2;
  tiers.tiers.enterprise.degradedLatencyMs = 10_000; // a slow check on a loaded test machine is not what this file tests
  tiers.tiers.professional.healthCheckIntervalMs = 60_000;
  tiers.tiers.community.healthCheckIntervalMs = 600_000;
  writeFileSync(path.join(dir, 'tiers.json'), JSON.stringify(tiers));
  database = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>();
  runtime = await testRuntime(database, {
    types: [integrationType, ecosystemType],
    env: { CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', ECOSYSTEM_TIERS_FILE: path.join(dir, 'tiers.json'), ECOSYSTEM_USAGE_FLUSH_MS: '200' },
    connectors,
    log,
    run: { timers: true, relay: true },
  });
  services = createServices({ runtime, log, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  runtime.bus.subscribe('concord.events.IntegrationHealthChanged', (m) => void healthEvents.set(m.messageId, m.data as { name: string; status: string }));
  await runtime.start();
  await services.start();
  app = createApp({ services, log, jwtSecret: SECRET });
}, 60_000);

afterAll(async () => {
  await services?.stop();
  await runtime?.stop();
  await database?.close();
  await api?.close();
  await flappy?.close();
  await counted?.close();
  await mtls?.close();
});

describe('partner registry: registration with each auth pattern against local fakes (real PostgreSQL, real HTTP)', () => {
  it('the OpenAPI document describes the registry routes', async () => {
    const doc = (await call('GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths).filter((p: string) => p.startsWith(E))).toEqual(
      expect.arrayContaining([`${E}/integrations`, `${E}/integrations/{name}`, `${E}/integrations/{name}/health`, `${E}/integrations/{name}/usage`, `${E}/usage`, `${E}/audit`, `${E}/compliance`, `${E}/templates`]),
    );
  });

  it('lists the four templates (data files)', async () => {
    const r = await call('GET', `${E}/templates`, { token: vendor('v1') });
    expect(r.status).toBe(200);
    expect(r.body.data.map((t: { id: string }) => t.id)).toEqual(['cloud-provider', 'data-platform', 'mlops-platform', 'monitoring-platform']);
    expect(r.body.data[1]).toMatchObject({ authPatterns: expect.any(Array), requiredConfig: ['baseUrl'], healthCheck: { path: '/health', expectStatus: 200 }, defaultFeatures: ['data_processing'] });
  });

  it('API key: checked once against the service, stored in the vault, never answered; the first check makes it healthy', async () => {
    const r = await call('POST', `${E}/integrations`, { token: vendor('v1'), body: apiKeyBody('databricks-prod') });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: 'v1:databricks-prod', ownerId: 'v1', tier: 'professional', authPattern: 'api_key', auth: { in: 'header', name: 'x-api-key' }, features: ['data_processing'], status: 'active', source: 'registry', health: 'healthy', compliance: [] });
    expect(r.text).not.toContain(API_KEY);
    expect(api.state.calls.some((c) => c.path === '/v1/whoami' && c.status === 200 && c.caller?.startsWith('key:'))).toBe(true);
    expect((await services.vault.get({ tenantId: 'v1', service: 'ecosystem', connectionId: 'databricks-prod' })).secret).toEqual({ apiKey: API_KEY });
    const again = await call('POST', `${E}/integrations`, { token: vendor('v1'), body: apiKeyBody('databricks-prod') });
    expect(again.status).toBe(409);
    // with an Idempotency-Key a retry answers the first registration
    const keyed = async () => {
      const body = JSON.stringify(apiKeyBody('databricks-dev'));
      const res = await app.request(`${E}/integrations`, { method: 'POST', headers: { authorization: `Bearer ${vendor('v1')}`, 'content-type': 'application/json', 'idempotency-key': 'reg-1' }, body });
      const text = await res.text();
      answers.push(text);
      return { status: res.status, replayed: res.headers.get('idempotent-replayed'), id: JSON.parse(text).id };
    };
    expect(await keyed()).toEqual({ status: 201, replayed: null, id: 'v1:databricks-dev' });
    expect(await keyed()).toEqual({ status: 201, replayed: 'true', id: 'v1:databricks-dev' });
    expect(JSON.stringify(await rows('SELECT body FROM idempotency_keys'))).not.toContain(API_KEY);
    expect((await call('DELETE', `${E}/integrations/databricks-dev`, { token: vendor('v1') })).status).toBe(200);
  });

  it('a refused API key is a 400 problem and stores nothing', async () => {
    const r = await call('POST', `${E}/integrations`, { token: vendor('v1'), body: apiKeyBody('refused', { credentials: { apiKey: WRONG_KEY, in: 'header', name: 'x-api-key' } }) });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('refused the credentials');
    expect(await rows(`SELECT 1 FROM ecosystem_integrations WHERE name = 'refused'`)).toEqual([]);
    expect(await rows(`SELECT 1 FROM integration_credentials WHERE connection_id = 'refused'`)).toEqual([]);
  });

  it('template validation: unknown template, an auth pattern or feature it does not allow, missing config are 400 problems', async () => {
    const bad = async (over: Record<string, unknown>) => (await call('POST', `${E}/integrations`, { token: vendor('v1'), body: apiKeyBody('x1', over) })).status;
    expect(await bad({ template: 'nope' })).toBe(400);
    expect(await bad({ template: 'cloud-provider', platform: 'aws' })).toBe(400); // cloud-provider takes no api_key
    expect(await bad({ features: ['teleportation'] })).toBe(400);
    expect(await bad({ platform: 'snowflakes' })).toBe(400);
    expect(await bad({ config: { healthCheck: whoami } })).toBe(400);
    expect(await bad({ tier: 'platinum' })).toBe(400);
    // a credential repeated in config (stored and answered in clear) is refused
    expect(await bad({ config: { baseUrl: `${api.url}/v1`, healthCheck: whoami, token: API_KEY } })).toBe(400);
    expect((await call('POST', `${E}/integrations`, { token: operator(), body: apiKeyBody('x1', { ownerId: 'has:colon' }) })).status).toBe(400);
    expect(await rows(`SELECT 1 FROM ecosystem_integrations WHERE name = 'x1'`)).toEqual([]);
  });

  it('OAuth client credentials (an operator registering for v1): the token endpoint is asked, the check passes; a wrong secret is refused', async () => {
    const body = apiKeyBody('erp-oauth', { tier: 'community', authPattern: 'oauth2', credentials: { tokenUrl: `${api.url}/oauth/token`, clientId: 'svc-1', clientSecret: CLIENT_SECRET, scopes: ['read', 'write'] }, ownerId: 'v1' });
    const r = await call('POST', `${E}/integrations`, { token: operator(), body });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ ownerId: 'v1', authPattern: 'oauth2', auth: { tokenUrl: `${api.url}/oauth/token`, scopes: ['read', 'write'] }, health: 'healthy' });
    expect(r.text).not.toContain(CLIENT_SECRET);
    expect([...api.state.tokens.values()].some((t) => t.clientId === 'svc-1')).toBe(true);
    expect(api.state.calls.some((c) => c.path === '/v1/whoami' && c.caller === 'client:svc-1')).toBe(true);
    // checked at registration: a community tier holding a production scope (write) is a finding
    expect(r.body.compliance).toEqual([expect.objectContaining({ policy: 'community_production_scopes', name: 'erp-oauth', fix: expect.stringContaining('tier') })]);
    const refused = await call('POST', `${E}/integrations`, { token: operator(), body: { ...body, name: 'erp-wrong', credentials: { ...body.credentials, clientSecret: WRONG_SECRET } } });
    expect(refused.status).toBe(400);
    expect(await rows(`SELECT 1 FROM ecosystem_integrations WHERE name = 'erp-wrong'`)).toEqual([]);
    const noOwner = await call('POST', `${E}/integrations`, { token: operator(), body: { ...body, name: 'erp-2', ownerId: undefined } });
    expect(noOwner.status).toBe(400);
  });

  it('certificate (mutual TLS with a test CA): the client certificate is parsed (expiry recorded), the check passes over mTLS; a key of another certificate is a 400', async (ctx) => {
    if (!pki || !mtls) return ctx.skip();
    const body = {
      name: 'mlflow-mtls',
      platform: 'mlflow',
      template: 'mlops-platform',
      tier: 'enterprise',
      authPattern: 'certificate',
      credentials: { certPem: pki.client.cert, keyPem: pki.client.key, caPem: pki.ca.cert },
      config: { baseUrl: `${mtls.url}/v1`, healthCheck: whoami },
    };
    const r = await call('POST', `${E}/integrations`, { token: vendor('v2'), body });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ authPattern: 'certificate', health: 'healthy', auth: { certificate: { subject: 'CN=concord-client', issuer: 'CN=Concord Test CA' } } });
    expect(r.body.credentials.certificateExpiresAt).toEqual(expect.any(String));
    expect(mtls.state.calls.some((c) => c.path === '/v1/whoami' && c.caller === 'cert:concord-client' && c.status === 200)).toBe(true);
    // the test certificates live two days: expiring within 30 days is a finding, named with its fix
    expect(r.body.compliance).toEqual([expect.objectContaining({ policy: 'certificate_expiry', severity: 'critical', fix: expect.stringContaining('renewed client certificate') })]);
    const mismatched = await call('POST', `${E}/integrations`, { token: vendor('v2'), body: { ...body, name: 'mlflow-bad', credentials: { ...body.credentials, keyPem: pki.rogue.key } } });
    expect(mismatched.status).toBe(400);
    expect(mismatched.text).not.toContain('PRIVATE KEY');
    // a certificate from a CA the server does not trust: the handshake fails, so it is registered unhealthy-bound, not healthy
    const rogue = await call('POST', `${E}/integrations`, { token: vendor('v2'), body: { ...body, name: 'mlflow-rogue', credentials: { certPem: pki.rogue.cert, keyPem: pki.rogue.key, caPem: pki.ca.cert } } });
    expect(rogue.status).toBe(201);
    expect(rogue.body.health).not.toBe('healthy');
    expect((await call('DELETE', `${E}/integrations/mlflow-rogue`, { token: vendor('v2') })).status).toBe(200);
  });
});

describe('health monitoring on durable actor timers', () => {
  it('a fake going down and up: degraded, unhealthy, healthy again; each transition published as IntegrationHealthChanged; /health summarises', async () => {
    const r = await call('POST', `${E}/integrations`, { token: vendor('v3'), body: apiKeyBody('flappy', { tier: 'enterprise', config: { baseUrl: `${flappy.url}/v1`, healthCheck: whoami } }) });
    expect(r.status).toBe(201);
    const health = async () => (await call('GET', `${E}/integrations/flappy/health`, { token: vendor('v3') })).body;
    // checks keep coming on the tier's interval (150 ms in this table)
    await waitFor('three scheduled checks', async () => (await health()).availability.last24h.checks >= 3, 10_000);
    expect(await health()).toMatchObject({ status: 'healthy', consecutiveFailures: 0, checkIntervalMs: 150, sla: { target: 99.9, met24h: true } });
    await flappy.control.down();
    // the status and the availability figures are recorded apart (the monitor's record, the usage meter): wait for both
    const down = await waitFor('unhealthy, and the SLA missed', async () => {
      const h = await health();
      return h.status === 'unhealthy' && h.sla.met24h === false ? h : null;
    }, 10_000);
    expect(down.consecutiveFailures).toBeGreaterThanOrEqual(2);
    expect(down.lastError).toMatchObject({ code: 'NETWORK' });
    expect(down.sla.met24h).toBe(false);
    const h = await call('GET', '/health');
    expect(h.body.integrations).toMatchObject({ unhealthy: expect.any(Number) });
    expect(h.body.integrations.unhealthy).toBeGreaterThanOrEqual(1);
    const compliance = await call('GET', `${E}/compliance?policy=sla_breach`, { token: vendor('v3') });
    expect(compliance.body.findings).toEqual([expect.objectContaining({ name: 'flappy', policy: 'sla_breach', fix: expect.any(String) })]);
    await flappy.control.up();
    await waitFor('healthy again', async () => (await health()).status === 'healthy', 10_000);
    const mine = () => [...healthEvents.values()].filter((e) => e.name === 'flappy').map((e) => e.status);
    await waitFor('events published', () => mine().at(-1) === 'healthy', 5_000);
    expect(mine()).toEqual(['healthy', 'degraded', 'unhealthy', 'healthy']);
    // deactivated: the checks stop
    expect((await call('POST', `${E}/integrations/flappy/deactivate`, { token: vendor('v3') })).body.status).toBe('inactive');
    const before = flappy.state.calls.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(flappy.state.calls.length - before).toBeLessThanOrEqual(1); // at most the check that was in flight
  });
});

describe('crash between a row and its actor', () => {
  it('reconcile registers an active row whose actor never heard of it, and deletes an actor whose row is gone', async () => {
    expect((await call('POST', `${E}/integrations`, { token: vendor('v8'), body: apiKeyBody('kept') })).status).toBe(201);
    // as if the process died after the row committed and before the actor's event: a row, its credentials, no actor
    await database.pool.query(
      `INSERT INTO ecosystem_integrations (id, tenant_id, name, platform, template, tier, features, auth_pattern, auth, config, credentials_set_at, credentials_version)
       SELECT 'v8:orphan', tenant_id, 'orphan', platform, template, tier, features, auth_pattern, auth, config, now(), 1 FROM ecosystem_integrations WHERE id = 'v8:kept'`,
    );
    await services.vault.put({ tenantId: 'v8', service: 'ecosystem', connectionId: 'orphan' }, { apiKey: API_KEY });
    // and a row deleted whose actor kept running
    await database.pool.query(`DELETE FROM ecosystem_integrations WHERE id = 'v8:kept'`);
    expect(await services.ecosystem.registry.reconcile()).toBe(2);
    const status = async (id: string) => (await rows(`SELECT status FROM actors WHERE type = 'ecosystem' AND id = $1`, [id]))[0]?.status;
    expect(await status('v8:orphan')).toBe('ACTIVE');
    expect(await status('v8:kept')).toBe('DELETED');
    expect(await services.ecosystem.registry.reconcile()).toBe(0);
    await call('POST', `${E}/integrations/orphan/health/check`, { token: vendor('v8') });
    await waitFor('the orphan checked', async () => (await call('GET', `${E}/integrations/orphan/health`, { token: vendor('v8') })).body.status === 'healthy', 10_000);
  });
});

describe('usage analytics', () => {
  it('usage figures equal the calls the fake saw (checks and requests, errors counted), by hour and by day, and after the flush', async () => {
    const r = await call('POST', `${E}/integrations`, {
      token: vendor('v4'),
      body: apiKeyBody('counted', { tier: 'community', credentials: { apiKey: OTHER_KEY, in: 'query', name: 'api_key' }, config: { baseUrl: `${counted.url}/v1`, healthCheck: whoami } }),
    });
    expect(r.status).toBe(201);
    counted.control.seed('items', [{ id: 'a' }, { id: 'b' }]);
    for (let i = 0; i < 6; i++) await services.ecosystem.calls.request('v4:counted', { path: '/items' }, AbortSignal.timeout(5000));
    await expect(services.ecosystem.calls.request('v4:counted', { path: '/items/missing' }, AbortSignal.timeout(5000))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const seen = counted.state.calls.length;
    const seenErrors = counted.state.calls.filter((c) => c.status >= 400).length;
    expect(seen).toBe(8);
    const hour = await call('GET', `${E}/integrations/counted/usage?granularity=hour`, { token: vendor('v4') });
    expect(hour.status).toBe(200);
    expect(hour.body.totals).toMatchObject({ calls: seen, errors: seenErrors, budgetUnits: seen });
    expect(hour.body.buckets.reduce((s: number, b: { calls: number }) => s + b.calls, 0)).toBe(seen);
    await services.ecosystem.meter.flush();
    const stored = await rows(`SELECT sum(calls)::int AS calls, sum(errors)::int AS errors FROM ecosystem_usage_hourly WHERE integration_id = 'v4:counted'`);
    expect(stored[0]).toEqual({ calls: seen, errors: seenErrors });
    const day = await call('GET', `${E}/integrations/counted/usage?granularity=day`, { token: vendor('v4') });
    expect(day.body.totals).toMatchObject({ calls: seen, errors: seenErrors });
    expect(day.body.buckets.every((b: { start: string }) => b.start.endsWith('T00:00:00.000Z'))).toBe(true);
    const rollup = await call('GET', `${E}/usage?groupBy=provider`, { token: operator() });
    expect(rollup.body.data.find((s: { key: string }) => s.key === 'databricks').totals.calls).toBeGreaterThanOrEqual(seen);
    const own = await call('GET', `${E}/usage`, { token: vendor('v4') });
    expect(own.body.data.map((s: { key: string }) => s.key)).toEqual(['v4:counted']);
    expect((await call('GET', `${E}/usage?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z`, { token: vendor('v4') })).status).toBe(400);
  });
});

describe('governance: audit and role-based access', () => {
  it('every change writes an audit record (who, when, before, after): register, tier change, rotation, deactivate, activate, delete', async () => {
    const name = 'audited';
    expect((await call('POST', `${E}/integrations`, { token: vendor('v5'), body: apiKeyBody(name) })).status).toBe(201);
    const tier = await call('PATCH', `${E}/integrations/${name}`, { token: vendor('v5'), body: { tier: 'enterprise' } });
    expect(tier.status).toBe(200);
    expect(tier.body.tier).toBe('enterprise');
    const rotated = await call('PATCH', `${E}/integrations/${name}`, { token: operator(), body: { credentials: { apiKey: API_KEY, in: 'query', name: 'api_key' } } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.credentials.version).toBe(2);
    expect((await call('POST', `${E}/integrations/${name}/deactivate`, { token: vendor('v5') })).status).toBe(200);
    expect((await call('POST', `${E}/integrations/${name}/activate`, { token: vendor('v5') })).status).toBe(200);
    expect((await call('DELETE', `${E}/integrations/${name}`, { token: vendor('v5') })).status).toBe(200);
    expect(await rows(`SELECT 1 FROM integration_credentials WHERE tenant_id = 'v5'`)).toEqual([]);
    const audit = await call('GET', `${E}/audit?name=${name}&limit=50`, { token: vendor('v5') });
    expect(audit.status).toBe(200);
    const trail = [...audit.body.data].reverse();
    expect(trail.map((e: { action: string }) => e.action)).toEqual([
      'integration.registered',
      'integration.updated',
      'integration.updated',
      'integration.deactivated',
      'integration.activated',
      'integration.deleted',
    ]);
    expect(trail[1]).toMatchObject({ who: { sub: 'vendor@v5', role: 'vendor', tenantId: 'v5' }, before: { tier: 'professional' }, after: { tier: 'enterprise', changed: ['tier'] } });
    expect(trail[2]).toMatchObject({ who: { role: 'operator' }, before: { auth: { in: 'header' }, credentials: { version: 1 } }, after: { auth: { in: 'query' }, credentials: { version: 2 } } });
    expect(trail[5].after).toEqual({ credentials: 'revoked' });
    const byOperator = await call('GET', `${E}/audit?actor=operator@-&ownerId=v5`, { token: operator() });
    expect(byOperator.body.data.map((e: { action: string }) => e.action)).toEqual(['integration.updated']);
  });

  it('revoking credentials forgets them (vault row gone), deactivates, is audited; activation waits for new credentials', async () => {
    expect((await call('POST', `${E}/integrations`, { token: vendor('v7'), body: apiKeyBody('revoked') })).status).toBe(201);
    const r = await call('POST', `${E}/integrations/revoked/credentials/revoke`, { token: vendor('v7') });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'inactive', credentials: { version: 1, revokedAt: expect.any(String) } });
    expect(await rows(`SELECT 1 FROM integration_credentials WHERE tenant_id = 'v7'`)).toEqual([]);
    expect((await call('POST', `${E}/integrations/revoked/activate`, { token: vendor('v7') })).status).toBe(409);
    const renewed = await call('PATCH', `${E}/integrations/revoked`, { token: vendor('v7'), body: { credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.credentials).toMatchObject({ version: 1, revokedAt: null });
    expect((await call('POST', `${E}/integrations/revoked/activate`, { token: vendor('v7') })).body.status).toBe('active');
    const trail = (await call('GET', `${E}/audit?name=revoked`, { token: vendor('v7') })).body.data.map((e: { action: string }) => e.action).reverse();
    expect(trail).toEqual(['integration.registered', 'integration.credentials_revoked', 'integration.credentials_rotated', 'integration.activated']);
  });

  it('a tenant never sees another tenant\'s integration: 404 on read, health, usage, update, delete; lists, audit and compliance hold only its own', async () => {
    const other = vendor('v9');
    for (const [m, p] of [
      ['GET', `${E}/integrations/databricks-prod`],
      ['GET', `${E}/integrations/databricks-prod/health`],
      ['GET', `${E}/integrations/databricks-prod/usage`],
      ['POST', `${E}/integrations/databricks-prod/deactivate`],
      ['DELETE', `${E}/integrations/databricks-prod`],
    ] as const) {
      const r = await call(m, p, { token: other });
      expect(r.status, `${m} ${p}`).toBe(404);
    }
    expect((await call('PATCH', `${E}/integrations/databricks-prod`, { token: other, body: { tier: 'community' } })).status).toBe(404);
    expect((await call('GET', `${E}/integrations`, { token: other })).body.data).toEqual([]);
    expect((await call('GET', `${E}/audit`, { token: other })).body.data).toEqual([]);
    expect((await call('GET', `${E}/audit?ownerId=v1`, { token: other })).body.data).toEqual([]);
    expect((await call('GET', `${E}/compliance`, { token: other })).body.findings).toEqual([]);
    expect((await call('POST', `${E}/integrations`, { token: other, body: { ...apiKeyBody('steal'), ownerId: 'v1' } })).status).toBe(403);
    const mine = await call('GET', `${E}/integrations`, { token: vendor('v1') });
    expect(mine.body.data.map((i: { id: string }) => i.id)).toEqual(['v1:databricks-prod', 'v1:erp-oauth']);
    const all = await call('GET', `${E}/integrations?tier=professional&feature=data_processing`, { token: operator() });
    expect(all.body.data.map((i: { id: string }) => i.id)).toContain('v1:databricks-prod');
    expect(all.body.data.every((i: { tier: string }) => i.tier === 'professional')).toBe(true);
  });

  it('marketplace connections appear in the list (source marketplace), read-only here', async () => {
    const c = await call('POST', '/api/integrations/generic/auth', { token: vendor('v6'), body: { name: 'inventory-api', baseUrl: `${api.url}/v1`, healthCheck: whoami, credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } } });
    expect(c.status).toBe(200);
    const list = await call('GET', `${E}/integrations?source=marketplace`, { token: vendor('v6') });
    expect(list.body.data).toEqual([expect.objectContaining({ id: 'v6:generic:inventory-api', name: 'inventory-api', platform: 'generic', source: 'marketplace', health: 'healthy', status: 'active' })]);
    expect((await call('DELETE', `${E}/integrations/inventory-api`, { token: vendor('v6') })).status).toBe(400);
    // the tier as data for the outbound door: a registered integration's own, a marketplace connection's the table's marketplaceTier
    expect(await services.ecosystem.tierOf('v1', 'erp-oauth')).toMatchObject({ name: 'community', rateBudgetShare: 0.1, slaTarget: null });
    expect(await services.ecosystem.tierOf('v6', 'generic')).toMatchObject({ name: 'professional', rateBudgetShare: 0.3 });
  });

  it('compliance: credentials older than the rotation period are a finding naming the integration and the fix', async () => {
    await database.pool.query(`UPDATE ecosystem_integrations SET credentials_set_at = now() - interval '120 days' WHERE id = 'v1:databricks-prod'`);
    const r = await call('GET', `${E}/compliance?policy=credentials_rotation`, { token: operator() });
    expect(r.body.findings).toEqual([expect.objectContaining({ integrationId: 'v1:databricks-prod', name: 'databricks-prod', ownerId: 'v1', policy: 'credentials_rotation', fix: expect.stringContaining('rotate') })]);
    const rotated = await call('PATCH', `${E}/integrations/databricks-prod`, { token: vendor('v1'), body: { credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } } });
    expect(rotated.body.compliance).toEqual([]);
  });

  it('no secret in any answer, audit row, stored row, actor snapshot, journal entry or log line', async () => {
    const secrets = [API_KEY, OTHER_KEY, WRONG_KEY, CLIENT_SECRET, WRONG_SECRET, ...(pki ? [pki.client.key, pki.rogue.key].map((k) => k.split('\n')[1]!) : [])];
    const dump = [
      ...answers,
      ...logLines,
      JSON.stringify(await rows('SELECT * FROM audit_log')),
      JSON.stringify(await rows('SELECT * FROM ecosystem_integrations')),
      JSON.stringify(await rows(`SELECT snapshot FROM actors WHERE type IN ('ecosystem', 'integration')`)),
      JSON.stringify(await rows('SELECT event FROM journal')),
      JSON.stringify(await rows('SELECT metadata FROM integration_credentials')),
    ].join('\n');
    expect(await rows(`SELECT count(*)::int AS n FROM audit_log WHERE object_type = 'ecosystem.integration'`)).toEqual([{ n: expect.any(Number) }]);
    for (const s of secrets) expect(dump.includes(s), `a secret leaked (${s.slice(0, 6)}…)`).toBe(false);
  });
});
