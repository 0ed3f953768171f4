/**
 * `npm run bench` (NATS part), against NATS_URL (default nats://127.0.0.1:4222) and
 * DATABASE_URL (or an embedded PostgreSQL):
 * 1. raw JetStream publish, pipelined (window 256) with `Nats-Msg-Id`: the ceiling;
 *    1b. the same through the relay's own publisher (runtime/nats/publisher.ts);
 * 2. the outbox relay (read batch, publish with ids, delete) over the same stream, same run;
 * 3. end-to-end latency from an outside publish (a publisher in its own process) on an actor
 *    subject to the actor's commit, at 1,000 msg/s (partitioned subject, and plain subject
 *    through the ingress);
 * 4. the maximum sustained rate: a 20,000-message backlog applied by one process.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import pg from 'pg';
import { assign, setup } from 'xstate';
import { loadConfig } from '../runtime/config.js';
import { createPool, type Database } from '../runtime/db.js';
import { InProcessDelivery } from '../runtime/in-process.js';
import { migrate } from '../runtime/migrate.js';
import { AckPublisher } from '../runtime/nats/publisher.js';
import { NatsTransport } from '../runtime/nats/transport.js';
import { partitionedActorSubject } from '../runtime/nats/subjects.js';
import { Registry, type ActorTypeDefinition } from '../runtime/registry.js';
import { OutboxRelay } from '../runtime/relay.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { InProcessBus } from '../runtime/bus.js';
import { benchDatabase, dropNatsStreams, benchLog, fmt, percentile, table } from './lib.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PARTITIONS = 8;
const N = Number(process.env.BENCH_NATS_MESSAGES ?? 20_000);
const ACTORS = 1_000;
const enc = new TextEncoder();
// every client here connects as the runtime does (runtime/nats/connection.ts): without async
// stack traces, which cost an Error per publish

const sinkType: ActorTypeDefinition = {
  type: 'sink',
  version: 1,
  machine: setup({
    types: { context: {} as { n: number; sentAt: number }, events: {} as { type: 'sink.put'; sentAt: number }, input: {} as { id: string } },
  }).createMachine({
    id: 'sink',
    context: { n: 0, sentAt: 0 },
    on: { 'sink.put': { actions: assign({ n: ({ context }) => context.n + 1, sentAt: ({ event }) => event.sentAt }) } },
  }),
  project: () => ({ status: 'ON' }),
};

function env(url: string, prefix: string) {
  return loadConfig({
    DATABASE_URL: url,
    NATS_URL,
    NATS_PREFIX: prefix,
    NATS_SERVICE_SUBJECTS: `${prefix}svc.>`,
    SAGA_SERVICE_PREFIX: `${prefix}svc`,
    NATS_SERVICE_EVENTS: `${prefix}svc.events.>`,
    PARTITIONS: String(PARTITIONS),
    LOG_LEVEL: 'warn',
    OUTBOX_BATCH: '256',
    DB_POOL_SIZE: '16',
    // the runtime's own knobs, when the caller sets them (e.g. COMMIT_CONCURRENCY=4 npm run bench -- nats)
    ...Object.fromEntries(['COMMIT_CONCURRENCY', 'ACTOR_LIVE_SIZE'].filter((k) => process.env[k]).map((k) => [k, process.env[k]!])),
  });
}

function openDb(url: string): Database {
  const pool = createPool(url, 16);
  return { pool, url, close: () => pool.end() };
}

/** 1. Raw pipelined publish with message ids, window 256. */
async function rawPublish(prefix: string, round: number): Promise<number> {
  const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  const js = jetstream(nc);
  const t = performance.now();
  for (let i = 0; i < N; i += 256) {
    const acks = [];
    for (let k = i; k < Math.min(N, i + 256); k++) {
      const subject = partitionedActorSubject(prefix, { type: 'sink', id: `r${k % ACTORS}` }, PARTITIONS);
      acks.push(js.publish(subject, enc.encode(JSON.stringify({ type: 'sink.put', sentAt: 0 })), { msgID: `raw-${round}-${k}` }));
    }
    await Promise.all(acks);
  }
  const rate = N / ((performance.now() - t) / 1000);
  await nc.close();
  return rate;
}

/** 1b. The same pipelined publish through the relay's own publisher (acks matched by reply token). */
async function rawAckPublisher(prefix: string, round: number): Promise<number> {
  const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  const publisher = new AckPublisher(nc, 5_000);
  const t = performance.now();
  for (let i = 0; i < N; i += 256) {
    const acks = [];
    for (let k = i; k < Math.min(N, i + 256); k++) {
      const subject = partitionedActorSubject(prefix, { type: 'sink', id: `r${k % ACTORS}` }, PARTITIONS);
      const h = headers();
      h.set('Nats-Msg-Id', `rawp-${round}-${k}`);
      acks.push(publisher.publish(subject, enc.encode(JSON.stringify({ type: 'sink.put', sentAt: 0 })), h));
    }
    await Promise.all(acks);
  }
  const rate = N / ((performance.now() - t) / 1000);
  publisher.close();
  await nc.close();
  return rate;
}

