/**
 * `npx tsx bench/webhooks.ts`: signed Shopify webhooks into `POST /api/integrations/shopify/webhook`
 * on a real port against Postgres (DATABASE_URL's server, or an embedded one). The server runs in
 * its own process; the load generator signs every delivery (fresh webhook and event ids, a
 * current Triggered-At, one of 5,000 inventory levels of one of 20 shops) and sends them open
 * loop at fixed rates (bench/open-loop.ts: latency from each request's due time). The first rate
 * (BENCH_WEBHOOK_RATES, default `200,500,1000,2000,4000`) is the one the target speaks of:
 * accept p99 under 10 ms at 200 webhooks/s; the highest accepted rate is the saturation figure.
 * Request logs are on (info, written to /dev/null) so their cost is counted.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { REDACT_PATHS } from '../runtime/logger.js';
import { benchDatabase, fmt, percentile, table } from './lib.js';
import { serveConcord, spawnServer } from './serve.js';
import { keepAlivePool, openLoop, type OpenLoopRequest } from './open-loop.js';

const SHOPS = Array.from({ length: 20 }, (_, i) => `bench-${i}.myshopify.com`);
const LEVELS = 5_000;
const CONNECTIONS = 32;
const FIRST_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const RATES = (process.env.BENCH_WEBHOOK_RATES ?? '200,500,1000,2000,4000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);

/** The server under test, in its own process (bench/serve.ts), with each shop's credentials stored and request logs on. */
function serveMode(): Promise<void> {
  const requestLog = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination('/dev/null'));
  return serveConcord({
    requestLog,
    prepare: async (services) => {
      for (const [i, shop] of SHOPS.entries()) await services.vault.put({ tenantId: `vendor-${i}`, service: 'shopify', connectionId: shop }, { accessToken: `shpat_${randomBytes(8).toString('hex')}` });
      if (MAPPED) await mapLevels();
    },
  });
}

/**
 * BENCH_WEBHOOK_MAPPED (default 1): every level is mapped to one of our SKUs, as after a
 * connection's first full sync, so each accepted webhook is also applied to our stock (a
 * versioned write and an `InventoryUpdated`) on the same cores. With 0, no level is mapped: each
 * apply asks the shop for the record's SKU, and no shop is reachable from here (the calls fail
 * and are retried), which is the costlier, degenerate case.
 */
const MAPPED = process.env.BENCH_WEBHOOK_MAPPED !== '0';

/** Our SKU and the mapping of every level the load generator sends for, then the planner's statistics. */
async function mapLevels(): Promise<void> {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  try {
    await pool.query(
      `INSERT INTO inventory_items (tenant_id, sku, stock, changed_at, source)
       SELECT 'vendor-' || (k % $2), 'B' || k, 50, '2026-01-01T00:00:00Z', 'bench' FROM generate_series(0, $1 - 1) k`,
      [LEVELS, SHOPS.length],
    );
    await pool.query(
      `INSERT INTO integration_mappings (tenant_id, service, connection_id, sku, external_key, external_ids, source, channel_stock, synced_stock, last_synced_at)
       SELECT 'vendor-' || (k % $2), 'shopify', ($3::text[])[(k % $2) + 1], 'B' || k,
              'gid://shopify/InventoryItem/' || (40000000 + k) || '|gid://shopify/Location/7',
              jsonb_build_object('inventoryItemId', 'gid://shopify/InventoryItem/' || (40000000 + k), 'locationId', 'gid://shopify/Location/7'),
              'sync', 50, 50, now()
         FROM generate_series(0, $1 - 1) k`,
      [LEVELS, SHOPS.length, SHOPS],
    );
    await pool.query('ANALYZE inventory_items, integration_mappings');
  } finally {
    await pool.end();
  }
}

let last = 0;

