import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import { signToken, type TokenClaims } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { integrationType } from '../../machines/integration/index.js';
import { ManualClock } from '../../runtime/clock.js';
import type { Database } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { startGenericFake, type GenericFake } from '../../simulator/fakes/generic.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

const SECRET = 'test-secret-0123456789-0123456789-abcdef';
const KEYS = `k1:${randomBytes(32).toString('base64')}`;
const API_KEY = `key-${randomBytes(12).toString('hex')}`;
const WRONG_KEY = `wrong-${randomBytes(12).toString('hex')}`;
const CLIENT_SECRET = `cs-${randomBytes(12).toString('hex')}`;
const WRONG_SECRET = `bad-${randomBytes(12).toString('hex')}`;

let api: GenericFake;
let database: Database;
let runtime: Runtime;
let services: Services;
let app: ReturnType<typeof createApp>;
const clock = new ManualClock(Date.now());
const logLines: string[] = [];
const log = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, cb) => (logLines.push(chunk.toString()), cb()) }));

const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? '-'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(clock.now() / 1000) + 365 * 86_400 }, SECRET);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
async function call(method: string, path: string, o: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, text };
}

const answers: string[] = [];
async function connect(tenant: string, body: unknown) {
  const r = await call('POST', '/api/integrations/generic/auth', { token: token('vendor', tenant), body });
  answers.push(r.text);
  return r;
}

const credentialRows = async (tenant: string) => (await database.pool.query('SELECT connection_id, version FROM integration_credentials WHERE tenant_id = $1', [tenant])).rows;
const baseUrl = () => `${api.url}/v1`;
const whoami = { path: '/whoami', expectStatus: 200 };

