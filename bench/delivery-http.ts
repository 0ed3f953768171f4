/**
 * `npx tsx bench/delivery-http.ts`: cross-integration delivery to HTTP endpoints only (no
 * messaging channel), 4 sources x 4 targets = 16 lanes, each target's endpoint a local receiver
 * (a small HTTP server in its own process, answering 200 at once), DATABASE_URL (or an embedded PostgreSQL). A lane
 * keeps one signed POST in flight. In one run:
 *   1. the ceiling: the same POSTs to the receiver, 16 at a time, one after another per "lane",
 *      without the database;
 *   2. throughput: a backlog of BENCH_DELIVERIES (default 10,000) deliveries drained by one worker,
 *      one claim per POST (the old way), then with lane batches (BENCH_ENDPOINT_LANE_BATCH, default
 *      ENDPOINT_LANE_BATCH: one claim for a lane's next rows, POSTed one at a time, recorded many
 *      per statement);
 * and, per lane, that the receiver saw its events in order (each drain).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { systemClock } from '../runtime/clock.js';
import { loadConfig } from '../runtime/config.js';
import { createPool } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { EventService } from '../services/events/service.js';
import { ENDPOINT_LANE_BATCH, EventDeliveryWorker } from '../services/events/worker.js';
import { benchDatabase, benchLog, fmt, table } from './lib.js';

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 10_000);
const BATCH = Number(process.env.BENCH_ENDPOINT_LANE_BATCH ?? ENDPOINT_LANE_BATCH);
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

// the receiver, in its own process as a local endpoint would be: per (source, target) lane, the
// event ids in the order they arrived (repeats dropped by webhook-id), reported over IPC
const RECEIVER = `
const http = require('node:http');
let seen = new Set(), arrived = new Map(), posts = 0;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    posts++;
    const id = String(req.headers['webhook-id']);
    if (!seen.has(id) && !id.startsWith('ceiling-')) {
      seen.add(id);
      const { data } = JSON.parse(Buffer.concat(chunks).toString());
      const lane = data.sourceIntegrationId + '>' + data.targetIntegrationId;
      let list = arrived.get(lane);
      if (!list) arrived.set(lane, (list = []));
      list.push(data.id);
    }
    res.writeHead(200).end();
  });
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'report') process.send({ arrived: [...arrived], seen: seen.size, posts });
  if (m === 'reset') { seen = new Set(); arrived = new Map(); posts = 0; process.send({ reset: true }); }
});
process.on('disconnect', () => process.exit(0));
`;
const child = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const ask = <T>(m: string, want: (r: Record<string, unknown>) => boolean): Promise<T> =>
  new Promise((resolve) => {
    const on = (r: Record<string, unknown>) => {
      if (!want(r)) return;
      child.off('message', on);
      resolve(r as T);
    };
    child.on('message', on);
    if (m) child.send(m);
  });
const { port } = await ask<{ port: number }>('', (r) => 'port' in r);
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

async function drain(endpointLaneBatch: number): Promise<{ total: number; perSecond: number; inOrder: boolean }> {
  await pool.query('TRUNCATE event_deliveries, cross_integration_events');
  await ask('reset', (r) => 'reset' in r);
  await backlog(DELIVERIES);
  const total = await open();
  const worker = new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: benchLog, endpointLaneBatch });
  const t0 = performance.now();
  worker.start();
  // done when the worker has recorded them all (a count of the open rows every 20 ms would cost
  // PostgreSQL more than the delivery: with no vacuum it visits every row of the backlog each time)
  while (worker.stats.delivered < total) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  await worker.stop();
  // a lane's order is its rows' order (the events were accepted concurrently, so not their payloads' n)
  const { rows: order } = await pool.query<{ lane: string; ids: string[] }>(
    `SELECT source_integration_id || '>' || target_integration_id AS lane, array_agg(event_id ORDER BY id) AS ids FROM event_deliveries GROUP BY 1`,
  );
  const arrived = new Map((await ask<{ arrived: Array<[string, string[]]> }>('report', (r) => 'arrived' in r)).arrived);
  const inOrder = arrived.size === order.length && order.every((o) => JSON.stringify(o.ids) === JSON.stringify(arrived.get(o.lane)));
  return { total, perSecond: total / seconds, inOrder };
}

try {
  const ceil = await ceiling(DELIVERIES);
  // BENCH_BEFORE=0 skips the old way (profiling the lane batches alone)
  const before = process.env.BENCH_BEFORE === '0' ? { total: 0, perSecond: Number.NaN, inOrder: true } : await drain(1);
  const after = await drain(BATCH);
  console.log(`\nCross-integration delivery to HTTP endpoints only (${SOURCES.length} sources x ${TARGETS.length} targets = ${SOURCES.length * TARGETS.length} lanes, one POST in flight per lane; ${after.total} deliveries backlog)\n`);
  console.log(
    table(
      ['measure', 'value'],
      [
        [`the same POSTs without the database, ${SOURCES.length * TARGETS.length} at a time (ceiling), POST/s`, fmt(ceil, 0)],
        ['one claim per POST (before), deliveries/s', fmt(before.perSecond, 0)],
        [`lane batches of up to ${BATCH} (now), deliveries/s`, fmt(after.perSecond, 0)],
        ['  every lane in order (before / now)', `${before.inOrder ? 'yes' : 'NO'} / ${after.inOrder ? 'yes' : 'NO'}`],
      ],
    ),
  );
} finally {
  child.disconnect();
  await pool.end();
  await db.stop();
}