/** One signed `inventory_levels/update` delivery, as Shopify sends it. */
function delivery(secret: string): OpenLoopRequest {
  const item = Math.floor(Math.random() * LEVELS);
  const shop = SHOPS[item % SHOPS.length]!;
  // the level's own time, strictly increasing as a provider's is for one level (of one time and
  // another stock than the one applied, a delivery is read back from the shop, unreachable here)
  last = Math.max(last + 1, Date.now());
  const now = new Date(last).toISOString();
  const body = JSON.stringify({ inventory_item_id: 40_000_000 + item, location_id: 7, available: Math.floor(Math.random() * 100), updated_at: now, admin_graphql_api_id: `gid://shopify/InventoryLevel/7?inventory_item_id=${40_000_000 + item}` });
  return {
    method: 'POST',
    path: '/api/integrations/shopify/webhook',
    body,
    headers: {
      'x-shopify-topic': 'inventory_levels/update',
      'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('base64'),
      'x-shopify-shop-domain': shop,
      'x-shopify-api-version': '2026-04',
      'x-shopify-webhook-id': randomUUID(),
      'x-shopify-event-id': randomUUID(),
      'x-shopify-triggered-at': now,
    },
  };
}

async function main(): Promise<void> {
  const db = await benchDatabase(`concord_bench_webhooks_${process.pid}`);
  const webhookSecret = randomBytes(24).toString('hex');
  const env = { ...process.env, DATABASE_URL: db.url, JWT_SECRET: randomBytes(32).toString('hex'), SHOPIFY_WEBHOOK_SECRET: webhookSecret };
  const server = await spawnServer(fileURLToPath(import.meta.url), env);
  const port = server.port;
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  const stored = async () => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM integration_webhooks')).rows[0]!.n);
  try {
    const headers = { 'content-type': 'application/json' };
    // warm-up: connections (kept for the measured rates, as a provider's are), JIT, the statement's plan
    const agent = keepAlivePool(CONNECTIONS);
    await openLoop({ port, headers, connections: CONNECTIONS, rate: 100, seconds: 2, agent, next: () => delivery(webhookSecret) });
    const rows: Array<Array<string | number>> = [];
    for (const [i, rate] of RATES.entries()) {
      const before = await stored();
      const r = await openLoop({ port, headers, connections: CONNECTIONS, rate, seconds: i === 0 ? FIRST_SECONDS : STEP_SECONDS, agent, next: () => delivery(webhookSecret) });
      const accepted = (await stored()) - before;
      rows.push([rate, r.sent, accepted, fmt(r.achieved, 0), fmt(percentile(r.latencies, 50)), fmt(percentile(r.latencies, 99)), fmt(r.latencies.at(-1) ?? NaN), r.non2xx, r.errors, fmt(r.maxSendLagMs, 1)]);
      process.stderr.write(`rate ${rate}/s done\n`);
    }
    agent.destroy();
    // the stock applies behind the accepts: how long after the last webhook they all ended
    const end = performance.now();
    const applied = async () => Number((await pool.query<{ n: string }>(`SELECT count(DISTINCT op_key) AS n FROM integration_sync_logs WHERE op_key LIKE 'webhook:%'`)).rows[0]!.n);
    const total = await stored();
    let done = await applied();
    while (MAPPED && done < total && performance.now() - end < 120_000) {
      await new Promise((r) => setTimeout(r, 200));
      done = await applied();
    }
    const drained = (performance.now() - end) / 1000;
    console.log(`\nShopify webhook accept (signed, ${SHOPS.length} shops, ${CONNECTIONS} keep-alive connections, open loop; latency from due time, ms; ${MAPPED ? `every level mapped: each accepted webhook is applied to our stock too` : 'no level mapped: each apply asks an unreachable shop for the SKU'})\n`);
    console.log(table(['offered/s', 'sent', 'rows stored', 'answered/s', 'p50', 'p99', 'max', 'non-2xx', 'errors', 'send lag'], rows));
    if (MAPPED) console.log(`\nstock applies: ${done} of ${total} stored webhooks applied, the last ${fmt(drained, 1)} s after the last webhook was answered`);
  } finally {
    await pool.end();
    await server.stop();
    await db.stop();
  }
}

if (process.argv.includes('--serve')) await serveMode();
else await main();
