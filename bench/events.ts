/**
 * Cross-integration events: accepted per second over HTTP (a real port), delivered per second
 * to a local webhook receiver (signed POSTs), and delivery latency (accept -> receiver) at a
 * fixed 500 events/s. `npx tsx bench/events.ts` (DATABASE_URL, or an embedded PostgreSQL).
 *
 * BENCH_EVENTS (default 3000) events for throughput, each to BENCH_TARGETS (default 2) targets
 * from 10 sources; BENCH_RATE_SECONDS (default 10) seconds at 500/s, one target each.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { serve } from '@hono/node-server';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import { createServices } from '../services/index.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 3000);
const TARGETS = Number(process.env.BENCH_TARGETS ?? 2);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
const RATE = 500;
const SECRET = 'bench-secret-0123456789-0123456789-abcdef';

const db = await benchDatabase('concord_bench_events');
const runtime = await createRuntime({
  config: loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'warn', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', EVENT_DELIVERY_POLL_MS: '50', EVENT_DELIVERY_BATCH: '128', DB_POOL_SIZE: '24' }),
  registry: new Registry([]),
  log: benchLog,
});
const services = createServices({ runtime, log: benchLog });
await runtime.start();
await services.start();
const app = createApp({ services, log: benchLog, jwtSecret: SECRET });
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise<void>((r) => server.once('listening', () => r()));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/vendor-partner-coordination`;
const token = signToken({ sub: 'bench', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);

// the receiver: records when each (event, target) first arrived
const arrived = new Map<string, number>();
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const id = String(req.headers['webhook-id']);
    if (!arrived.has(id)) arrived.set(id, performance.now());
    res.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const rxPort = (receiver.address() as AddressInfo).port;
const targets = Array.from({ length: 5 }, (_, i) => `bench-target-${i}`);
for (const t of targets) {
  await fetch(`${base}/integrations/${t}/endpoint`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: `http://127.0.0.1:${rxPort}/${t}` }) });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(body: unknown): Promise<{ id: string }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/events`, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 202 ? resolve(JSON.parse(Buffer.concat(chunks).toString())) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}
const event = (source: number, n: number, targetIds: string[]) => ({
  eventName: 'customer.updated',
  sourceIntegrationId: `bench-source-${source}`,
  targetIntegrationIds: targetIds,
  payload: { n, customerId: `cust-${n}` },
  eventCategory: 'data_sync',
  priority: 'medium',
});
const waitDelivered = async (expected: number) => {
  while (arrived.size < expected) await new Promise((r) => setTimeout(r, 5));
};

// 1) throughput: 10 sources, each posting its events in order, 32 requests in flight in total
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (let n = next++; n < EVENTS; n = next++) await post(event(n % 10, n, targets.slice(0, TARGETS)));
  }),
);
const accepted = performance.now();
await waitDelivered(EVENTS * TARGETS);
const delivered = performance.now();
const acceptRate = EVENTS / ((accepted - t0) / 1000);
const deliverRate = (EVENTS * TARGETS) / ((delivered - t0) / 1000);

// 2) latency at a fixed rate (one target each), from the POST being sent to the receiver's arrival
async function atRate(rate: number): Promise<{ latencies: number[]; achieved: number }> {
  arrived.clear();
  const sentAt = new Map<string, number>();
  const total = rate * RATE_SECONDS;
  const start = performance.now();
  const posts: Promise<void>[] = [];
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const target = targets[n % targets.length]!;
    const sent = performance.now();
    posts.push(post(event(n % 10, n, [target])).then((r) => void sentAt.set(`msg_${r.id}_${target}`, sent)));
  }
  await Promise.all(posts);
  const achieved = total / ((performance.now() - start) / 1000); // accepted per second while offered `rate`
  await waitDelivered(total);
  return { latencies: [...sentAt].map(([id, sent]) => arrived.get(id)! - sent).sort((a, b) => a - b), achieved };
}
const slow = await atRate(100);
const { latencies, achieved } = await atRate(RATE);

console.log(
  `\nCross-integration events (${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${process.env.DATABASE_URL ? 'PostgreSQL at DATABASE_URL' : 'embedded PostgreSQL'}, in-process channel + webhook to a local receiver)\n`,
);
console.log(
  table(
    ['measure', 'value'],
    [
      [`accepted over HTTP (${EVENTS} events, 32 in flight)`, `${fmt(acceptRate, 0)} events/s`],
      [`delivered (${EVENTS * TARGETS} signed webhook POSTs)`, `${fmt(deliverRate, 0)} deliveries/s`],
      [`latency at ${RATE}/s for ${RATE_SECONDS} s: p50`, `${fmt(percentile(latencies, 50), 1)} ms`],
      ['latency p99', `${fmt(percentile(latencies, 99), 1)} ms`],
      ['latency max', `${fmt(latencies[latencies.length - 1] ?? NaN, 1)} ms`],
      [`accepted while offered ${RATE}/s`, `${fmt(achieved, 0)} events/s`],
      [`latency at 100/s for ${RATE_SECONDS} s: p50 / p99`, `${fmt(percentile(slow.latencies, 50), 1)} / ${fmt(percentile(slow.latencies, 99), 1)} ms`],
    ],
  ),
);

server.close();
receiver.close();
agent.destroy();
await runtime.stop();
await db.stop();
process.exit(0);
