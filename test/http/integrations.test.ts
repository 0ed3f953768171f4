import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { toProblem } from '../../http/problem.js';
import { integrationType, type IntegrationContext } from '../../machines/integration/index.js';
import { ManualClock } from '../../runtime/clock.js';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import type { Database } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { ConnectionService, SHOPIFY_WEBHOOK_TOPICS } from '../../services/integrations/connections.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testConfig, testRuntime } from '../helpers/runtime.js';

const SECRET = 'test-secret-0123456789-0123456789-abcdef';
const PUBLIC = 'http://concord.test';
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const SHOP = 'example.myshopify.com';
const SELLER = '146322322';

let fakes: MarketplaceFakes;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const clock = new ManualClock(Date.now());
const logLines: string[] = [];
const log = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }));
const env = () => ({ ...fakes.env, PUBLIC_BASE_URL: PUBLIC, CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url });

/** A runtime and its services over the test database, with the `integration` connector registered. */
async function node(o: { relay: boolean }) {
  const connectors = new Map<string, ConnectorInvoker>();
  const rt = await testRuntime(database, { types: [integrationType], env: env(), connectors, log, clock, run: { timers: o.relay, relay: o.relay } });
  const svc = createServices({ runtime: rt, log, clock, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  await rt.start();
  await svc.start();
  return { runtime: rt, services: svc };
}

const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? '-'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(clock.now() / 1000) + 365 * 86_400 }, SECRET);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, path: string, o: { token?: string; body?: unknown; accept?: string } = {}): Promise<{ status: number; body: any; text: string; type: string }> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.accept) headers.accept = o.accept;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* HTML */
  }
  return { status: res.status, body: parsed, text, type: res.headers.get('content-type') ?? '' };
}

/** Plays the browser: opens the authorization URL at the fake and answers the path Concord is redirected to. */
async function consent(authorizationUrl: string): Promise<string> {
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(location.origin).toBe(PUBLIC);
  return `${location.pathname}${location.search}`;
}

async function authorize(service: string, tenant: string, body: unknown) {
  const r = await call('POST', `/api/integrations/${service}/auth`, { token: token('vendor', tenant), body });
  expect(r.status).toBe(200);
  return r.body as { authorizationUrl: string; state: string; expiresAt: string };
}

/** Every token either fake ever issued. */
function issuedTokens(): string[] {
  return [
    ...fakes.shopify.state.tokens.access.keys(),
    ...fakes.shopify.state.tokens.refresh.keys(),
    ...fakes.mercadolibre.state.accessTokens.keys(),
    ...fakes.mercadolibre.state.refreshTokens.keys(),
  ];
}

const credentialRows = async (tenant: string) => (await database.pool.query('SELECT service, connection_id, version FROM integration_credentials WHERE tenant_id = $1', [tenant])).rows;
const actorOf = (id: string) => runtime.host.actor(integrationType).get(id);

beforeAll(async () => {
  fakes = await startMarketplaceFakes();
  database = await freshDatabase();
  ({ runtime, services } = await node({ relay: true }));
  app = createApp({ services, log, jwtSecret: SECRET });
});

afterAll(async () => {
  await services?.stop();
  await runtime?.stop();
  await database?.close();
  await fakes?.close();
});