/** 2. The relay: N outbox rows (sends to 1,000 actors) published with ids and deleted. */
async function relayRate(db: Database, prefix: string, round: number): Promise<number> {
  const config = env(db.url, prefix);
  await db.pool.query(
    `INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload)
     SELECT (g % $2), 'src', 's' || (g % 64), 'send', 'concord.actor.sink.q' || (g % ${ACTORS}), 'rel-${round}-' || g, '{"type":"sink.put","sentAt":0}'::jsonb
     FROM generate_series(1, $1) g`,
    [N, PARTITIONS],
  );
  const host = null as never; // calls only: none in this benchmark
  const transport = new NatsTransport({ url: NATS_URL, config: config.nats, partitions: PARTITIONS, pool: db.pool, host, log: benchLog, calls: new InProcessDelivery(host, new InProcessBus()) });
  await transport.start();
  const relay = new OutboxRelay({ pool: db.pool, delivery: transport, log: benchLog, batch: config.outboxBatch, pollMs: 20, maxAttempts: 10 });
  const t = performance.now();
  for (let p = 0; p < PARTITIONS; p++) relay.acquired(p);
  // the relay's own counter (rows deleted after their ack): no extra load on the database
  const deadline = Date.now() + 120_000;
  while (relay.delivered < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  const rate = N / ((performance.now() - t) / 1000);
  await relay.stop();
  await transport.close();
  return rate;
}

async function runtimeFor(db: Database, prefix: string, onCommit: (sentAt: number) => void, onStep?: (sentAt: number) => void): Promise<Runtime> {
  const rt = await createRuntime({
    config: env(db.url, prefix),
    registry: new Registry([sinkType]),
    log: benchLog,
    database: db,
    run: { timers: false },
    hooks: {
      beforeCommit(rec) {
        onStep?.((rec.journal.event as { sentAt?: number }).sentAt ?? 0);
      },
      afterCommit(rec) {
        onCommit((rec.journal.event as { sentAt?: number }).sentAt ?? 0);
      },
    },
  });
  await rt.start();
  return rt;
}

/**
 * The outside publisher, in its own process (an external client does not share the event loop
 * of the runtime it publishes to): this script with `--pace <prefix> <plain 0|1> <tag> <ms>`.
 */
async function paceOutside(prefix: string, plain: boolean, tag: string, ms: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--pace', prefix, plain ? '1' : '0', tag, String(ms)], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`publisher exited with ${code}`);
}

async function paceMain(): Promise<void> {
  const [prefix, plain, tag, ms] = process.argv.slice(3) as [string, string, string, string];
  const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  await pace(jetstream(nc), prefix, plain === '1', tag, Number(ms));
  await nc.close();
}

/** Publishes 10 messages every 10 ms (1,000 msg/s) for `ms`; returns the publish acks. */
async function pace(js: ReturnType<typeof jetstream>, prefix: string, plain: boolean, tag: string, ms: number): Promise<void> {
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < ms; i += 10) {
    const wait = start + i - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (let k = i; k < i + 10; k++) {
      const id = `l${k % ACTORS}`;
      const subject = plain ? `${prefix}.actor.sink.${id}` : partitionedActorSubject(prefix, { type: 'sink', id }, PARTITIONS);
      pending.push(js.publish(subject, enc.encode(JSON.stringify({ type: 'sink.put', sentAt: Date.now() })), { msgID: `${tag}-${k}` }));
    }
  }
  await Promise.all(pending);
}

/**
 * 3. Latency at 1,000 msg/s: 2 s of warm-up (consumers attached, the 1,000 actors created and
 * cached), then 5 s measured from the publish call (in the publisher's process) to the actor's
 * commit (in the runtime's).
 */
