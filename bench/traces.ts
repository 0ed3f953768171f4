/**
 * `npm run bench -- traces`: what tracing costs. Persisted transitions per second and `send`
 * latency through the runtime (cached actors, one outbox row per event) with tracing off (no
 * OTEL_EXPORTER_OTLP_ENDPOINT: the default) and on (spans of each transition and commit, the
 * traceparent written into each outbox row and the trace id into the journal, exported over
 * OTLP/HTTP to a local receiver that accepts and drops them). Off runs before and after on, so
 * the spread between the two off rows shows the machine's noise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { loadConfig } from '../runtime/config.js';
import { createPool, type Database } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { Tracing } from '../runtime/tracing.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';
import { benchType } from './machines.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ACTORS = 2_000;
const CONCURRENCY = [1, 32];

async function drive(c: number, op: (sender: number, i: number) => Promise<void>): Promise<{ rate: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: c }, async (_, s) => {
      for (let i = 0; performance.now() < end; i++) {
        const t = performance.now();
        await op(s, i);
        lat.push(performance.now() - t);
        done++;
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return { rate: done / SECONDS, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/** An OTLP/HTTP receiver that reads each export and answers 200: the exporter's whole cost, no collector's. */
async function sink(): Promise<{ url: string; spans: () => number; close(): Promise<void> }> {
  let bytes = 0;
  let exports = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      exports++;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans: () => exports, close: () => new Promise((r) => server.close(() => r())) };
}

async function runtimeOver(url: string, tracing: Tracing): Promise<Runtime> {
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'warn', ACTOR_CACHE_SIZE: String(ACTORS), DB_POOL_SIZE: '16' });
  const pool = createPool(url, config.dbPoolSize);
  const database: Database = { pool, url, close: () => pool.end() };
  const rt = await createRuntime({ config, registry: new Registry([benchType]), log: benchLog, database, tracing, run: { timers: false, relay: false } });
  await rt.start();
  return rt;
}

async function main() {
  const { url, stop } = await benchDatabase('concord_bench_traces');
  const setup = new pg.Pool({ connectionString: url, max: 2 });
  await migrate(setup);
  const receiver = await sink();
  let seq = 0;
  const rows: Array<Array<string | number>> = [];
  const modes: Array<{ label: string; tracing: () => Tracing }> = [
    { label: 'off (no endpoint)', tracing: () => Tracing.off },
    { label: 'on (OTLP/HTTP export)', tracing: () => Tracing.otlp({ endpoint: receiver.url, serviceName: 'concord-bench' }) },
    { label: 'off again', tracing: () => Tracing.off },
  ];
  let created = false;
  for (const mode of modes) {
    const rt = await runtimeOver(url, mode.tracing());
    if (!created) {
      await Promise.all(Array.from({ length: 32 }, async (_, s) => {
        for (let i = s; i < ACTORS; i += 32) await rt.host.send({ type: 'bench', id: `a${i}` }, { type: 'bench.tick', i: seq++ });
      }));
      await setup.query('ANALYZE');
      created = true;
    }
    // warm the cache (and the live actors) of this runtime first
    for (let i = 0; i < ACTORS; i++) await rt.host.send({ type: 'bench', id: `a${i}` }, { type: 'bench.tick', i: seq++ });
    for (const c of CONCURRENCY) {
      const r = await drive(c, (s, i) => {
        const n = seq++;
        return rt.host.send({ type: 'bench', id: `a${(s + c * i) % ACTORS}` }, { type: 'bench.tick', i: n }, { messageId: `m${n}` }).then(() => undefined);
      });
      rows.push([mode.label, c, fmt(r.rate, 0), fmt(r.p50), fmt(r.p99)]);
    }
    await rt.stop();
    await rt.database.close();
  }
  const traced = await setup.query<{ n: number }>('SELECT count(*)::int AS n FROM journal WHERE trace_id IS NOT NULL');
  console.log(`\ntracing cost: ${SECONDS} s per row, ${ACTORS} cached actors, one outbox row per event (${traced.rows[0]!.n} journal entries carry a trace id; ${receiver.spans()} OTLP exports received)\n`);
  console.log(table(['tracing', 'senders', 'events/s', 'p50 ms', 'p99 ms'], rows));
  await receiver.close();
  await setup.end();
  await stop();
}

await main();
