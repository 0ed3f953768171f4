/**
 * `npx tsx bench/sync.ts`: the inventory sync against the Shopify fake, over real HTTP and
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
import { fmt, percentile, table } from './lib.js';
import { sku, syncRig } from './sync-kit.js';

const N = Number(process.env.BENCH_SYNC_SKUS ?? 10_000);
const WEBHOOK_RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 100);
const WEBHOOK_SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);

const { fakes, db, start, stop, setOurs, fullSync, connect } = await syncRig('concord_bench_sync', N);
const rows: Array<Array<string | number>> = [];

// 1. under the default budget
let node = await start({});
await connect(node);
await setOurs(node, 100_000);
const calls0 = fakes.shopify.control.rate.count(DEMO_SHOP);
const t0 = Date.now();
const budgeted = await fullSync(node);
const calls = fakes.shopify.control.rate.count(DEMO_SHOP) - calls0;
const rate = calls / budgeted.seconds;
const violation = fakes.shopify.control.rate.bucketViolation(DEMO_SHOP, { perSecond: 4, burst: 40 });
const worst1s = fakes.shopify.control.rate.maxInWindow(DEMO_SHOP, 1000);
rows.push([
  'full sync, budget 4/s:40',
  N,
  fmt(budgeted.seconds, 1),
  fmt(N / budgeted.seconds, 0),
  `${calls} calls, ${fmt(rate, 2)}/s = ${fmt((100 * rate) / 4, 0)}% of 4/s (burst 40 counted)`,
  violation ? `VIOLATION ${JSON.stringify(violation)}` : `none (worst 1 s: ${worst1s})`,
  fmt((budgeted.cpuMs * 1000) / N, 0),
]);
// the sustained part: after the burst of 40 is spent
const steady = Math.max(0, calls - 40) / budgeted.seconds;
void t0;

// 2. webhook -> our stock
const sent = new Map<string, number>();
const latencies: number[] = [];
node.runtime.bus.subscribe('concord.events.InventoryUpdated', (m) => {
  const d = m.data as { sku: string; stock: number; via: string };
  const t = sent.get(`${d.sku}:${d.stock}`);
  if (t !== undefined && d.via === 'webhook') latencies.push(performance.now() - t);
});
const total = WEBHOOK_RATE * WEBHOOK_SECONDS;
const begin = performance.now();
const pending: Array<Promise<unknown>> = [];
for (let i = 0; i < total; i++) {
  const due = begin + (i * 1000) / WEBHOOK_RATE;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const s = sku(i % N);
  const stock = 300_000 + i;
  sent.set(`${s}:${stock}`, performance.now());
  pending.push(fakes.shopify.control.setAvailable(DEMO_SHOP, s, stock));
}
await Promise.all(pending);
const deadline = Date.now() + 30_000;
while (latencies.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
latencies.sort((a, b) => a - b);
await stop(node);

// 3. budget lifted
node = await start({ RATE_LIMITS: 'shopify=1000000/s:1000000' });
await setOurs(node, 200_000);
const lifted = await fullSync(node);
rows.push(['full sync, budget lifted', N, fmt(lifted.seconds, 1), fmt(N / lifted.seconds, 0), '-', '-', fmt((lifted.cpuMs * 1000) / N, 0)]);
await stop(node);


console.log(`\ninventory sync (bench/sync.ts), ${N} SKUs, Shopify fake in process; the machine was shared with other work\n`);
console.log(table(['run', 'items', 'seconds', 'items/s', 'provider calls vs budget', 'budget violation (4/s, burst 40)', 'CPU µs/item'], rows));
console.log(`\nsustained call rate after the burst: ${fmt(steady, 2)}/s = ${fmt((100 * steady) / 4, 0)}% of 4/s`);
console.log(
  `\nwebhook -> our stock (-> InventoryUpdated), ${WEBHOOK_RATE}/s for ${WEBHOOK_SECONDS} s: ${latencies.length}/${total} applied; p50 ${fmt(percentile(latencies, 50), 1)} ms, p99 ${fmt(percentile(latencies, 99), 1)} ms, max ${fmt(latencies[latencies.length - 1] ?? NaN, 1)} ms`,
);
console.log(`progress (budgeted): ${JSON.stringify(budgeted.progress)}`);
await fakes.close();
await db.stop();
process.exit(0);
