import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { integrationType, type IntegrationContext } from '../../machines/integration/index.js';
import { ManualClock } from '../../runtime/clock.js';
import type { Database } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { startGenericFake, type GenericFake } from '../../simulator/fakes/generic.js';
import { generateTestPki, hasOpenssl, type TestPki } from '../../simulator/fakes/tls.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';

/**
 * The generic connector's other two patterns on `POST /api/integrations/generic/auth`: OAuth 2.0
 * authorization code (with PKCE, single-use state, refresh with rotation) and a client
 * certificate for mutual TLS (checked against the service before anything is stored).
 */
const SECRET = 'test-secret-0123456789-0123456789-abcdef';
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const CLIENT_SECRET = `acs-${randomBytes(12).toString('hex')}`;
const PUBLIC = 'http://concord.test';
const REDIRECT = `${PUBLIC}/api/integrations/generic/callback`;

let oauthApi: GenericFake;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const clock = new ManualClock(Date.now());
const answers: string[] = [];

const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? '-'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(clock.now() / 1000) + 365 * 86_400 }, SECRET);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, path: string, o: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
  }
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text, text };
}

/** The user's browser: follows the service's consent redirect and answers the callback query. */
async function consent(authorizationUrl: string): Promise<string> {
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  return back.search;
}

beforeAll(async () => {
  oauthApi = await startGenericFake({ auth: { authorizationCode: { clients: [{ id: 'crm-app', secret: CLIENT_SECRET, redirectUris: [REDIRECT], scopes: ['contacts', 'deals'] }], tokenTtlSeconds: 3600 } } });
  database = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>();
  runtime = await testRuntime(database, {
    types: [integrationType],
    env: { CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', PUBLIC_BASE_URL: PUBLIC },
    connectors,
    clock,
    run: { timers: true, relay: true },
  });
  services = createServices({ runtime, log: testLog, clock, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  await runtime.start();
  await services.start();
  app = createApp({ services, log: testLog, jwtSecret: SECRET });
});

afterAll(async () => {
  await services?.stop();
  await runtime?.stop();
  await database?.close();
  await oauthApi?.close();
});

describe('generic: OAuth 2.0 authorization code', () => {
  const body = () => ({
    name: 'crm',
    baseUrl: `${oauthApi.url}/v1`,
    healthCheck: { path: '/whoami', expectStatus: 200 },
    credentials: { authorizeUrl: `${oauthApi.url}/oauth/authorize`, tokenUrl: `${oauthApi.url}/oauth/token`, clientId: 'crm-app', clientSecret: CLIENT_SECRET, scopes: ['contacts'] },
  });

  it('answers the URL to send the user to; the callback exchanges the code (PKCE), stores the grant and connects', async () => {
    const a = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 'c1'), body: body() });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ authorizationUrl: expect.stringContaining('/oauth/authorize?'), state: expect.any(String) });
    const url = new URL(a.body.authorizationUrl);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT);
    expect(a.text).not.toContain(CLIENT_SECRET);
    // nothing is connected before the callback
    expect((await call('GET', '/api/integrations/generic/status', { token: token('vendor', 'c1') })).status).toBe(404);

    const query = await consent(a.body.authorizationUrl);
    const cb = await call('GET', `/api/integrations/generic/callback${query}`);
    expect(cb.status).toBe(200);
    expect(cb.body).toMatchObject({ connectionId: 'c1:generic:crm', state: 'connected', scopes: ['contacts'], tokenExpiresAt: expect.any(String) });
    expect(oauthApi.state.grants.authorization_code).toBe(1);
    const stored = await services.vault.get({ tenantId: 'c1', service: 'generic', connectionId: 'crm' });
    expect(stored.secret).toMatchObject({ clientId: 'crm-app', clientSecret: CLIENT_SECRET, access_token: expect.any(String), refresh_token: expect.any(String) });
    expect(oauthApi.state.tokens.get(stored.secret.access_token!)).toMatchObject({ clientId: 'crm-app' });
    expect(stored.metadata).toMatchObject({ auth: { pattern: 'oauth2', tokenUrl: `${oauthApi.url}/oauth/token` } });
    // the pending client settings are gone from the vault
    await expect(services.vault.get({ tenantId: 'c1', service: 'generic', connectionId: 'crm~authorizing' })).rejects.toThrow();

    // the same callback again (a replay, a double click) is refused and changes nothing
    const again = await call('GET', `/api/integrations/generic/callback${query}`);
    expect(again.status).toBe(400);
    expect((await services.vault.get({ tenantId: 'c1', service: 'generic', connectionId: 'crm' })).version).toBe(stored.version);
  });

  it('a refresh asked for (a 401 seen) spends the refresh token once, and the rotated grant is stored first', async () => {
    const ref = { tenantId: 'c1', service: 'generic', connectionId: 'crm' };
    const before = await services.vault.get(ref);
    await services.integrations.requestRefresh('c1', 'generic', 'crm', '401');
    const done = await waitFor('refreshed', async () => {
      const a = await runtime.host.current({ type: 'integration', id: 'c1:generic:crm' }, { tenant: 'c1' });
      return a && (a.context as unknown as IntegrationContext).credential!.version > before.version ? a : null;
    });
    const after = await services.vault.get(ref);
    expect(after.version).toBe(before.version + 1);
    expect(after.secret.refresh_token).not.toBe(before.secret.refresh_token);
    expect(after.secret.clientSecret).toBe(CLIENT_SECRET);
    expect(oauthApi.state.refreshTokens.has(before.secret.refresh_token!)).toBe(false); // rotated: the old one is dead
    expect(oauthApi.state.grants.refresh_token).toBe(1);
    expect((done.context as unknown as IntegrationContext).credential).toEqual({ ...ref, version: after.version });
  });

  it('a code the service refuses, a forged state, or a newer authorization of the same account: 400, nothing stored', async () => {
    const first = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 'c2'), body: body() });
    const second = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 'c2'), body: body() });
    const stale = await consent(first.body.authorizationUrl);
    expect((await call('GET', `/api/integrations/generic/callback${stale}`)).body.detail).toContain('superseded');
    const forged = new URLSearchParams((await consent(second.body.authorizationUrl)).slice(1));
    forged.set('state', `${forged.get('state')!.slice(0, -4)}AAAA`);
    expect((await call('GET', `/api/integrations/generic/callback?${forged}`)).status).toBe(400);
    const bad = new URLSearchParams({ code: 'not-a-code', state: second.body.state });
    expect((await call('GET', `/api/integrations/generic/callback?${bad}`)).body.detail).toContain('refused the authorization code');
    expect((await database.pool.query(`SELECT 1 FROM integration_credentials WHERE tenant_id = 'c2' AND connection_id = 'crm'`)).rowCount).toBe(0);
  });
});

