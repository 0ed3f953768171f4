import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { signToken, type TokenClaims } from '../../../../http/auth/jwt.js';
import { createApp } from '../../../../http/app.js';
import type { ConnectorInvoker } from '../../../../connectors/kit/contract.js';
import { integrationType } from '../../../../machines/integration/index.js';
import { syncType } from '../../../../machines/integration/sync.js';
import type { Database } from '../../../../runtime/db.js';
import type { Runtime } from '../../../../runtime/runtime.js';
import { createServices, type Services } from '../../../../services/index.js';
import type { EngineHooks } from '../../../../services/integrations/inventory/engine.js';
import { startMarketplaceFakes, type MarketplaceFakes } from '../../../../simulator/fakes/index.js';
import { freshDatabase, waitFor } from '../../../helpers/db.js';
import { testLog, testRuntime } from '../../../helpers/runtime.js';

export const SECRET = 'test-secret-0123456789-0123456789-abcdef';
export const KEYS = `k1:${randomBytes(32).toString('base64')}`;

export interface Node {
  runtime: Runtime;
  services: Services;
  url: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  call(method: string, path: string, o?: { token?: string; body?: unknown }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export const token = (role: TokenClaims['role'], tenantId?: string) =>
  signToken({ sub: `${role}@${tenantId ?? '-'}`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 86_400 }, SECRET);

/**
 * One Concord node over real HTTP (the fakes send their webhooks to it): runtime with relay and
 * timers, the services with the inventory sync, the app. PUBLIC_BASE_URL is the node's own URL.
 */
export async function startNode(database: Database, fakes: MarketplaceFakes, o: { env?: Record<string, string>; hooks?: EngineHooks; run?: { relay?: boolean; timers?: boolean }; intake?: boolean } = {}): Promise<Node> {
  const holder: { app?: ReturnType<typeof createApp> } = {};
  let server: ServerType | undefined;
  const url = await new Promise<string>((resolve) => {
    server = serve({ fetch: (req) => (holder.app ? holder.app.fetch(req) : new Response('starting', { status: 503 })), port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => resolve(`http://127.0.0.1:${info.port}`));
  });
  const connectors = new Map<string, ConnectorInvoker>();
  const runtime = await testRuntime(database, {
    types: [integrationType, syncType],
    connectors,
    ...(o.run ? { run: o.run } : {}),
    env: { ...fakes.env, PUBLIC_BASE_URL: url, CREDENTIALS_KEYS: KEYS, OUTBOUND_RETRY_INITIAL_MS: '50', OUTBOUND_RETRY_JITTER: '0', ...o.env },
  });
  const services = createServices({ runtime, log: testLog, connectors, run: { sagaIntake: false, events: false, housekeeping: false, inventoryIntake: o.intake ?? true }, ...(o.hooks ? { inventoryHooks: o.hooks } : {}), inventoryPagesPerStep: 1 });
  await runtime.start();
  await services.start();
  const a = createApp({ services, log: testLog, jwtSecret: SECRET });
  holder.app = a;
  return {
    runtime,
    services,
    url,
    async call(method, path, c = {}) {
      const headers: Record<string, string> = {};
      if (c.token) headers.authorization = `Bearer ${c.token}`;
      let body: string | undefined;
      if (c.body !== undefined) {
        body = JSON.stringify(c.body);
        headers['content-type'] = 'application/json';
      }
      const res = await a.request(path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed };
    },
    async close() {
      await services.stop();
      await runtime.stop();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

async function consent(url: string): Promise<Record<string, string>> {
  const res = await fetch(url, { redirect: 'manual' });
  return Object.fromEntries(new URL(res.headers.get('location')!).searchParams);
}

const vendor = (tenantId: string) => ({ sub: `vendor@${tenantId}`, role: 'vendor' as const, tenantId });

/** Connects a Shopify shop for the tenant through the real OAuth flow (the fake plays the merchant). */
export async function connectShopify(s: Services, tenant: string, shop: string): Promise<void> {
  const a = await s.integrations.authorize(vendor(tenant), 'shopify', { shop });
  await s.integrations.callback('shopify', await consent(a.authorizationUrl));
}

export async function connectMercadoLibre(s: Services, tenant: string): Promise<void> {
  const a = await s.integrations.authorize(vendor(tenant), 'mercadolibre', {});
  await s.integrations.callback('mercadolibre', await consent(a.authorizationUrl));
}

/**
 * The usual file setup: fakes, a fresh database and one node, started before the file's tests and
 * closed after them. Read the fields inside tests (they are set by `beforeAll`).
 */
export function useInventoryNode(o: { fakes?: Parameters<typeof startMarketplaceFakes>[0]; node?: Parameters<typeof startNode>[2] } = {}): { fakes: MarketplaceFakes; database: Database; node: Node } {
  const h = {} as { fakes: MarketplaceFakes; database: Database; node: Node };
  beforeAll(async () => {
    h.fakes = await startMarketplaceFakes(o.fakes);
    h.database = await freshDatabase();
    h.node = await startNode(h.database, h.fakes, o.node);
  }, 60_000);
  afterAll(async () => {
    await h.node?.close();
    await h.database?.close();
    await h.fakes?.close();
  });
  return h;
}

/** Starts a sync over HTTP as the tenant's vendor and answers its progress once it is no longer running. */
export async function runSync(node: Node, tenant: string, service: string, body: { mode: 'full' | 'delta'; direction: 'inbound' | 'outbound' | 'both' }, timeoutMs?: number): Promise<Record<string, unknown>> {
  const vendorToken = token('vendor', tenant);
  const r = await node.call('POST', `/api/integrations/${service}/sync`, { token: vendorToken, body });
  if (r.status !== 202) throw new Error(`sync not started: ${r.status} ${JSON.stringify(r.body)}`);
  return waitFor(
    'the sync',
    async () => {
      const b = (await node.call('GET', `/api/integrations/${service}/syncs/${r.body.syncId}`, { token: vendorToken })).body as Record<string, unknown>;
      return b.status !== 'running' ? b : null;
    },
    timeoutMs,
  );
}
