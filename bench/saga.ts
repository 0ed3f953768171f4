/**
 * `npm run bench:saga`: order-fulfillment sagas end to end with the simulated services at zero
 * latency, in the embedded transport (in-process bus) and over NATS JetStream (NATS_URL,
 * default nats://127.0.0.1:4222), on DATABASE_URL's server (or an embedded PostgreSQL).
 *
 * 1. Throughput: BENCH_SAGAS (default 2,000) sagas started at once (64 starts in flight); sagas
 *    per second from the first start to the last WorkflowCompletedEvent.
 * BENCH_SAGA_MODES picks the transports (default `embedded,nats`).
 * 2. Latency at a fixed rate of 100 sagas/s for BENCH_SAGA_SECONDS (default 10): from the start
 *    call to the saga's WorkflowCompletedEvent (four steps, eight service messages), p50/p99.
 *    It is measured in steady state, before the throughput burst: BENCH_SAGA_WARMUP seconds
 *    (default 5) at the same rate run first, unmeasured (cold caches, prepared statements). After
 *    a 2,000-saga burst the process carries a ~300 MB heap whose scavenges and major GC then
 *    pause the event loop for up to 25 ms at a time (seen with --trace-gc), which would be
 *    counted as saga latency: that is the burst's cost, not the steady rate's.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { sagaType } from '../machines/saga/index.js';
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { createServices, type Services } from '../services/index.js';
import { orderData } from '../services/saga/order.js';
import { BusLink, NatsServiceLink } from '../simulator/links.js';
import { ServiceSimulator } from '../simulator/services.js';
import { benchDatabase, benchLog, dropNatsStreams, fmt, percentile, table } from './lib.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SAGAS = Number(process.env.BENCH_SAGAS ?? 2_000);
const SECONDS = Number(process.env.BENCH_SAGA_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_SAGA_WARMUP ?? 5);
const RATE = 100;

let orderSeq = 0;
const order = () => ({
  orderId: `bench-${process.pid}-${++orderSeq}`,
  customerId: 'c-1',
  items: [{ productId: 'p-1', quantity: 2, price: 29.99 }],
  paymentMethod: { type: 'CREDIT_CARD', token: 'tok_1' },
  shippingAddress: { street: '1 Main St', city: 'New York', state: 'NY', zipCode: '10001', country: 'US' },
});

interface Setup {
  runtime: Runtime;
  services: Services;
  completed: Map<string, number>;
  onComplete: Set<() => void>;
  stop(): Promise<void>;
}

async function setUp(mode: 'embedded' | 'nats'): Promise<Setup> {
  const db = await benchDatabase(`bench_saga_${mode}`);
  const prefix = mode === 'nats' ? `bs${randomBytes(3).toString('hex')}` : 'concord';
  const servicePrefix = mode === 'nats' ? `${prefix}svc` : 'svc';
  const config = loadConfig({
    ...process.env, // runtime knobs (OUTBOX_POLL_MS, COMMIT_CONCURRENCY, ...) pass through
    DATABASE_URL: db.url,
    LOG_LEVEL: 'silent',
    PARTITIONS: '8',
    DB_POOL_SIZE: '24',
    SAGA_SERVICE_PREFIX: servicePrefix,
    ...(mode === 'nats' ? { NATS_URL, NATS_PREFIX: prefix, NATS_SERVICE_SUBJECTS: `${servicePrefix}.>`, NATS_SERVICE_EVENTS: `${servicePrefix}.events.>` } : { NATS_URL: undefined }),
  });
  const runtime = await createRuntime({ config, registry: new Registry([sagaType]), log: benchLog });
  const services = createServices({ runtime, log: benchLog, run: { events: false } });
  await runtime.start();
  await services.start();
  const completed = new Map<string, number>();
  const onComplete = new Set<() => void>();
  const record = (workflowId: string) => {
    completed.set(workflowId, performance.now());
    for (const f of onComplete) f();
  };
  const subject = `${prefix}.events.WorkflowCompletedEvent`;
  let link;
  let unsubscribe: () => void;
  if (mode === 'nats') {
    const nc = runtime.nats!.link!.nc;
    const sub = nc.subscribe(subject, { callback: (_err, m) => record((m.json() as { workflowId: string }).workflowId) });
    unsubscribe = () => sub.unsubscribe();
    link = new NatsServiceLink(nc, { natsPrefix: prefix, servicePrefix, log: benchLog });
  } else {
    unsubscribe = runtime.bus.subscribe(subject, (m) => record((m.data as { workflowId: string }).workflowId));
    link = new BusLink(runtime.bus, servicePrefix, benchLog);
  }
  const sim = new ServiceSimulator({ link, servicePrefix, log: benchLog, latencyMs: 0 });
  await sim.start();
  return {
    runtime,
    services,
    completed,
    onComplete,
    async stop() {
      unsubscribe();
      await sim.stop();
      await services.stop();
      await runtime.stop();
      if (mode === 'nats') await dropNatsStreams(NATS_URL, prefix);
      await db.stop();
    },
  };
}

function waitAll(s: Setup, ids: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (ids.every((id) => s.completed.has(id))) {
        s.onComplete.delete(check);
        clearTimeout(t);
        resolve();
      }
    };
    const t = setTimeout(() => {
      s.onComplete.delete(check);
      reject(new Error(`${ids.filter((id) => !s.completed.has(id)).length} of ${ids.length} sagas did not complete in ${timeoutMs} ms`));
    }, timeoutMs);
    s.onComplete.add(check);
    check();
  });
}

async function throughput(s: Setup): Promise<{ sagasPerSec: number; ms: number }> {
  const sagas = s.services.sagas;
  const ids: string[] = [];
  const t0 = performance.now();
  const queue = Array.from({ length: SAGAS }, () => order());
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let o = queue.pop(); o; o = queue.pop()) ids.push((await sagas.start('ORDER_FULFILLMENT', orderData(o))).workflowId);
    }),
  );
  await waitAll(s, ids, 300_000);
  const last = Math.max(...ids.map((id) => s.completed.get(id)!));
  return { sagasPerSec: SAGAS / ((last - t0) / 1000), ms: last - t0 };
}

async function latency(s: Setup, seconds: number): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const sagas = s.services.sagas;
  const started = new Map<string, number>();
  const total = RATE * seconds;
  const t0 = performance.now();
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const at = performance.now();
    pending.push(sagas.start('ORDER_FULFILLMENT', orderData(order())).then((r) => void started.set(r.workflowId, at)));
  }
  await Promise.all(pending);
  const ids = [...started.keys()];
  await waitAll(s, ids, 120_000);
  const lat = ids.map((id) => s.completed.get(id)! - started.get(id)!).sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1]!, n: lat.length };
}

async function main(): Promise<void> {
  const load = os.loadavg()[0]!;
  const rows: Array<Array<string | number>> = [];
  const modes = (process.env.BENCH_SAGA_MODES ?? 'embedded,nats').split(',') as Array<'embedded' | 'nats'>;
  for (const mode of modes) {
    let s: Setup;
    try {
      s = await setUp(mode);
    } catch (err) {
      console.error(`${mode}: skipped (${(err as Error).message})`);
      continue;
    }
    try {
      if (WARMUP_SECONDS > 0) await latency(s, WARMUP_SECONDS);
      const lat = await latency(s, SECONDS);
      const tp = await throughput(s);
      rows.push([mode, SAGAS, fmt(tp.sagasPerSec, 0), `${RATE}/s x ${SECONDS} s (after ${WARMUP_SECONDS} s)`, fmt(lat.p50, 1), fmt(lat.p99, 1), fmt(lat.max, 1)]);
    } finally {
      await s.stop();
    }
  }
  console.log(`\nSagas end to end (ORDER_FULFILLMENT: 4 steps, simulator at 0 ms latency); ${os.cpus().length} cores, load average ${fmt(load, 2)} at start, ${fmt(os.loadavg()[0]!, 2)} at end\n`);
  console.log(table(['transport', 'sagas', 'sagas/s (max)', 'fixed rate', 'p50 ms', 'p99 ms', 'max ms'], rows));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