async function latency(db: Database, prefix: string, plain: boolean, seconds = 5): Promise<{ p50: number; p99: number; n: number; stepP50: number; stepP99: number }> {
  let measuring = false;
  let warm = 0;
  const lat: number[] = [];
  const toStep: number[] = [];
  await provision(db, prefix);
  const rt = await runtimeFor(db, prefix, (sentAt) => {
    if (!sentAt) return;
    if (measuring) lat.push(Date.now() - sentAt);
    else warm++;
  }, (sentAt) => {
    if (sentAt && measuring) toStep.push(Date.now() - sentAt);
  });
  const tag = plain ? 'ingress' : 'direct';
  await paceOutside(prefix, plain, `${tag}-warm`, 2_000);
  let deadline = Date.now() + 60_000;
  while (warm < 2_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  measuring = true;
  await paceOutside(prefix, plain, `${tag}-lat`, seconds * 1_000);
  deadline = Date.now() + 60_000;
  while (lat.length < seconds * 1_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await rt.stop();
  lat.sort((a, b) => a - b);
  toStep.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length, stepP50: percentile(toStep, 50), stepP99: percentile(toStep, 99) };
}

/** Creates the streams of `prefix` (as a runtime does at start). */
async function provision(db: Database, prefix: string): Promise<void> {
  const t = new NatsTransport({ url: NATS_URL, config: env(db.url, prefix).nats, partitions: PARTITIONS, pool: db.pool, host: null as never, log: benchLog, calls: null as never });
  await t.start();
  await t.close();
}

/** 4. Max sustained rate: a backlog of N messages, applied by one process. */
async function maxRate(db: Database, prefix: string): Promise<number> {
  await provision(db, prefix);
  const nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
  const js = jetstream(nc);
  for (let i = 0; i < N; i += 256) {
    const acks = [];
    for (let k = i; k < Math.min(N, i + 256); k++) {
      acks.push(js.publish(partitionedActorSubject(prefix, { type: 'sink', id: `m${k % ACTORS}` }, PARTITIONS), enc.encode('{"type":"sink.put","sentAt":0}'), { msgID: `max-${k}` }));
    }
    await Promise.all(acks);
  }
  await nc.close();
  let applied = 0;
  let t = 0;
  let last = 0;
  const rt = await runtimeFor(db, prefix, () => {
    if (applied++ === 0) t = performance.now();
    last = performance.now();
  });
  const deadline = Date.now() + 120_000;
  while (applied < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await rt.stop();
  return applied / ((last - t) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;


async function main() {
  const prefix = `bench${randomBytes(3).toString('hex')}`;
  const target = await benchDatabase(`concord_bench_nats_${process.pid}`);
  const db = openDb(target.url);
  await migrate(db.pool, benchLog);
  try {
    // the streams exist before the raw publish (the relay provisions the same ones)
    await provision(db, prefix);
    // three alternating rounds; the medians are compared (the machine is shared and noisy)
    const raws: number[] = [];
    const rawOwn: number[] = [];
    const relays: number[] = [];
    // BENCH_NATS_ONLY=latency skips the throughput rounds, =relay runs only them (for profiling)
    const only = process.env.BENCH_NATS_ONLY;
    for (let round = 0; round < (only === 'latency' ? 0 : 3); round++) {
      raws.push(await rawPublish(prefix, round));
      rawOwn.push(await rawAckPublisher(prefix, round));
      relays.push(await relayRate(db, prefix, round));
    }
    const raw = median(raws);
    const own = median(rawOwn);
    const relay = median(relays);
    if (only === 'relay') {
      console.log(
        `raw ${raws.map((r) => fmt(r, 0)).join(', ')} msg/s; raw (AckPublisher) ${rawOwn.map((r) => fmt(r, 0)).join(', ')} msg/s; relay ${relays.map((r) => fmt(r, 0)).join(', ')} rows/s = ${fmt((relay / raw) * 100, 0)}% of raw, ${fmt((relay / own) * 100, 0)}% of raw (AckPublisher)`,
      );
      return;
    }
    await db.pool.query('TRUNCATE actors, inbox, journal');
    const direct = await latency(db, `${prefix}l`, false);
    const viaIngress = await latency(db, `${prefix}i`, true);
    const max = await maxRate(db, `${prefix}m`);
    console.log(`NATS benchmark: ${N.toLocaleString()} messages, ${ACTORS} actors, ${PARTITIONS} partitions, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(
      table(
        ['measure', 'result'],
        [
          ['raw JetStream publish, pipelined (256), with Nats-Msg-Id', `${fmt(raw, 0)} msg/s (median of ${raws.map((r) => fmt(r, 0)).join(', ')})`],
          ['raw pipelined publish (256) through the relay\'s AckPublisher', `${fmt(own, 0)} msg/s (median of ${rawOwn.map((r) => fmt(r, 0)).join(', ')})`],
          [
            'outbox relay (batch 256, publish with ids, delete)',
            `${fmt(relay, 0)} rows/s = ${fmt((relay / raw) * 100, 0)}% of raw, ${fmt((relay / own) * 100, 0)}% of raw through AckPublisher (median of ${relays.map((r) => fmt(r, 0)).join(', ')})`,
          ],
          ['end-to-end at 1,000 msg/s, partitioned subject', `p50 ${fmt(direct.p50, 0)} ms, p99 ${fmt(direct.p99, 0)} ms (n=${direct.n}; to the transition p50 ${fmt(direct.stepP50, 0)}, p99 ${fmt(direct.stepP99, 0)})`],
          ['end-to-end at 1,000 msg/s, plain subject via ingress', `p50 ${fmt(viaIngress.p50, 0)} ms, p99 ${fmt(viaIngress.p99, 0)} ms (n=${viaIngress.n}; to the transition p50 ${fmt(viaIngress.stepP50, 0)}, p99 ${fmt(viaIngress.stepP99, 0)})`],
          ['max sustained rate (backlog applied by one process)', `${fmt(max, 0)} msg/s`],
        ],
      ),
    );
  } finally {
    await db.close();
    for (const p of [prefix, `${prefix}l`, `${prefix}i`, `${prefix}m`]) await dropNatsStreams(NATS_URL, p);
    const admin = new URL(target.url);
    const name = admin.pathname.slice(1);
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await client.end();
    await target.stop();
  }
}

if (process.argv[2] === '--pace') await paceMain();
else await main();
