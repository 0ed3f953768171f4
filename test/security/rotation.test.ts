import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../http/auth/jwt.js';
import { createApp } from '../../http/app.js';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import { integrationType, type IntegrationContext } from '../../machines/integration/index.js';
import { credentialKey } from '../../runtime/config.js';
import type { Database } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createServices, type Services } from '../../services/index.js';
import { CredentialVault, KeyRing } from '../../services/integrations/vault.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';

const JWT_SECRET = `jwt-${randomBytes(24).toString('hex')}`;
const PUBLIC = 'http://concord.test';
const k1 = credentialKey('k1', randomBytes(32));
const k2 = credentialKey('k2', randomBytes(32));
const entry = (k: { id: string; key: Buffer }) => `${k.id}:${k.key.toString('base64')}`;
const oldRef = (n: number) => ({ tenantId: `old-${n % 20}`, service: 'shopify', connectionId: `shop-${n}.myshopify.com` });
const seeded = new Map<number, string>();

/**
 * Key rotation under load: `npm run credentials -- rotate` re-wraps the stored credentials under
 * the new first key while the server (already on the new ring, the old key after it) serves API
 * calls that write and read the vault: OAuth connects (a grant stored), status reads, token
 * refreshes (the stored refresh token decrypted, sent to the provider, the rotated grant stored
 * with compare-and-set) and disconnects (the access token decrypted to revoke it at the provider).
 * Not one of them may fail.
 */
describe('secrets: credential key rotation under load', () => {
  let fakes: MarketplaceFakes;
  let database: Database;
  let runtime: Runtime;
  let services: Services;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    fakes = await startMarketplaceFakes();
    database = await freshDatabase();
    // what the old ring wrote: 1,500 rows for the rotation to work through (a row per transaction)
    const old = new CredentialVault(database.pool, new KeyRing([k1]), testLog);
    for (let i = 0; i < 1_500; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => i + j).map((n) => {
          const token = `shpat_old_${randomBytes(8).toString('hex')}`;
          seeded.set(n, token);
          return old.put(oldRef(n), { access_token: token });
        }),
      );
    }
    const connectors = new Map<string, ConnectorInvoker>();
    runtime = await testRuntime(database, {
      types: [integrationType],
      env: { ...fakes.env, PUBLIC_BASE_URL: PUBLIC, CREDENTIALS_KEYS: `${entry(k2)},${entry(k1)}` },
      connectors,
      log: testLog,
    });
    services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false } });
    await runtime.start();
    await services.start();
    app = createApp({ services, log: testLog, jwtSecret: JWT_SECRET });
  });
  afterAll(async () => {
    await services?.stop();
    await runtime?.stop();
    await database?.close();
    await fakes?.close();
  });

  const calls: Array<{ what: string; ok: boolean; detail?: string }> = [];
  /** Set from the CLI's first progress line to its exit. */
  let rotating = false;
  let callsDuringRotation = 0;
  async function api(tenant: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const token = signToken({ sub: `vendor@${tenant}`, role: 'vendor', tenantId: tenant, exp: Math.floor(Date.now() / 1000) + 3_600 }, JWT_SECRET);
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (rotating) callsDuringRotation++;
    calls.push({ what: `${method} ${path.split('?')[0]}`, ok: res.status < 300, detail: res.status < 300 ? undefined : `${res.status} ${text.slice(0, 200)}` });
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** One tenant's round: connect, read the status, refresh the grant, disconnect (revoking at the provider). */
  async function round(tenant: string): Promise<void> {
    const shop = `${tenant}.myshopify.com`;
    const a = await api(tenant, 'POST', '/api/integrations/shopify/auth', { shop, scopes: ['read_products'] });
    if (a.status !== 200) return;
    const consent = await fetch(String(a.json.authorizationUrl), { redirect: 'manual' });
    const location = new URL(consent.headers.get('location')!);
    await api(tenant, 'GET', `${location.pathname}${location.search}`);
    await api(tenant, 'GET', '/api/integrations/shopify/status');
    const integrations = runtime.host.actor(integrationType);
    const id = `${tenant}:shopify:${shop}`;
    const known = ((await integrations.get(id)).context as IntegrationContext).credential!.version;
    await services.integrations.requestRefresh(tenant, 'shopify', shop, '401');
    const refreshed = await waitFor(`${tenant} refreshed`, async () => {
      const s = await integrations.get(id);
      const ctx = s.context as IntegrationContext;
      if (ctx.credential!.version > known) return 'ok';
      return JSON.stringify(s.value).includes('reauthorization') ? 'failed' : null;
    }, 30_000);
    calls.push({ what: 'refresh', ok: refreshed === 'ok', detail: refreshed });
    const d = await api(tenant, 'DELETE', '/api/integrations/shopify');
    const revoked = (d.json.connections as Array<{ revoked: boolean; reason?: string }> | undefined)?.[0];
    calls.push({ what: 'revoke', ok: revoked?.revoked === true, detail: revoked?.reason });
    // the rows the CLI is re-wrapping right now, read as the API's vault reads them
    for (let k = 0; k < 5; k++) {
      const n = Math.floor(Math.random() * seeded.size);
      const got = await services.vault.get(oldRef(n)).then((c) => c.secret.access_token, (e: unknown) => String(e));
      if (rotating) callsDuringRotation++;
      calls.push({ what: 'vault read of a row under rotation', ok: got === seeded.get(n), detail: got === seeded.get(n) ? undefined : got });
    }
  }

  it('rotates every stored credential while connects, status reads, refreshes and disconnects all succeed', async () => {
    let done = false;
    const cli = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'app/credentials-cli.ts', 'rotate', '--batch', '1'], {
        env: { ...process.env, DATABASE_URL: database.url, CREDENTIALS_KEYS: `${entry(k2)},${entry(k1)}`, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        rotating ||= /^rotated \d+\//m.test(stderr);
      });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    }).finally(() => {
      rotating = false;
      done = true;
    });
    let rounds = 0;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let n = 0; !done || n < 2; n++) {
          await round(`t${w}-${n}`);
          rounds++;
        }
      }),
    );
    const [r] = await Promise.all([cli, load]);
    const failed = calls.filter((c) => !c.ok);
    console.log(`[rotation] ${rounds} rounds, ${calls.length} calls, ${callsDuringRotation} of them while the CLI rotated; ${r.stdout.trim()}`);
    expect(callsDuringRotation).toBeGreaterThan(10);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/0 failed, 0 remaining under other keys/);
    expect(rounds).toBeGreaterThanOrEqual(8);
    expect(failed).toEqual([]);
    const { rows } = await database.pool.query<{ key_id: string; n: number }>('SELECT key_id, count(*)::int AS n FROM integration_credentials GROUP BY key_id');
    expect(rows.map((x) => x.key_id)).toEqual(['k2']);
  }, 180_000);
});
