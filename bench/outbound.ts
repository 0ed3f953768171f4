/**
 * `npx tsx bench/outbound.ts`: the outbound call door (services/integrations/outbound/) against
 * the local fakes over real HTTP, with Postgres (DATABASE_URL's server, or an embedded one).
 *
 * 1. Budget use: calls flat out (BENCH_CONCURRENCY in flight, default 16) for BENCH_SECONDS
 *    (default 20) at one Shopify store under its budget (4/s, burst 40), then at one
 *    MercadoLibre seller under a window limit (BENCH_ML_LIMIT, default `200/10s`: the seed's
 *    200/min shape over 10 s so the run is short). Reports the calls the fake saw against what
 *    the budget allows (target: at least 90%), and whether any window went over it (never).
 * 2. Overhead with the budget lifted (`RATE_LIMITS=shopify=none`, the shop's cost bucket
 *    unlimited): the same call made directly through the connector and through the door, one at
 *    a time (BENCH_CALLS, default 1000) and BENCH_CONCURRENCY at a time; the difference is what
 *    the door adds per call (its budget/breaker statement, usage counting, credentials cache).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { invokerOf } from '../connectors/kit/contract.js';
import { createShopifyConnector } from '../connectors/shopify/index.js';
import { integrationType } from '../machines/integration/index.js';
import { credentialKey, loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { createServices, type Services } from '../services/index.js';
import type { ConnectionRef } from '../services/integrations/outbound/index.js';
import { KeyRing } from '../services/integrations/vault.js';
import { DEMO_ML_SELLER, startMarketplaceFakes, type MarketplaceFakes } from '../simulator/fakes/index.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const CALLS = Number(process.env.BENCH_CALLS ?? 1_000);
const ML_LIMIT = process.env.BENCH_ML_LIMIT ?? '200/10s';
const SHOP = 'bench-outbound.myshopify.com';
const KEYS = new KeyRing([credentialKey('bench', randomBytes(32))]);

async function node(url: string, fakes: MarketplaceFakes, rateLimits: string): Promise<{ runtime: Runtime; services: Services }> {
  const config = loadConfig({ ...process.env, ...fakes.env, DATABASE_URL: url, LOG_LEVEL: 'warn', RATE_LIMITS: rateLimits, NATS_URL: '' });
  const runtime = await createRuntime({ config, registry: new Registry([integrationType]), log: benchLog });
  const services = createServices({ runtime, log: benchLog, credentialKeys: KEYS, run: { sagaIntake: false, events: false } });
  await runtime.start();
  await services.start();
  return { runtime, services };
}

/** Calls `fn` with `concurrency` in flight until `until` (epoch ms) or `count` calls; answers each call's duration (ms). */
async function drive(fn: (i: number) => Promise<unknown>, o: { concurrency: number; until?: number; count?: number }): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        if (o.count !== undefined && next >= o.count) return;
        if (o.until !== undefined && Date.now() >= o.until) return;
        const i = next++;
        const t = performance.now();
        await fn(i);
        times.push(performance.now() - t);
      }
    }),
  );
  return times;
}

async function budgetRun(services: Services, connection: ConnectionRef, operation: string, input: unknown): Promise<{ started: number; ended: number }> {
  const started = Date.now();
  await drive(() => services.outbound.call(connection, { operation, input, idempotencyKey: randomUUID(), deadLetter: false }), { concurrency: CONCURRENCY, until: started + SECONDS * 1000 });
  return { started, ended: Date.now() };
}