beforeAll(async () => {
  api = await startGenericFake({ auth: { apiKey: { keys: [API_KEY], header: 'x-api-key', query: 'api_key' }, clientCredentials: { clients: [{ id: 'svc-1', secret: CLIENT_SECRET, scopes: ['read', 'write'] }] } } });
  database = await freshDatabase();
  const connectors = new Map<string, ConnectorInvoker>();
  runtime = await testRuntime(database, { types: [integrationType], env: { CREDENTIALS_KEYS: KEYS, DATABASE_URL: database.url, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' }, connectors, log, clock, run: { timers: true, relay: true } });
  services = createServices({ runtime, log, clock, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
  await runtime.start();
  await services.start();
  app = createApp({ services, log, jwtSecret: SECRET });
});

afterAll(async () => {
  await services?.stop();
  await runtime?.stop();
  await database?.close();
  await api?.close();
});

describe('generic connections by API key and client credentials (real PostgreSQL, the generic fake over real HTTP)', () => {
  it('an API key in a header: checked with the health check, stored in the vault, the connection connected; the answer holds no secret', async () => {
    const r = await connect('g1', { name: 'inventory-api', baseUrl: baseUrl(), healthCheck: whoami, credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ connectionId: 'g1:generic:inventory-api', provider: 'generic', account: 'inventory-api', state: 'connected', tokenExpiresAt: null });
    expect(r.text).not.toContain(API_KEY);
    expect(api.state.calls.some((c) => c.path === '/v1/whoami' && c.status === 200 && c.caller?.startsWith('key:'))).toBe(true);
    const stored = await services.vault.get({ tenantId: 'g1', service: 'generic', connectionId: 'inventory-api' });
    expect(stored.secret).toEqual({ apiKey: API_KEY });
    expect(stored.metadata).toMatchObject({ baseUrl: baseUrl(), auth: { pattern: 'api_key', in: 'header', name: 'x-api-key' } });
    const s = await call('GET', '/api/integrations/generic/status', { token: token('vendor', 'g1') });
    answers.push(s.text);
    expect(s.status).toBe(200);
    expect(s.body.connections).toEqual([expect.objectContaining({ connectionId: 'g1:generic:inventory-api', state: 'connected' })]);
  });

  it('an API key in the query parameter works the same', async () => {
    const r = await connect('g2', { baseUrl: baseUrl(), healthCheck: whoami, credentials: { apiKey: API_KEY, in: 'query', name: 'api_key' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ account: new URL(api.url).hostname, state: 'connected' });
  });

  it('a wrong API key is a 400 problem (the service refused the credentials) and stores nothing', async () => {
    const r = await connect('g3', { name: 'inventory-api', baseUrl: baseUrl(), healthCheck: whoami, credentials: { apiKey: WRONG_KEY, in: 'header', name: 'x-api-key' } });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('the service refused the credentials');
    expect(r.text).not.toContain(WRONG_KEY);
    expect(await credentialRows('g3')).toEqual([]);
    const s = await call('GET', '/api/integrations/generic/status', { token: token('vendor', 'g3') });
    expect(s.status).toBe(404);
  });

  it('OAuth client credentials: a token request checks them, the scopes granted are recorded', async () => {
    const r = await connect('g4', { name: 'erp', baseUrl: baseUrl(), credentials: { tokenUrl: `${api.url}/oauth/token`, clientId: 'svc-1', clientSecret: CLIENT_SECRET, scopes: ['read'] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ connectionId: 'g4:generic:erp', state: 'connected', scopes: ['read'] });
    expect(r.text).not.toContain(CLIENT_SECRET);
    expect([...api.state.tokens.values()].some((t) => t.clientId === 'svc-1')).toBe(true);
    expect((await services.vault.get({ tenantId: 'g4', service: 'generic', connectionId: 'erp' })).secret).toEqual({ clientId: 'svc-1', clientSecret: CLIENT_SECRET });
  });

  it('a wrong client secret is a 400 problem and stores nothing', async () => {
    const r = await connect('g5', { name: 'erp', baseUrl: baseUrl(), credentials: { tokenUrl: `${api.url}/oauth/token`, clientId: 'svc-1', clientSecret: WRONG_SECRET } });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain('the service refused the credentials');
    expect(await credentialRows('g5')).toEqual([]);
  });

  it('a body without credentials, or with a bad base URL, is a 400 problem', async () => {
    expect((await connect('g5', { baseUrl: baseUrl() })).status).toBe(400);
    expect((await connect('g5', { baseUrl: 'ftp://example.com', credentials: { apiKey: WRONG_KEY, in: 'header', name: 'x-api-key' } })).status).toBe(400);
    expect(await credentialRows('g5')).toEqual([]);
  });

  it('DELETE forgets the credentials (revoked: false, the key is revoked at the service) and the connection is disconnected', async () => {
    const r = await call('DELETE', '/api/integrations/generic', { token: token('vendor', 'g1') });
    answers.push(r.text);
    expect(r.status).toBe(200);
    expect(r.body.connections).toEqual([expect.objectContaining({ connectionId: 'g1:generic:inventory-api', state: 'disconnected', revoked: false, reason: expect.any(String) })]);
    expect(await credentialRows('g1')).toEqual([]);
    const s = await call('GET', '/api/integrations/generic/status', { token: token('vendor', 'g1') });
    expect(s.body.connections[0].state).toBe('disconnected');
  });

  it('no secret reaches an answer, a log line or a stored row outside the vault', async () => {
    const secrets = [API_KEY, WRONG_KEY, CLIENT_SECRET, WRONG_SECRET];
    const rows: string[] = [];
    for (const table of ['actors', 'journal', 'outbox', 'inbox', 'audit_log', 'timers', 'dead_letters']) {
      const { rows: r } = await database.pool.query(`SELECT t::text AS row FROM ${table} t`);
      rows.push(...r.map((x: { row: string }) => x.row));
    }
    const { rows: vaultRows } = await database.pool.query(`SELECT t::text AS row FROM integration_credentials t`);
    rows.push(...vaultRows.map((x: { row: string }) => x.row)); // encrypted: the ciphertext never holds the plain secret
    expect(rows.join('\n')).toContain('g4:generic:erp');
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      for (const text of [...answers, ...logLines, ...rows]) expect(text).not.toContain(secret);
    }
  });
});

describe('outbound rule', () => {
  it('refuses a baseUrl or tokenUrl on a private or loopback address unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set, and stores nothing', async () => {
    const db = await freshDatabase();
    const connectors = new Map<string, ConnectorInvoker>();
    const rt = await testRuntime(db, { types: [integrationType], env: { CREDENTIALS_KEYS: KEYS, DATABASE_URL: db.url }, connectors, log, clock, run: { timers: false, relay: false } });
    const sv = createServices({ runtime: rt, log, clock, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
    await rt.start();
    await sv.start();
    const strict = createApp({ services: sv, log, jwtSecret: SECRET });
    try {
      for (const body of [
        { baseUrl: baseUrl(), healthCheck: whoami, credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } },
        { baseUrl: 'http://169.254.169.254/latest', credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } },
        { baseUrl: 'http://localhost:1/v1', credentials: { apiKey: API_KEY, in: 'header', name: 'x-api-key' } },
      ]) {
        const raw = JSON.stringify(body);
        const res = await strict.request('/api/integrations/generic/auth', {
          method: 'POST',
          headers: { authorization: `Bearer ${token('vendor', 'tenant-strict')}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(raw)) },
          body: raw,
        });
        expect(res.status, raw).toBe(400);
        expect(((await res.json()) as { detail: string }).detail).toMatch(/private or loopback/);
      }
      expect((await db.pool.query('SELECT count(*)::int AS n FROM integration_credentials')).rows[0].n).toBe(0);
      expect(api.state).toBeDefined();
    } finally {
      await sv.stop();
      await rt.stop();
      await db.close();
    }
  });
});
