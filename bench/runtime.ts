/**
 * `npm run bench` (runtime part): persisted transitions per second and `send` latency at 1, 8,
 * 32 and 50 concurrent senders (50: the HTTP benchmark's connections) over 10,000 actors with one
 * outbox message per event, cached and cold, against the ceiling: the same writes as ONE plain
 * SQL statement per event from pg. A last set of rows drives the runtime's own commit statement
 * (which also writes the journal) from pg with no runtime around it.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../runtime/config.js';
import { createPool, type Database } from '../runtime/db.js';
import { migrate } from '../runtime/migrate.js';
import { CommitStatement, type CommitRecord } from '../runtime/store.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime, type Runtime } from '../runtime/runtime.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';
import { benchType } from './machines.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
export const ACTORS = 10_000;
const CONCURRENCY = [1, 8, 32, 50];

interface Result {
  label: string;
  c: number;
  rate: number;
  p50: number;
  p99: number;
}

export async function drive(c: number, op: (sender: number, i: number) => Promise<void>): Promise<{ rate: number; p50: number; p99: number }> {
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

/** Sender `s` of `c` walks its own slice of the actors, so senders never queue on one actor. */
export const actorFor = (s: number, c: number, i: number) => `a${(s + c * i) % ACTORS}`;

export async function runtimeOver(url: string, cacheSize: number): Promise<Runtime> {
  const config = loadConfig({
    DATABASE_URL: url,
    LOG_LEVEL: 'warn',
    ACTOR_CACHE_SIZE: String(cacheSize),
    DB_POOL_SIZE: '16',
    COMMIT_CONCURRENCY: process.env.COMMIT_CONCURRENCY ?? '2',
    ...(process.env.ACTOR_LIVE_SIZE ? { ACTOR_LIVE_SIZE: process.env.ACTOR_LIVE_SIZE } : {}),
  });
  const pool = createPool(url, config.dbPoolSize);
  const database: Database = { pool, url, close: () => pool.end() };
  const rt = await createRuntime({ config, registry: new Registry([benchType]), log: benchLog, database, run: { timers: false, relay: false } });
  await rt.start();
  return rt;
}

async function main() {
  const { url, stop } = await benchDatabase('concord_bench_runtime');
  const setupPool = new pg.Pool({ connectionString: url, max: 2 });
  await migrate(setupPool);
  const results: Result[] = [];
  let seq = 0;

  // create the 10,000 actors (and warm the cache)
  const warm = await runtimeOver(url, 10_000);
  const t0 = performance.now();
  await drive32Create(warm);
  const createRate = ACTORS / ((performance.now() - t0) / 1000);
  // what autovacuum does within a minute of a real deployment's start: statistics for the tables
  // that just grew from empty (otherwise the planner keeps believing the inbox is empty)
  await setupPool.query('ANALYZE');

  for (const c of CONCURRENCY) {
    const r = await drive(c, (s, i) => { const n = seq++; return warm.host.send({ type: 'bench', id: actorFor(s, c, i) }, { type: 'bench.tick', i: n }, { messageId: `m${n}` }).then(() => undefined); });
    results.push({ label: 'runtime, cached', c, ...r });
  }
  await warm.stop();
  await warm.database.close();

  const cold = await runtimeOver(url, 0);
  for (const c of CONCURRENCY) {
    const r = await drive(c, (s, i) => { const n = seq++; return cold.host.send({ type: 'bench', id: actorFor(s, c, i) }, { type: 'bench.tick', i: n }, { messageId: `m${n}` }).then(() => undefined); });
    results.push({ label: 'runtime, cold (no cache)', c, ...r });
  }
  await cold.stop();
  await cold.database.close();

  // the ceiling: version-checked jsonb update + outbox insert + inbox insert as ONE statement
  const state = await plainState(setupPool);
  const plainRows = async (label: string, write: PlainWrite) => {
    for (const c of CONCURRENCY) results.push({ label, c, ...(await plainDrive(url, state, c, write, () => seq++)) });
  };
  await plainRows('ceiling: one plain SQL statement', ceilingWrite);
  // the runtime's own commit statement driven from pg, one transition per statement, no runtime
  // around it: what the required writes (snapshot, inbox, journal, outbox) cost Postgres and the
  // driver alone, the floor under the runtime rows above
  await plainRows('commit statement alone (no runtime)', commitWrite());
  await setupPool.end();

  // memory: 100,000 actors touched with a 10,000-actor cache, in a clean child process
  const memory = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./runtime-memory.ts', import.meta.url))], {
    env: { ...process.env, DATABASE_URL: url },
    encoding: 'utf8',
  }).trim();
  await stop();

  const ceiling = new Map(results.filter((r) => r.label.startsWith('ceiling')).map((r) => [r.c, r.rate]));
  console.log(`\n## Actor runtime (${SECONDS} s per row, ${ACTORS.toLocaleString()} actors, 1 outbox message per event)\n`);
  console.log(
    table(
      ['path', 'senders', 'events/s', 'p50 ms', 'p99 ms', '% of ceiling'],
      results.map((r) => [r.label, r.c, Math.round(r.rate), fmt(r.p50), fmt(r.p99), r.label.startsWith('ceiling') ? '100%' : `${Math.round((100 * r.rate) / ceiling.get(r.c)!)}%`]),
    ),
  );
  console.log(`\ncreating ${ACTORS.toLocaleString()} actors at 32 senders: ${Math.round(createRate)} actors/s`);
  console.log(memory);
}