describe('integrations over OAuth (real PostgreSQL, the fakes over real HTTP)', () => {
  it('Shopify: authorize, the merchant consents, the callback connects; status shows expiry and scopes, never a token', async () => {
    const a = await authorize('shopify', 'v1', { shop: SHOP, scopes: ['read_products', 'write_inventory', 'read_locations'] });
    expect(new URL(a.authorizationUrl).searchParams.get('state')).toBe(a.state);
    expect(Date.parse(a.expiresAt) - clock.now()).toBe(10 * 60_000);
    const cb = await call('GET', await consent(a.authorizationUrl), { accept: 'application/json' });
    expect(cb.status).toBe(200);
    expect(cb.body).toMatchObject({ connectionId: `v1:shopify:${SHOP}`, provider: 'shopify', account: SHOP, state: 'connected', scopes: ['read_products', 'write_inventory', 'read_locations'] });
    expect(Date.parse(cb.body.tokenExpiresAt)).toBeGreaterThan(clock.now());
    const status = await call('GET', '/api/integrations/shopify/status', { token: token('vendor', 'v1') });
    expect(status.status).toBe(200);
    expect(status.body.connections).toEqual([expect.objectContaining({ state: 'connected', account: SHOP, tokenExpiresAt: cb.body.tokenExpiresAt, webhookSubscriptions: SHOPIFY_WEBHOOK_TOPICS, lastWebhook: null })]);
    // registered with the shop, pointing at PUBLIC_BASE_URL
    const subs = [...fakes.shopify.state.shops.get(SHOP)!.webhookSubscriptions.values()];
    expect(subs.map((x) => [x.topic, x.uri]).sort()).toEqual(SHOPIFY_WEBHOOK_TOPICS.map((t) => [t, `${PUBLIC}/api/integrations/shopify/webhook`]).sort());
    const stored = await services.vault.get({ tenantId: 'v1', service: 'shopify', connectionId: SHOP });
    expect(stored.secret.access_token).toMatch(/^shpat_|./);
    for (const t of Object.values(stored.secret)) {
      expect(status.text).not.toContain(t);
      expect(cb.text).not.toContain(t);
    }
    const actor = await actorOf(`v1:shopify:${SHOP}`);
    expect(actor.context.credential).toEqual({ tenantId: 'v1', service: 'shopify', connectionId: SHOP, version: 1 });
  });

  it('a Shopify revoke that fails with a retryable error is logged, the credentials are still forgotten, and the answer says revoked: false', async () => {
    const shop = 'failing.myshopify.com';
    const a = await authorize('shopify', 'v7', { shop });
    expect((await call('GET', await consent(a.authorizationUrl), { accept: 'application/json' })).status).toBe(200);
    const old = (await services.vault.get({ tenantId: 'v7', service: 'shopify', connectionId: shop })).secret;
    fakes.shopify.control.faults.fail({ status: 503, path: '/api_permissions/current.json', count: 1 });
    const before = logLines.length;
    const r = await call('DELETE', '/api/integrations/shopify', { token: token('vendor', 'v7') });
    expect(r.status).toBe(200);
    expect(r.body.connections).toEqual([expect.objectContaining({ state: 'disconnected', revoked: false, reason: expect.stringContaining('retryable') })]);
    expect(await credentialRows('v7')).toEqual([]);
    expect(logLines.slice(before).some((l) => l.includes('revoking the Shopify grant failed'))).toBe(true);
    // not revoked at the shop: the fake still takes the token (the merchant uninstalls to end it)
    expect(fakes.shopify.state.tokens.authenticate(old.access_token, shop)).toBeDefined();
  });

  it('MercadoLibre: PKCE round trip; the callback answers a small HTML page unless JSON is asked for', async () => {
    const a = await authorize('mercadolibre', 'v1', { siteId: 'MLB' });
    const url = new URL(a.authorizationUrl);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('redirect_uri')).toBe(`${PUBLIC}/api/integrations/mercadolibre/callback`);
    const cb = await call('GET', await consent(a.authorizationUrl));
    expect(cb.status).toBe(200);
    expect(cb.type).toContain('text/html');
    expect(cb.text).toContain(`Account ${SELLER} is connected`);
    const status = await call('GET', '/api/integrations/mercadolibre/status', { token: token('vendor', 'v1') });
    expect(status.body.connections).toEqual([expect.objectContaining({ connectionId: `v1:mercadolibre:${SELLER}`, state: 'connected', scopes: ['offline_access', 'read', 'write'] })]);
  });

  it('refuses a bad hmac, a reused state, a state of another provider and a bad code with 400, storing nothing', async () => {
    const before = await credentialRows('v3');
    // bad hmac
    const a = await authorize('shopify', 'v3', { shop: 'bad-hmac.myshopify.com' });
    const path = await consent(a.authorizationUrl);
    const tampered = path.replace(/hmac=([0-9a-f])/, (_m, c: string) => `hmac=${c === '0' ? '1' : '0'}`);
    const r1 = await call('GET', tampered, { accept: 'application/json' });
    expect(r1.status).toBe(400);
    expect(r1.body).toMatchObject({ code: 'VALIDATION_FAILED', detail: expect.stringContaining('hmac') });
    // a state of another provider
    const r2 = await call('GET', path.replace('/shopify/', '/mercadolibre/'), { accept: 'application/json' });
    expect(r2.status).toBe(400);
    expect(r2.body.detail).toContain('another provider');
    // a bad code (MercadoLibre refuses it)
    const m = await authorize('mercadolibre', 'v3', {});
    const mpath = await consent(m.authorizationUrl);
    const r3 = await call('GET', mpath.replace(/code=[^&]+/, 'code=TG-forged'), { accept: 'application/json' });
    expect(r3.status).toBe(400);
    expect(r3.body.detail).toContain('refused the authorization code');
    // a forged state
    const r4 = await call('GET', mpath.replace(/state=[^&]+/, `state=${encodeURIComponent(m.state.slice(0, -2) + 'xx')}`), { accept: 'application/json' });
    expect(r4.status).toBe(400);
    expect(await credentialRows('v3')).toEqual(before);
    expect((await database.pool.query(`SELECT count(*)::int AS n FROM actors WHERE tenant = 'v3'`)).rows[0].n).toBe(0);
    // reused: the first callback connects, the same one again is refused
    const ok = await authorize('shopify', 'v3', { shop: 'reuse.myshopify.com' });
    const okPath = await consent(ok.authorizationUrl);
    expect((await call('GET', okPath, { accept: 'application/json' })).status).toBe(200);
    const again = await call('GET', okPath, { accept: 'application/json' });
    expect(again.status).toBe(400);
    expect(again.body.detail).toContain('already used');
    expect(await credentialRows('v3')).toEqual([{ service: 'shopify', connection_id: 'reuse.myshopify.com', version: 1 }]);
  });

  it("a tenant never sees another tenant's connection (404), and a vendor cannot name another tenant (403)", async () => {
    expect((await call('GET', '/api/integrations/shopify/status', { token: token('vendor', 'v2') })).status).toBe(404);
    expect((await call('DELETE', '/api/integrations/shopify', { token: token('vendor', 'v2') })).status).toBe(404);
    expect((await call('GET', '/api/integrations/shopify/status?tenantId=v1', { token: token('vendor', 'v2') })).status).toBe(403);
    expect((await call('GET', '/api/integrations/shopify/status?tenantId=v1', { token: token('operator') })).status).toBe(200);
    expect((await call('GET', '/api/integrations/amazon/status', { token: token('vendor', 'v1') })).status).toBe(400);
    expect((await call('GET', '/api/integrations/shopify/status')).status).toBe(401);
  });

  it('an unconfigured provider is a 503 problem naming the missing variables', async () => {
    const bare = new ConnectionService(runtime.host.actor(integrationType), database.pool, services.vault, testConfig({ DATABASE_URL: database.url }), clock, log);
    const err = await bare.authorize({ sub: 'v', role: 'vendor', tenantId: 'v1' }, 'shopify', { shop: SHOP }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED', message: expect.stringContaining('SHOPIFY_API_KEY and SHOPIFY_API_SECRET') });
    expect(toProblem(err, 'req-1', '/api/integrations/shopify/auth')).toMatchObject({ status: 503, code: 'PROVIDER_NOT_CONFIGURED', detail: expect.stringContaining('SHOPIFY_API_KEY') });
  });

  it('refreshes a token expiring mid-run exactly once with two runtimes over one database, storing the rotated token first', async () => {
    const other = await node({ relay: true });
    try {
      const id = `v1:mercadolibre:${SELLER}`;
      const before = fakes.mercadolibre.state.refreshTokens.size;
      const v1 = (await actorOf(id)).context as IntegrationContext;
      // the durable refresh timer comes due in both runtimes at once, and both also ask for a refresh
      clock.advance(Date.parse(v1.tokenExpiresAt!) - clock.now());
      runtime.timers.wake(clock.now());
      other.runtime.timers.wake(clock.now());
      // each with the version its refused call used, as the outbound door asks
      await Promise.all([
        services.integrations.requestRefresh('v1', 'mercadolibre', SELLER, '401', v1.credential!.version),
        other.services.integrations.requestRefresh('v1', 'mercadolibre', SELLER, '401', v1.credential!.version),
      ]);
      const done = await waitFor('refreshed', async () => {
        const a = await actorOf(id);
        return a.value === 'connected' || (typeof a.value === 'object' && a.value !== null && 'connected' in a.value) ? ((a.context as IntegrationContext).lastRefreshAt ? a : null) : null;
      });
      const c = done.context as IntegrationContext;
      expect(c.credential!.version).toBe(v1.credential!.version + 1);
      expect(fakes.mercadolibre.state.refreshTokens.size - before).toBe(1);
      const stored = await services.vault.get({ tenantId: 'v1', service: 'mercadolibre', connectionId: SELLER });
      expect(stored.version).toBe(c.credential!.version);
      expect(fakes.mercadolibre.state.refreshTokens.get(stored.secret.refresh_token!)!.dead).toBe(false);
    } finally {
      await other.services.stop();
      await other.runtime.stop();
    }
  });

  it('Shopify: a refresh asked for (a 401 seen) rotates the grant and stores it before the connection uses it', async () => {
    const id = `v1:shopify:${SHOP}`;
    const ref = { tenantId: 'v1', service: 'shopify', connectionId: SHOP };
    // (the clock moved six hours in the test before: its own timer refreshed it once already)
    const settled = await waitFor('connected', async () => {
      const a = await actorOf(id);
      return typeof a.value === 'object' && a.value !== null && 'connected' in a.value ? a : null;
    });
    const known = (settled.context as IntegrationContext).credential!.version;
    const before = await services.vault.get(ref);
    expect(before.version).toBe(known);
    await services.integrations.requestRefresh('v1', 'shopify', SHOP, '401');
    const done = await waitFor('refreshed', async () => {
      const a = await actorOf(id);
      return (a.context as IntegrationContext).credential!.version > known ? a : null;
    });
    const after = await services.vault.get(ref);
    expect(after.version).toBe(before.version + 1);
    expect(after.secret.refresh_token).not.toBe(before.secret.refresh_token);
    expect((done.context as IntegrationContext).credential).toEqual({ ...ref, version: after.version });
    expect(done.value).toMatchObject({ connected: 'waiting' });
  });

  it('a refresh call carried out again after its grant was stored (a crash before the answer reached the actor) spends nothing', async () => {
    const ref = { tenantId: 'v1', service: 'mercadolibre', connectionId: SELLER };
    const stored = await services.vault.get(ref);
    expect(stored.version).toBeGreaterThan(1);
    const issued = fakes.mercadolibre.state.refreshTokens.size;
    const retry = services.integrations.invoker();
    const out = await retry('refresh', { tenantId: 'v1', provider: 'mercadolibre', account: SELLER, credential: { ...ref, version: stored.version - 1 } }, { idempotencyKey: 'k', signal: AbortSignal.timeout(5_000) });
    expect(out).toEqual({ credential: { ...ref, version: stored.version }, tokenExpiresAt: stored.expiresAt, scopes: stored.scopes });
    expect(fakes.mercadolibre.state.refreshTokens.size).toBe(issued);
    expect((await services.vault.get(ref)).secret).toEqual(stored.secret);
  });

  it('delete revokes the Shopify grant (the fake then refuses the old tokens), forgets the credentials and leaves the connection disconnected', async () => {
    const ref = { tenantId: 'v1', service: 'shopify', connectionId: SHOP };
    const old = (await services.vault.get(ref)).secret;
    expect(fakes.shopify.state.tokens.authenticate(old.access_token, SHOP)).toBeDefined();
    const r = await call('DELETE', '/api/integrations/shopify', { token: token('vendor', 'v1') });
    expect(r.status).toBe(200);
    expect(r.body.connections).toEqual([expect.objectContaining({ state: 'disconnected', tokenExpiresAt: null, revoked: true })]);
    expect(await services.vault.describe(ref)).toBeUndefined();
    // the shop refuses the old access token and its refresh token
    expect(fakes.shopify.state.tokens.authenticate(old.access_token, SHOP)).toBeUndefined();
    const gql = await fetch(`${fakes.env.SHOPIFY_SHOP_URL_TEMPLATE!.replace('{shop}', SHOP)}/admin/api/2026-04/graphql.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-shopify-access-token': old.access_token! },
      body: JSON.stringify({ query: '{ shop { name } }' }),
    });
    expect(gql.status).toBe(401);
    expect(fakes.shopify.state.tokens.rotate(old.refresh_token, SHOP)).toBeUndefined();
    for (const t of Object.values(old)) expect(r.text).not.toContain(t);
    const s = await call('GET', '/api/integrations/shopify/status', { token: token('vendor', 'v1') });
    expect(s.body.connections[0].state).toBe('disconnected');
  });

  it('delete of MercadoLibre forgets the credentials and says it could not revoke (no endpoint)', async () => {
    const a = await authorize('mercadolibre', 'v6', {});
    expect((await call('GET', await consent(a.authorizationUrl), { accept: 'application/json' })).status).toBe(200);
    const r = await call('DELETE', '/api/integrations/mercadolibre', { token: token('vendor', 'v6') });
    expect(r.status).toBe(200);
    expect(r.body.connections).toEqual([expect.objectContaining({ state: 'disconnected', revoked: false, reason: expect.stringContaining('no token revocation endpoint') })]);
    expect(await credentialRows('v6')).toEqual([]);
  });

  it('an expired state is refused', async () => {
    const a = await authorize('mercadolibre', 'v4', {});
    const path = await consent(a.authorizationUrl);
    clock.advance(10 * 60_000 + 1);
    const r = await call('GET', path, { accept: 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('expired');
    expect(await credentialRows('v4')).toEqual([]);
  });

  it('no token value reaches a log line or a stored row (actors, journal, outbox, inbox, audit_log, timers, dead_letters)', async () => {
    const tokens = issuedTokens();
    expect(tokens.length).toBeGreaterThanOrEqual(6);
    const rows: string[] = [];
    for (const table of ['actors', 'journal', 'outbox', 'inbox', 'audit_log', 'timers', 'dead_letters', 'integration_oauth_states']) {
      const { rows: r } = await database.pool.query(`SELECT t::text AS row FROM ${table} t`);
      rows.push(...r.map((x: { row: string }) => x.row));
    }
    expect(rows.join('\n')).toContain(`v1:mercadolibre:${SELLER}`);
    expect(logLines.length).toBeGreaterThan(0);
    for (const t of tokens) {
      for (const line of logLines) expect(line).not.toContain(t);
      for (const row of rows) expect(row).not.toContain(t);
    }
  });
});