describe.runIf(hasOpenssl())('generic: a client certificate (mutual TLS)', () => {
  let pki: TestPki;
  let tlsApi: GenericFake;
  beforeAll(async () => {
    pki = generateTestPki();
    tlsApi = await startGenericFake({ auth: { mtls: true }, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } });
  });
  afterAll(async () => tlsApi?.close());
  const body = (pair: { cert: string; key: string }, extra: Record<string, unknown> = {}) => ({
    name: 'warehouse',
    baseUrl: `${tlsApi.url}/v1`,
    healthCheck: { path: '/whoami', expectStatus: 200 },
    credentials: { certPem: pair.cert, keyPem: pair.key, caPem: pki.ca.cert, ...extra },
  });

  it('checks the certificate against the service over mutual TLS, stores it in the vault, and shows its expiry, never its key', async () => {
    const r = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 't1'), body: body(pki.client) });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ connectionId: 't1:generic:warehouse', state: 'connected' });
    expect(r.text).not.toContain('PRIVATE KEY');
    expect(tlsApi.state.calls.some((c) => c.path === '/v1/whoami' && c.status === 200 && c.caller?.startsWith('cert:'))).toBe(true);
    const stored = await services.vault.get({ tenantId: 't1', service: 'generic', connectionId: 'warehouse' });
    expect(stored.secret).toMatchObject({ certificatePem: pki.client.cert, privateKeyPem: pki.client.key });
    expect(stored.metadata).toMatchObject({ auth: { pattern: 'certificate' }, certificate: { notAfter: expect.any(String), subject: expect.stringContaining('CN=') } });
  });

  it('a certificate of another CA, a key that is not the certificate’s, or text that is no PEM: 400 naming the field, nothing stored', async () => {
    const rogue = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 't2'), body: body(pki.rogue) });
    expect(rogue.status).toBe(400);
    expect(rogue.body.detail).toMatch(/refused|reached/);
    const mismatched = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 't2'), body: body({ cert: pki.client.cert, key: pki.rogue.key }) });
    expect(mismatched.status).toBe(400);
    expect(mismatched.body.detail).toContain("not the certificate's private key");
    const junk = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', 't2'), body: body({ cert: 'hello', key: pki.client.key }) });
    expect(junk.status).toBe(400);
    expect(junk.body.detail).toContain('certPem');
    expect((await database.pool.query(`SELECT 1 FROM integration_credentials WHERE tenant_id = 't2'`)).rowCount).toBe(0);
  });

  it('no answer carried a secret', () => {
    const all = answers.join('\n');
    expect(all).not.toContain(CLIENT_SECRET);
    expect(all).not.toContain('PRIVATE KEY');
  });
});
