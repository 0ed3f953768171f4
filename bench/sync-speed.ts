/**
 * `npx tsx bench/sync-speed.ts` (h-sync2): the full syncs of bench/sync.ts without its webhook part,
 * for quick before/after figures: BENCH_SYNC_PARTS=budgeted,lifted (default both).
 *
 * From bench/sync.ts: `npx tsx bench/sync.ts`: the inventory sync against the Shopify fake, over real HTTP and
 * Postgres (DATABASE_URL's server, or an embedded one), everything in this one process (the
 * fake's CPU is counted in the CPU per item: an upper bound).
 *
 * 1. A full outbound sync of BENCH_SYNC_SKUS (10,000) SKUs, every one different on the two
 *    sides, under the default Shopify budget (4/s, burst 40): the calls/s the fake saw against
 *    the budget (target >= 90%, never above), the fake's worst window, CPU per item.
 * 2. The same with the budget lifted (RATE_LIMITS=shopify=1000000/s:1000000): items/s (target >= 2,000).
 * 3. Webhook -> our stock latency: BENCH_WEBHOOK_RATE (100) signed `inventory_levels/update`
 *    webhooks a second for BENCH_WEBHOOK_SECONDS (10), each a different SKU, from the fake to
 *    our webhook route; latency = the fake's send -> InventoryUpdated published (after our stock
 *    is written): p50/p99 (target p99 < 50 ms).
 *
 * The fake sends no webhooks for the app's own writes here (`webhooksOnApiChanges: false`), and
 * its cost bucket is `unlimited`, so the request budget is what paces.
 */
import { DEMO_SHOP } from '../simulator/fakes/index.js';
import { fmt, table } from './lib.js';
import { syncRig } from './sync-kit.js';

const N = Number(process.env.BENCH_SYNC_SKUS ?? 10_000);
const WEBHOOK_RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 100);
const WEBHOOK_SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);

const { fakes, db, start, stop, setOurs, fullSync, connect } = await syncRig(process.env.BENCH_DB_NAME ?? 'concord_bench_sync_speed', N);
const rows: Array<Array<string | number>> = [];
const parts = new Set((process.env.BENCH_SYNC_PARTS ?? 'budgeted,lifted').split(','));
void WEBHOOK_RATE;
void WEBHOOK_SECONDS;

if (parts.has('budgeted')) {
  const node = await start({});
  await connect(node);
  await setOurs(node, 100_000);
  fakes.shopify.control.rate.clear(DEMO_SHOP);
  const r = await fullSync(node);
  const calls = fakes.shopify.control.rate.count(DEMO_SHOP);
  const t = fakes.shopify.control.rate.times(DEMO_SHOP);
  const span = (t[t.length - 1]! - t[0]!) / 1000;
  // what the bucket (40, 4/s) allows over the calls' own span: the budget's use
  const allowed = 40 + 4 * span;
  const violation = fakes.shopify.control.rate.bucketViolation(DEMO_SHOP, { perSecond: 4, burst: 40 });
  const steady = Math.max(0, calls - 40) / span;
  rows.push([
    'full sync, budget 4/s:40',
    N,
    fmt(r.seconds, 1),
    fmt(N / r.seconds, 0),
    `${calls} calls in ${fmt(span, 1)} s; ${calls}/${fmt(allowed, 1)} allowed = ${fmt((100 * calls) / allowed, 1)}%; after the burst ${fmt(steady, 2)}/s = ${fmt((100 * steady) / 4, 1)}% of 4/s`,
    violation ? `VIOLATION ${JSON.stringify(violation)}` : `none (worst 1 s: ${fakes.shopify.control.rate.maxInWindow(DEMO_SHOP, 1000)})`,
    fmt((r.cpuMs * 1000) / N, 0),
  ]);
  await stop(node);
}
if (parts.has('lifted')) {
  const node = await start({ RATE_LIMITS: 'shopify=1000000/s:1000000' });
  if (!parts.has('budgeted')) await connect(node);
  await setOurs(node, 200_000);
  fakes.shopify.control.rate.clear(DEMO_SHOP);
  const r = await fullSync(node);
  rows.push(['full sync, budget lifted', N, fmt(r.seconds, 1), fmt(N / r.seconds, 0), `${fakes.shopify.control.rate.count(DEMO_SHOP)} calls`, '-', fmt((r.cpuMs * 1000) / N, 0)]);
  await stop(node);
}
console.log(`\ninventory sync (bench/sync-speed.ts), ${N} SKUs, Shopify fake in process\n`);
console.log(table(['run', 'items', 'seconds', 'items/s', 'provider calls vs budget', 'budget violation (4/s, burst 40)', 'CPU µs/item'], rows));
await fakes.close();
await db.stop();
process.exit(0);
