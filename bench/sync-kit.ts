/**
 * The inventory sync benchmarks' shared rig (bench/sync.ts, bench/sync-speed.ts): the Shopify fake
 * seeded with `skus` SKUs, a bench database, and Concord nodes started in this process over it.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from '../http/app.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { actorTypes } from '../machines/index.js';
import { credentialKey, loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { createServices, type Services } from '../services/index.js';
import { KeyRing } from '../services/integrations/vault.js';
import { startMarketplaceFakes, DEMO_SHOP } from '../simulator/fakes/index.js';
import { benchDatabase, benchLog } from './lib.js';

export const TENANT = 'bench-tenant';
export const sku = (i: number) => `S${String(i).padStart(6, '0')}`;

export interface Node {
  runtime: Runtime;
  services: Services;
  url: string;
  server: ServerType;
}

export async function syncRig(dbName: string, N: number) {
  const SECRET = randomBytes(24).toString('hex');
  const KEY = credentialKey('bench', randomBytes(32));

  const fakes = await startMarketplaceFakes({ shopify: { plan: 'unlimited', webhooksOnApiChanges: false } });
  const db = await benchDatabase(dbName);

  async function start(env: Record<string, string>): Promise<Node> {
    const holder: { app?: ReturnType<typeof createApp> } = {};
    let server: ServerType | undefined;
    const url = await new Promise<string>((resolve) => {
      server = serve({ fetch: (req) => (holder.app ? holder.app.fetch(req) : new Response('starting', { status: 503 })), port: 0, hostname: '127.0.0.1' }, (i: AddressInfo) => resolve(`http://127.0.0.1:${i.port}`));
    });
    const config = loadConfig({ ...process.env, ...fakes.env, DATABASE_URL: db.url, JWT_SECRET: SECRET, PUBLIC_BASE_URL: url, LOG_LEVEL: 'warn', ...env });
    const connectors = new Map<string, ConnectorInvoker>();
    const runtime = await createRuntime({ config, registry: new Registry(actorTypes), log: benchLog, connectors });
    const services = createServices({ runtime, log: benchLog, connectors, credentialKeys: new KeyRing([KEY]), run: { sagaIntake: false, events: false } });
    await runtime.start();
    await services.start();
    holder.app = createApp({ services, log: benchLog, jwtSecret: SECRET });
    return { runtime, services, url, server: server! };
  }

  async function stop(n: Node): Promise<void> {
    await n.services.stop();
    await n.runtime.stop();
    await new Promise<void>((r) => n.server.close(() => r()));
  }

  async function setOurs(n: Node, offset: number): Promise<void> {
    // our side in bulk (the sync is what is measured, not the PUTs)
    await n.runtime.database.pool.query(
      `INSERT INTO inventory_items (tenant_id, sku, stock, changed_at, source)
       SELECT $1, 'S' || lpad(g::text, 6, '0'), g + $3, now(), 'bench' FROM generate_series(0, $2 - 1) g
       ON CONFLICT (tenant_id, sku) DO UPDATE SET stock = EXCLUDED.stock, version = inventory_items.version + 1, changed_at = EXCLUDED.changed_at`,
      [TENANT, N, offset],
    );
  }

  async function fullSync(n: Node): Promise<{ seconds: number; cpuMs: number; progress: Record<string, unknown> }> {
    const principal = { sub: 'bench', role: 'vendor' as const, tenantId: TENANT };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { syncId } = await n.services.inventory.startSync(principal, 'shopify', { mode: 'full', direction: 'outbound' });
    for (;;) {
      const p = await n.services.inventory.getSync(principal, 'shopify', syncId);
      if (p.status !== 'running') {
        const cpu = process.cpuUsage(cpu0);
        return { seconds: (performance.now() - t0) / 1000, cpuMs: (cpu.user + cpu.system) / 1000, progress: p as unknown as Record<string, unknown> };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function connect(n: Node): Promise<void> {
    const a = await n.services.integrations.authorize({ sub: 'bench', role: 'vendor', tenantId: TENANT }, 'shopify', { shop: DEMO_SHOP });
    const res = await fetch(a.authorizationUrl, { redirect: 'manual' });
    await n.services.integrations.callback('shopify', Object.fromEntries(new URL(res.headers.get('location')!).searchParams));
  }

  fakes.shopify.control.seed(DEMO_SHOP, Array.from({ length: N }, (_, i) => ({ sku: sku(i), quantity: i })));
  return { fakes, db, secret: SECRET, start, stop, setOurs, fullSync, connect };
}
