import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import { toProblem } from '../../http/problem.js';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import { integrationType, type IntegrationContext } from '../../machines/integration/index.js';
import type { Database } from '../../runtime/db.js';
import { freePort } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { isVaultError, VaultCode } from '../../services/integrations/errors.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../helpers/nats.js';
import { testLog, testRuntime } from '../helpers/runtime.js';

const run = promisify(execFile);

/**
 * `pg_dump` of the database; where the pg_dump on PATH is older than the server (the embedded
 * PostgreSQL 18 of a laptop run beside Debian's pg_dump 15), every row of every table in the
 * same COPY-section shape, read as each row's text form, which holds every stored byte as well.
 */
async function dumpDatabase(database: Database): Promise<string> {
  try {
    return (await run('pg_dump', ['--no-owner', '--no-privileges', database.url], { maxBuffer: 256 * 1024 * 1024 })).stdout;
  } catch (err) {
    if (!/server version mismatch/.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    const { rows: tables } = await database.pool.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
    const parts: string[] = [];
    for (const { name } of tables) {
      const { rows } = await database.pool.query<{ r: string }>(`SELECT t::text AS r FROM public.${name} t`);
      parts.push(`COPY public.${name} FROM stdin;`, ...rows.map((x) => x.r), '\\.');
    }
    return parts.join('\n');
  }
}
const nats = await natsForTests();
const JWT_SECRET = `jwt-${randomBytes(24).toString('hex')}`;
const KEY = randomBytes(32).toString('base64');
const SHOP = 'example.myshopify.com';
const SELLER = '146322322';

/**
 * Section 5 of issue 21: after a full flow with connectors (OAuth connects to the Shopify and
 * MercadoLibre fakes, a token refresh, signed Shopify webhooks in), a `pg_dump` of the database and
 * a capture of NATS (a subscription to `>` all along, and every message left in Concord's streams)
 * hold no token and no secret in plain text; a stored ciphertext changed by one byte fails with a
 * typed error that the edge maps to a clear problem.
 */
describe.skipIf(!nats)('secrets: a database dump and a NATS capture of a full flow', () => {
  const prefix = testPrefix();
  let fakes: MarketplaceFakes;
  let database: Database;
  let runtime: Runtime;
  let services: Services;
  let server: ReturnType<typeof serve>;
  let base = '';
  let capture: NatsConnection;
  let sub: Subscription;
  const captured: string[] = [];
  const dec = new TextDecoder();

  beforeAll(async () => {
    fakes = await startMarketplaceFakes({ seedSkus: [{ sku: 'SKU-1', quantity: 10 }] });
    database = await freshDatabase();
    capture = await connect({ servers: nats!.url });
    // everything Concord's connection could carry: its subjects, JetStream's API and acks, inboxes
    sub = capture.subscribe('>', {
      callback: (_err, m) => {
        const s = m.subject;
        if (!s.toLowerCase().includes(prefix) && !s.startsWith('_INBOX') && !s.startsWith('$JS')) return;
        const headers = m.headers ? [...m.headers].map(([k, v]) => `${k}: ${v.join(',')}`).join('\n') : '';
        captured.push(`${s}\n${headers}\n${dec.decode(m.data)}`);
      },
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const connectors = new Map<string, ConnectorInvoker>();
    runtime = await testRuntime(database, {
      types: [integrationType],
      env: { ...natsEnv(nats!.url, prefix), ...fakes.env, PUBLIC_BASE_URL: base, CREDENTIALS_KEYS: `k1:${KEY}`, JWT_SECRET, WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' },
      connectors,
      log: testLog,
    });
    services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
    await runtime.start();
    await services.start();
    const app = createApp({ services, log: testLog, jwtSecret: JWT_SECRET });
    server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
    expect((server.address() as AddressInfo).port).toBe(port);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await services?.stop();
    await runtime?.stop();
    sub?.unsubscribe();
    await capture?.close();
    await database?.close();
    await fakes?.close();
    await dropPrefix(nats!.url, prefix);
  });

  const bearer = signToken({ sub: 'vendor@v1', role: 'vendor', tenantId: 'v1', exp: Math.floor(Date.now() / 1000) + 3_600 }, JWT_SECRET);

  async function connectProvider(service: string, body: unknown): Promise<void> {
    const a = await fetch(`${base}/api/integrations/${service}/auth`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(a.status).toBe(200);
    const { authorizationUrl } = (await a.json()) as { authorizationUrl: string };
    const consent = await fetch(authorizationUrl, { redirect: 'manual' });
    expect(consent.status).toBe(302);
    const cb = await fetch(consent.headers.get('location')!, { headers: { accept: 'application/json' } });
    expect(cb.status).toBe(200);
  }

  it('no token or secret in a pg_dump or in what crossed NATS', async () => {
    await connectProvider('shopify', { shop: SHOP, scopes: ['read_products', 'write_inventory', 'read_locations'] });
    await connectProvider('mercadolibre', { sellerId: SELLER });
    const integrations = runtime.host.actor(integrationType);
    const connected = async (id: string) => {
      const a = await integrations.get(id).catch(() => null);
      return a && typeof a.value === 'object' && a.value !== null && 'connected' in a.value ? a : null;
    };
    const shopify = await waitFor('shopify connected', () => connected(`v1:shopify:${SHOP}`));
    await waitFor('mercadolibre connected', () => connected(`v1:mercadolibre:${SELLER}`));
    // a refresh: the rotated grant is written to the vault (the call and its answer stay in the process)
    const known = (shopify.context as IntegrationContext).credential!.version;
    await services.integrations.requestRefresh('v1', 'shopify', SHOP, '401');
    await waitFor('refreshed', async () => ((await integrations.get(`v1:shopify:${SHOP}`)).context as IntegrationContext).credential!.version > known);
    // a sale at the shop: Shopify's signed webhook comes in and is handed to the connection
    await fakes.shopify.control.sell(SHOP, 'SKU-1', 1);
    await fakes.shopify.control.webhooksIdle();
    await waitFor('the webhook handed on', async () => (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM integration_webhooks WHERE status = 'handed'`)).rows[0]!.n >= 1);
    await waitFor('the outbox relayed', async () => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n === 0);

    const tokens = [
      ...fakes.shopify.state.tokens.access.keys(),
      ...fakes.shopify.state.tokens.refresh.keys(),
      ...fakes.mercadolibre.state.accessTokens.keys(),
      ...fakes.mercadolibre.state.refreshTokens.keys(),
    ];
    expect(tokens.length).toBeGreaterThanOrEqual(5); // two grants, one of them refreshed
    const secrets: Record<string, string> = {
      'the credentials key': KEY,
      'the credentials key (base64url)': Buffer.from(KEY, 'base64').toString('base64url'),
      'the JWT secret': JWT_SECRET,
      'a bearer token': bearer,
      'the Shopify app secret': fakes.env.SHOPIFY_API_SECRET!,
      'the MercadoLibre app secret': fakes.env.ML_CLIENT_SECRET!,
      ...Object.fromEntries(tokens.map((t, i) => [`provider token ${i + 1}`, t])),
    };

    const dump = await dumpDatabase(database);
    // the dump is the real thing: the flow's rows are in it, the credentials as ciphertext
    expect(dump).toContain(`v1:shopify:${SHOP}`);
    expect(dump).toContain('COPY public.integration_credentials');
    expect(dump).toContain('COPY public.integration_webhooks');

    const jsm = await jetstreamManager(capture);
    const streamed: string[] = [];
    for await (const s of jsm.streams.list()) {
      if (!s.config.name.startsWith(`${prefix.toUpperCase()}_`) || s.state.messages === 0) continue;
      for (let seq = s.state.first_seq; seq <= s.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(s.config.name, { seq }).catch(() => null);
        if (m) streamed.push(`${m.subject}\n${m.header ? [...m.header].map(([k, v]) => `${k}: ${v.join(',')}`).join('\n') : ''}\n${dec.decode(m.data)}`);
      }
    }
    console.log(`[secrets] pg_dump ${dump.length} bytes; ${streamed.length} messages in the streams (${[...new Set(streamed.map((m) => m.split('\n')[0]))].join(', ')}); ${captured.length} captured on >`);
    // what stays in the streams may be nothing: a call's answer now goes straight to its actor in
    // the process that made the call (no message). Everything that crossed NATS is in the capture.
    expect(captured.length).toBeGreaterThan(0);
    expect(captured.length).toBeGreaterThanOrEqual(streamed.length);

    const leaks = (where: string, text: string) => Object.entries(secrets).filter(([, v]) => text.includes(v)).map(([what]) => `${what} in ${where}`);
    expect([...leaks('the pg_dump', dump), ...leaks('the JetStream streams', streamed.join('\n')), ...leaks('the NATS capture', captured.join('\n'))]).toEqual([]);
  }, 120_000);

  it('a stored ciphertext changed by one byte fails to decrypt with CREDENTIAL_TAMPERED, a clear 503 problem at the edge', async () => {
    const ref = { tenantId: 'v1', service: 'mercadolibre', connectionId: SELLER };
    const before = await services.vault.get(ref);
    await database.pool.query(
      `UPDATE integration_credentials SET encrypted_credentials =
         overlay(encrypted_credentials placing (CASE WHEN substr(encrypted_credentials, length(encrypted_credentials) / 2, 1) = 'A' THEN 'B' ELSE 'A' END)
                 from length(encrypted_credentials) / 2 for 1)
        WHERE tenant_id = $1 AND service = $2 AND connection_id = $3`,
      [ref.tenantId, ref.service, ref.connectionId],
    );
    const err = await services.vault.get(ref).catch((e: unknown) => e);
    expect(isVaultError(err, VaultCode.Tampered)).toBe(true);
    const problem = toProblem(err, 'req-1', '/api/integrations/mercadolibre');
    expect(problem).toMatchObject({ status: 503, code: 'CREDENTIAL_TAMPERED', title: 'Credentials Unusable' });
    expect(problem.detail).toContain(`v1/mercadolibre/${SELLER}`);
    const text = JSON.stringify(problem);
    for (const v of [before.secret.access_token, before.secret.refresh_token, KEY]) if (v) expect(text).not.toContain(v);
  });
});
