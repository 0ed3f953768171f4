/**
 * `npx tsx bench/delivery.ts`: cross-integration delivery over NATS only (no HTTP endpoints),
 * 4 sources x 2 targets = 8 lanes, against NATS_URL (default nats://127.0.0.1:4222) and
 * DATABASE_URL (or an embedded PostgreSQL). In one run:
 *   1. the ceiling: raw JetStream publishes of the same messages, pipelined, with Nats-Msg-Id;
 *   2. throughput: a backlog of BENCH_DELIVERIES (default 20,000) deliveries drained by one
 *      worker, one row per lane at a time (the old way) and in lane batches (now);
 *      with the CPU each message cost our process, PostgreSQL and nats-server (from /proc);
 *   3. latency: events offered at a fixed rate (500 events/s = 1,000 deliveries/s), from the
 *      event's scheduled send (so its accept, and any lateness of this load generator, are in it)
 *      to its message seen by a subscriber of the deliver subjects, p50/p99.
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { systemClock } from '../runtime/clock.js';
import { loadConfig } from '../runtime/config.js';
import { createPool } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { deliverSubject, natsDeliverPublisher } from '../services/events/channel.js';
import { EventService } from '../services/events/service.js';
import { EventDeliveryWorker } from '../services/events/worker.js';
import { benchDatabase, benchLog, dropNatsStreams, fmt, percentile, table } from './lib.js';
import { cpuNow, natsPid, postmasterOf } from './proc.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 20_000);
const RATE = Number(process.env.BENCH_DELIVERY_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SOURCES = ['src-1', 'src-2', 'src-3', 'src-4'];
const TARGETS = ['tgt-a', 'tgt-b'];
const operator = { sub: 'bench', role: 'operator' as const, tenantId: null };

const prefix = `bd${randomBytes(3).toString('hex')}`;
const env = { DATABASE_URL: '', NATS_URL, NATS_PREFIX: prefix, LOG_LEVEL: 'warn', EVENT_DELIVERY_POLL_MS: '20', EVENT_DELIVERY_BATCH: '64', DB_POOL_SIZE: '16' };
const db = await benchDatabase(`concord_bench_delivery_${process.pid}`);
env.DATABASE_URL = db.url;
const config = loadConfig(env);
const pool = createPool(db.url, 16, 'concord-bench');
await migrate(pool, benchLog);
const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
const publish = await natsDeliverPublisher(nc, config.nats, benchLog);
const events = new EventService(pool, systemClock, config.events);

async function backlog(n: number): Promise<void> {
  // one INSERT per event through the service (the accept path), in parallel chunks
  const perEvent = TARGETS.length;
  const count = Math.ceil(n / perEvent);
  for (let i = 0; i < count; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, count - i) }, (_, k) =>
        events.publish(pool, operator, { eventName: 'stock.changed', sourceIntegrationId: SOURCES[(i + k) % SOURCES.length]!, targetIntegrationIds: TARGETS, payload: { n: i + k, sku: `SKU-${i + k}` }, eventCategory: 'inventory' }),
      ),
    );
  }
}

const open = async () => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM event_deliveries WHERE status IN ('pending', 'failed')`)).rows[0]!.n);

const postmaster = await postmasterOf(pool);
const nats = natsPid(NATS_URL);
type Cpu = { node: number; postgres: number; nats: number };
/** CPU µs per message by process since `c0` (the open-rows poll of a drain is in it: one count per 20 ms). */
const perMessage = (c0: Cpu, n: number): Cpu => {
  const c1 = cpuNow(postmaster, nats);
  return { node: (c1.node - c0.node) / n, postgres: (c1.postgres - c0.postgres) / n, nats: (c1.nats - c0.nats) / n };
};
const cpuCell = (c: Cpu) => `${fmt(c.node, 0)} / ${fmt(c.postgres, 0)} / ${fmt(c.nats, 0)} = ${fmt(c.node + c.postgres + c.nats, 0)}`;