export type PlainWrite = (pool: pg.Pool, id: string, version: number, next: unknown, n: number) => Promise<boolean>;
export type PlainState = Map<string, { version: number; snapshot: { context: { n: number } } }>;

/** The bench actors' rows as `plainDrive` tracks them. */
export async function plainState(pool: pg.Pool): Promise<PlainState> {
  const { rows } = await pool.query<{ id: string; version: number; snapshot: unknown }>(`SELECT id, version, snapshot FROM actors WHERE type = 'bench'`);
  return new Map(rows.map((r) => [r.id, { version: r.version, snapshot: r.snapshot as { context: { n: number } } }]));
}

/** `c` clients from plain `pg`, each `write` committing one transition (true when it did). */
export async function plainDrive(url: string, state: PlainState, c: number, write: PlainWrite, seq: () => number, beforeEnd?: () => void) {
  const pool = new pg.Pool({ connectionString: url, max: c });
  const r = await drive(c, async (s, i) => {
    const id = actorFor(s, c, i);
    const st = state.get(id)!;
    const n = seq();
    const next = { ...st.snapshot, context: { ...st.snapshot.context, n: st.snapshot.context.n + 1, last: n } };
    if (!(await write(pool, id, st.version, next, n))) throw new Error('version conflict');
    st.version++;
    st.snapshot = next;
  });
  beforeEnd?.(); // while the pool's backends are still alive (their CPU is read from /proc)
  await pool.end();
  return r;
}

/** The ceiling: version-checked jsonb update + outbox insert + inbox insert as ONE plain statement; true when it committed. */
export const ceilingWrite: PlainWrite = async (pool, id, version, next, n) => {
  const res = await pool.query<{ n: number }>({
    name: 'ceiling',
    text: `WITH u AS (UPDATE actors SET snapshot = $3, version = version + 1, updated_at = now()
             WHERE type = 'bench' AND id = $1 AND version = $2 RETURNING 1),
           i AS (INSERT INTO inbox (actor_type, actor_id, message_id, version, result) SELECT 'bench', $1, $4, $2 + 1, '{}' FROM u),
           o AS (INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload)
             SELECT 0, 'bench', $1, 'publish', 'bench.ticks', $4, $5 FROM u)
           SELECT count(*)::int AS n FROM u`,
    values: [id, version, JSON.stringify(next), `ceil-${n}`, JSON.stringify({ i: n })],
  });
  return res.rows[0]!.n === 1;
};

/** The runtime's own commit statement for one transition, from plain pg; true when it committed. */
export function commitWrite(): PlainWrite {
  const statement = new CommitStatement();
  return async (pool, id, version, next, n) => (await statement.run(pool, [commitRecord(id, version, next, n)])).get(`bench/${id}`) === 'committed';
}

/** One bench transition as the runtime would commit it: snapshot, inbox, journal and one outbox message. */
export function commitRecord(id: string, version: number, snapshot: unknown, n: number): CommitRecord {
  const value = 'running';
  return {
    type: 'bench', id, tenant: null, expected: version, machineVersion: 1, value, status: 'RUNNING', attrs: {},
    snapshot: snapshot as CommitRecord['snapshot'],
    messageId: `stmt-${n}`,
    result: { version: version + 1, value, status: 'RUNNING' },
    journal: { kind: 'event', targetPath: '', event: { type: 'bench.tick', i: n } as CommitRecord['journal']['event'], input: null },
    partition: 0,
    outbox: [{ kind: 'publish', subject: `bench.ticks.${id}`, messageId: `bench/${id}@${version + 1}#0`, payload: { i: n }, headers: {} }],
    correlations: [], timerDeletes: [], timerUpserts: [], at: new Date().toISOString(), extras: {}, fence: null,
  };
}

export async function drive32Create(rt: Runtime) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < ACTORS) {
        const id = `a${next++}`;
        await rt.host.send({ type: 'bench', id }, { type: 'bench.tick', i: 0 }, { messageId: `create-${id}` });
      }
    }),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
