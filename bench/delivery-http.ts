/**
 * `npx tsx bench/delivery-http.ts`: cross-integration delivery to HTTP endpoints only (no
 * messaging channel), 4 sources x 4 targets = 16 lanes, each target's endpoint a local receiver
 * (in this process, answering 200 at once), DATABASE_URL (or an embedded PostgreSQL). A lane
 * keeps one signed POST in flight. In one run:
 *   1. the ceiling: the same POSTs to the receiver, 16 at a time, one after another per "lane",
 *      without the database;
 *   2. throughput: a backlog of BENCH_DELIVERIES (default 10,000) deliveries drained by one worker;
 * and, per lane, that the receiver saw its events in order.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../runtime/clock.js';
import { loadConfig } from '../runtime/config.js';
import { createPool } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { EventService } from '../services/events/service.js';
import { EventDeliveryWorker } from '../services/events/worker.js';
import { benchDatabase, benchLog, fmt, table } from './lib.js';

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 10_000);
const SOURCES = ['src-1', 'src-2', 'src-3', 'src-4'];
const TARGETS = ['tgt-a', 'tgt-b', 'tgt-c', 'tgt-d'];
const operator = { sub: 'bench', role: 'operator' as const, tenantId: null };

const env = { DATABASE_URL: '', LOG_LEVEL: 'warn', EVENT_DELIVERY_POLL_MS: '20', EVENT_DELIVERY_BATCH: '64', DB_POOL_SIZE: '16', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' };
const db = await benchDatabase(`concord_bench_delivery_http_${process.pid}`);
env.DATABASE_URL = db.url;
const config = loadConfig(env);
const pool = createPool(db.url, 16, 'concord-bench');
await migrate(pool, benchLog);
const events = new EventService(pool, systemClock, config.events);

// the receiver: per (source, target) lane, the event ids in the order they arrived (repeats dropped by webhook-id)
const seen = new Set<string>();
const arrived = new Map<string, string[]>();
let posts = 0;
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    posts++;
    const id = String(req.headers['webhook-id']);
    if (!seen.has(id) && !id.startsWith('ceiling-')) {
      seen.add(id);
      const { data } = JSON.parse(Buffer.concat(chunks).toString()) as { data: { id: string; sourceIntegrationId: string; targetIntegrationId: string } };
      const lane = `${data.sourceIntegrationId}>${data.targetIntegrationId}`;
      let list = arrived.get(lane);
      if (!list) arrived.set(lane, (list = []));
      list.push(data.id);
    }
    res.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const port = (receiver.address() as AddressInfo).port;
for (const t of TARGETS) await events.putEndpoint(operator, t, { url: `http://127.0.0.1:${port}/${t}` });

async function ceiling(n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = JSON.stringify({ type: 'stock.changed', data: { n: 0, sku: 'SKU-0' } });
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ agent, host: '127.0.0.1', port, method: 'POST', path: '/ceiling', headers: { 'content-type': 'application/json', 'webhook-id': `ceiling-${i}`, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: SOURCES.length * TARGETS.length }, async () => {
    for (let i = next++; i < n; i = next++) await one(i);
  }));
  const rate = n / ((performance.now() - t0) / 1000);
  agent.destroy();
  return rate;
}

async function backlog(n: number): Promise<void> {
  const count = Math.ceil(n / TARGETS.length);
  for (let i = 0; i < count; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, count - i) }, (_, k) =>
        events.publish(pool, operator, { eventName: 'stock.changed', sourceIntegrationId: SOURCES[(i + k) % SOURCES.length]!, targetIntegrationIds: TARGETS, payload: { n: i + k, sku: `SKU-${i + k}` }, eventCategory: 'inventory' }),
      ),
    );
  }
}

const open = async () => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM event_deliveries WHERE status IN ('pending', 'failed')`)).rows[0]!.n);

try {
  const ceil = await ceiling(DELIVERIES);
  await backlog(DELIVERIES);
  const total = await open();
  const worker = new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: benchLog });
  const t0 = performance.now();
  worker.start();
  while ((await open()) > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  await worker.stop();
  // a lane's order is its rows' order (the events were accepted concurrently, so not their payloads' n)
  const { rows: order } = await pool.query<{ lane: string; ids: string[] }>(
    `SELECT source_integration_id || '>' || target_integration_id AS lane, array_agg(event_id ORDER BY id) AS ids FROM event_deliveries GROUP BY 1`,
  );
  const inOrder = order.every((o) => JSON.stringify(o.ids) === JSON.stringify(arrived.get(o.lane)));
  console.log(`\nCross-integration delivery to HTTP endpoints only (${SOURCES.length} sources x ${TARGETS.length} targets = ${SOURCES.length * TARGETS.length} lanes, one POST in flight per lane; ${total} deliveries backlog)\n`);
  console.log(
    table(
      ['measure', 'value'],
      [
        [`the same POSTs without the database, ${SOURCES.length * TARGETS.length} at a time (ceiling), POST/s`, fmt(ceil, 0)],
        ['signed webhook deliveries drained, deliveries/s', fmt(total / seconds, 0)],
        ['  lanes / deliveries seen / POSTs', `${arrived.size} / ${seen.size} / ${posts - DELIVERIES}`],
        ['  every lane in order', inOrder ? 'yes' : 'NO'],
      ],
    ),
  );
} finally {
  receiver.close();
  await pool.end();
  await db.stop();
}