async function main(): Promise<void> {
  const db = await benchDatabase('concord_bench_outbound');
  const fakes = await startMarketplaceFakes();
  const rows: Array<Array<string | number>> = [];
  try {
    // 1. budget use, with the seed's budgets (MercadoLibre's window shortened)
    {
      const { runtime, services } = await node(db.url, fakes, `shopify=4/s:40,mercadolibre=${ML_LIMIT}`);
      const shopToken = fakes.shopify.control.issueToken(SHOP).access_token;
      fakes.shopify.control.setPlan(SHOP, 'unlimited');
      await services.vault.put({ tenantId: 'bench', service: 'shopify', connectionId: SHOP }, { access_token: shopToken });
      const mlToken = fakes.mercadolibre.control.issueToken(DEMO_ML_SELLER);
      await services.vault.put({ tenantId: 'bench', service: 'mercadolibre', connectionId: String(DEMO_ML_SELLER) }, { access_token: mlToken.access_token });

      const shop = await budgetRun(services, { tenantId: 'bench', provider: 'shopify', account: SHOP }, 'listLocations', { first: 1 });
      const seen = fakes.shopify.control.rate.times(SHOP).filter((t) => t >= shop.started);
      const seconds = (shop.ended - shop.started) / 1000;
      const allowed = 40 + 4 * seconds;
      const violation = fakes.shopify.control.rate.bucketViolation(SHOP, { perSecond: 4, burst: 40 });
      const sustained = seen.length > 40 ? ((seen.length - 41) / ((seen[seen.length - 1]! - seen[40]!) / 1000)) : NaN;
      rows.push(['Shopify 4/s:40', fmt(seconds, 1), seen.length, fmt(allowed, 0), `${fmt((seen.length / allowed) * 100, 1)}%`, `${fmt(sustained, 2)}/s of 4/s (${fmt((sustained / 4) * 100, 1)}%)`, violation ? `over by ${fmt(violation.count - violation.allowed, 1)}` : 'never']);

      const ml = await budgetRun(services, { tenantId: 'bench', provider: 'mercadolibre', account: String(DEMO_ML_SELLER) }, 'getMe', {});
      const key = `user:${DEMO_ML_SELLER}`;
      const mlSeen = fakes.mercadolibre.control.rate.times(key).filter((t) => t >= ml.started);
      const limit = services.outbound.door.limitOf('mercadolibre')!;
      const mlSeconds = (ml.ended - ml.started) / 1000;
      const perSecond = (limit.limit * 1000) / limit.windowMs;
      const mlAllowed = (mlSeconds * 1000 * limit.limit) / limit.windowMs;
      const maxWindow = fakes.mercadolibre.control.rate.maxInWindow(key, limit.windowMs - 1);
      const mlRate = mlSeen.length > 1 ? (mlSeen.length - 1) / ((mlSeen[mlSeen.length - 1]! - mlSeen[0]!) / 1000) : NaN;
      rows.push([`MercadoLibre ${limit.spec}`, fmt(mlSeconds, 1), mlSeen.length, fmt(mlAllowed, 0), `${fmt((mlSeen.length / mlAllowed) * 100, 1)}%`, `${fmt(mlRate, 2)}/s of ${fmt(perSecond, 2)}/s (${fmt((mlRate / perSecond) * 100, 1)}%)`, maxWindow > limit.limit ? `${maxWindow} in a window` : `never (max ${maxWindow} per window)`]);
      await services.stop();
      await runtime.stop();
    }
    console.log(`\nBudget use: ${CONCURRENCY} calls in flight for ${SECONDS} s (the fake counts what arrives)\n`);
    console.log(table(['budget', 'seconds', 'calls seen', 'budget allows', 'use', 'sustained rate', 'over budget'], rows));

    // 2. overhead with the budget lifted
    {
      const { runtime, services } = await node(db.url, fakes, 'shopify=none');
      const token = fakes.shopify.control.issueToken(SHOP).access_token;
      await services.vault.put({ tenantId: 'bench-lifted', service: 'shopify', connectionId: SHOP }, { access_token: token });
      const connection: ConnectionRef = { tenantId: 'bench-lifted', provider: 'shopify', account: SHOP };
      const direct = invokerOf(createShopifyConnector({ shop: SHOP, apiVersion: runtime.config.providers.shopify.apiVersion, shopUrlTemplate: runtime.config.providers.shopify.shopUrlTemplate }), async () => ({ accessToken: token }));
      const viaDirect = () => direct('listLocations', { first: 1 }, { signal: AbortSignal.timeout(10_000), idempotencyKey: randomUUID() });
      const viaDoor = () => services.outbound.call(connection, { operation: 'listLocations', input: { first: 1 }, idempotencyKey: randomUUID(), deadLetter: false });
      await drive(viaDirect, { concurrency: 4, count: 200 }); // warm up both paths
      await drive(viaDoor, { concurrency: 4, count: 200 });
      const out: Array<Array<string | number>> = [];
      for (const [name, c] of [['one at a time', 1], [`${CONCURRENCY} in flight`, CONCURRENCY]] as const) {
        const res: Record<string, { perSecond: number; mean: number; p50: number; p99: number }> = {};
        for (const [path, fn] of [['direct', viaDirect], ['door', viaDoor]] as const) {
          const t0 = performance.now();
          const times = (await drive(fn, { concurrency: c, count: CALLS })).sort((a, b) => a - b);
          const elapsed = (performance.now() - t0) / 1000;
          res[path] = { perSecond: CALLS / elapsed, mean: times.reduce((a, b) => a + b, 0) / times.length, p50: percentile(times, 50), p99: percentile(times, 99) };
        }
        const d = res.direct!;
        const g = res.door!;
        out.push([name, `${fmt(d.perSecond, 0)}/s`, `${fmt(g.perSecond, 0)}/s`, `${fmt(d.p50)} / ${fmt(d.p99)}`, `${fmt(g.p50)} / ${fmt(g.p99)}`, fmt(g.mean - d.mean)]);
      }
      console.log(`\nThe door's overhead, budget lifted (${CALLS} calls of listLocations each, the Shopify fake on loopback)\n`);
      console.log(table(['concurrency', 'direct calls/s', 'door calls/s', 'direct p50/p99 ms', 'door p50/p99 ms', 'door adds (mean ms/call)'], out));
      await services.stop();
      await runtime.stop();
    }
  } finally {
    await fakes.close();
    await db.stop();
  }
}

await main();