async function drain(laneBatch: number): Promise<{ perSecond: number; seconds: number; cpu: Cpu }> {
  await backlog(DELIVERIES);
  const total = await open();
  const worker = new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: benchLog, publish, laneBatch });
  const c0 = cpuNow(postmaster, nats);
  const t0 = performance.now();
  worker.start();
  // done when the worker has recorded them all (a count of the open rows every 20 ms would cost
  // PostgreSQL more than the delivery: with no vacuum it visits every row of the backlog each time)
  while (worker.stats.delivered < total) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = perMessage(c0, total);
  await worker.stop();
  return { perSecond: total / seconds, seconds, cpu };
}

async function ceiling(n: number): Promise<{ perSecond: number; cpu: Cpu }> {
  const js = jetstream(nc);
  const c0 = cpuNow(postmaster, nats);
  const t0 = performance.now();
  const window: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    const h = natsHeaders();
    h.set('webhook-id', `ceiling-${i}`);
    window.push(js.publish(deliverSubject(prefix, TARGETS[i % 2]!), JSON.stringify({ type: 'stock.changed', data: { n: i, sku: `SKU-${i}` } }), { msgID: `ceiling-${prefix}-${i}`, headers: h }));
    if (window.length >= 256) await Promise.all(window.splice(0));
  }
  await Promise.all(window);
  return { perSecond: n / ((performance.now() - t0) / 1000), cpu: perMessage(c0, n) };
}

async function latency(): Promise<{ p50: number; p99: number; max: number; seen: number; offered: number }> {
  const worker = new EventDeliveryWorker({ pool, config: config.events, clock: systemClock, log: benchLog, publish });
  worker.start();
  const sentAt = new Map<string, number>();
  const lat: number[] = [];
  const sub = nc.subscribe(`${prefix}.deliver.>`);
  void (async () => {
    for await (const m of sub) {
      const id = (m.json() as { data: { id: string; targetIntegrationId: string } }).data;
      const t = sentAt.get(id.id);
      if (t !== undefined) lat.push(performance.now() - t);
    }
  })();
  const interval = 1000 / RATE;
  const start = performance.now();
  let sent = 0;
  const inflight: Array<Promise<unknown>> = [];
  while (performance.now() - start < SECONDS * 1000) {
    const due = start + sent * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const n = sent++;
    inflight.push(
      events.publish(pool, operator, { eventName: 'stock.changed', sourceIntegrationId: SOURCES[n % SOURCES.length]!, targetIntegrationIds: TARGETS, payload: { n }, eventCategory: 'inventory' }).then((e) => {
        sentAt.set(e.id, due);
        worker.wake();
      }),
    );
  }
  await Promise.all(inflight);
  const deadline = Date.now() + 30_000;
  while (lat.length < sent * TARGETS.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  sub.unsubscribe();
  await worker.stop();
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? NaN, seen: lat.length, offered: sent * TARGETS.length };
}

try {
  const ceil = await ceiling(DELIVERIES);
  const before = await drain(1);
  const after = await drain(Number(process.env.BENCH_LANE_BATCH ?? 128));
  const l = await latency();
  console.log(`\nCross-integration delivery over NATS only (${SOURCES.length} sources x ${TARGETS.length} targets = ${SOURCES.length * TARGETS.length} lanes; ${DELIVERIES} deliveries backlog)\n`);
  console.log(
    table(
      ['measure', 'value'],
      [
        ['raw JetStream publish, pipelined (ceiling), msg/s', fmt(ceil.perSecond, 0)],
        ['one row per lane at a time (before), deliveries/s', fmt(before.perSecond, 0)],
        [`lane batches of up to ${process.env.BENCH_LANE_BATCH ?? 128} (now), deliveries/s`, fmt(after.perSecond, 0)],
        ['CPU µs per message, node / PostgreSQL / nats-server: raw publish', cpuCell(ceil.cpu)],
        ['  one row per lane at a time', cpuCell(before.cpu)],
        ['  lane batches', cpuCell(after.cpu)],
        [`at ${RATE * TARGETS.length} deliveries/s offered: scheduled send (accept included) -> seen, p50 / p99 / max ms`, `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 1)}`],
        ['  deliveries seen / offered', `${l.seen} / ${l.offered}`],
      ],
    ),
  );
} finally {
  await nc.close();
  await pool.end();
  await dropNatsStreams(NATS_URL, prefix);
  await db.stop();
}
