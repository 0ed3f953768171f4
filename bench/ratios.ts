/**
 * `npm run bench:ratios`: issue 22's tail targets (section 4) as ratios, each figure and its
 * reference measured in this one run on this machine, and the CPU each POST costs every process
 * on its path. In process: the runtime's p99 at 8 senders against its commit statement's own p99
 * at 8 clients, and the one-statement ceiling's rate at 50 clients. Over HTTP, black-box: the
 * `npm start` entry (app/main.ts; BENCH_SERVER_ROOT picks another checkout's) in its own process
 * with NATS_URL set and a fresh NATS_PREFIX, request logs on as it writes them (to /dev/null):
 * POST closed loop at 50 connections, POST open loop at 500/s, GET open loop at 3,000/s.
 * CPU per POST (closed loop, and open loop at 500/s) from /proc: the server's node process, every
 * process of the PostgreSQL server (postmaster, backends, background workers, exited backends via
 * the postmaster's cutime), nats-server, and this process (the load generator).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { signToken } from '../http/auth/jwt.js';
import { migrate } from '../runtime/migrate.js';
import { createRelationships, transitionPath } from './http.js';
import { benchDatabase, dropNatsStreams, fmt, percentile, table } from './lib.js';
import { minorFaults, natsPid, postgresCpu, procStat, writeCalls } from './proc.js';
import { openLoop } from './open-loop.js';
import { ceilingWrite, commitWrite, drive, drive32Create, actorFor, plainDrive, plainState, runtimeOver } from './runtime.js';

const autocannon = createRequire(import.meta.url)('autocannon') as (o: Record<string, unknown>) => Promise<{ requests: { total: number }; non2xx: number; errors: number; timeouts: number }>;
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const RELATIONSHIPS = 2_000;
const CLOSED_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function main(): Promise<void> {
  // --- in process: runtime at 8 senders, its commit statement at 8 clients, the ceiling at 50
  const rtDb = await benchDatabase('concord_bench_ratios_rt');
  const setup = new pg.Pool({ connectionString: rtDb.url, max: 2 });
  await migrate(setup);
  const rt = await runtimeOver(rtDb.url, 10_000);
  await drive32Create(rt);
  await setup.query('ANALYZE');
  let seq = 0;
  const runtime8 = await drive(8, (s, i) => { const n = seq++; return rt.host.send({ type: 'bench', id: actorFor(s, 8, i) }, { type: 'bench.tick', i: n }, { messageId: `m${n}` }).then(() => undefined); });
  await rt.stop();
  await rt.database.close();
  const state = await plainState(setup);
  const statement8 = await plainDrive(rtDb.url, state, 8, commitWrite(), () => seq++);
  // what PostgreSQL and the driver's process spend per ceiling statement: the floor of a POST's share
  const pgMaster = procStat(Number((await setup.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid))!.ppid;
  const [pg0, me0] = [postgresCpu(pgMaster), process.cpuUsage()];
  let pg1 = 0;
  let me1 = 0;
  const ceiling50 = await plainDrive(rtDb.url, state, 50, ceilingWrite, () => seq++, () => { pg1 = postgresCpu(pgMaster); me1 = ((u) => u.user + u.system)(process.cpuUsage(me0)); });
  const ceilingN = ceiling50.rate * Number(process.env.BENCH_SECONDS ?? 4);
  const ceilingCpu = { postgres: (pg1 - pg0) / ceilingN, client: me1 / ceilingN };
  await setup.end();

  // --- over HTTP: the `npm start` server, black-box, in its own process
  const db = await benchDatabase(`concord_bench_ratios_http`);
  if (process.env.BENCH_PROBE_SQL) { const c = new pg.Client({ connectionString: db.url }); await c.connect(); await c.query(process.env.BENCH_PROBE_SQL); await c.end(); }
  const prefix = `ratios${process.pid}`;
  const secret = randomBytes(32).toString('hex');
  const port = await freePort();
  const root = path.resolve(process.env.BENCH_SERVER_ROOT ?? fileURLToPath(new URL('..', import.meta.url)));
  const prof = [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(root, 'app/main.ts')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: db.url, JWT_SECRET: secret, CREDENTIALS_KEYS: `bench:${randomBytes(32).toString('base64')}`, NATS_URL, NATS_PREFIX: prefix, SAGA_SERVICE_PREFIX: `${prefix}svc`, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  // the streams this run made go whatever happens (a stream left behind holds its subjects)
  process.once('exit', () => child.kill('SIGTERM'));
  const failed = (err: unknown) => dropNatsStreams(NATS_URL, prefix).finally(() => { console.error(err); process.exit(1); });
  const base = `http://127.0.0.1:${port}/api/v1/vendor-partner-coordination`;
  for (;;) {
    if (child.exitCode !== null) return failed(new Error(`server exited with ${child.exitCode}`));
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = signToken({ sub: 'bench', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const ids = await createRelationships(base, headers, RELATIONSHIPS).catch(failed);
  if (!ids) return;

  const check = new pg.Client({ connectionString: db.url });
  await check.connect();
  const postmaster = procStat(Number((await check.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid))!.ppid;
  const nats = natsPid(NATS_URL);
  const cpu = () => {
    const s = procStat(child.pid!)!;
    const g = process.cpuUsage();
    return { server: s.us + s.childUs, postgres: postgresCpu(postmaster), nats: nats ? procStat(nats)!.us : NaN, generator: g.user + g.system, serverWrites: writeCalls(child.pid!), serverFaults: minorFaults(child.pid!) };
  };
  /** CPU µs per request of every process around `run` (which answers how many requests it made), the relay's outbox drained before the second reading. */
  const perRequest = async (run: () => Promise<number>) => {
    const before = cpu();
    const n = await run();
    for (let i = 0; i < 100 && (await check.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n > 0; i++) await new Promise((r) => setTimeout(r, 50));
    const after = cpu();
    const k = Object.keys(before) as Array<keyof typeof before>;
    return Object.fromEntries(k.map((p) => [p, (after[p] - before[p]) / n])) as typeof before;
  };

  let k = 0;
  const closed = (rounds: number) => autocannon({
    url: base, connections: 50, amount: RELATIONSHIPS * rounds, headers,
    requests: [{ method: 'POST', setupRequest: (req: Record<string, unknown>) => ({ ...req, path: transitionPath(ids, k++) }) }],
  });
  await closed(1); // warm-up
  // BENCH_PG_STATS: transactions and rows per POST (no pg_stat_statements here), by table
  const pgStats = async () => {
    await check.query('SELECT pg_stat_clear_snapshot()');
    const d = (await check.query('SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = current_database()')).rows[0] as Record<string, string>;
    const t = (await check.query<{ relname: string; ins: string; upd: string; hot: string; del: string; seq: string; idx: string }>('SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del, seq_scan AS seq, coalesce(idx_scan, 0) AS idx FROM pg_stat_user_tables')).rows;
    return { d, t };
  };
  const statsBefore = process.env.BENCH_PG_STATS ? await pgStats() : undefined;
  const countQueries = () => process.env.BENCH_PG_STATS && process.env.BENCH_SERVER_NODE_ARGS && child.kill('SIGUSR2'); // a preload of BENCH_SERVER_NODE_ARGS may count queries on SIGUSR2
  countQueries();
  let postRate = 0;
  let bad = 0;
  const closedCpu = await perRequest(async () => {
    const t = performance.now();
    const r = await closed(CLOSED_ROUNDS);
    postRate = r.requests.total / ((performance.now() - t) / 1000);
    bad += r.non2xx + r.errors + r.timeouts;
    return r.requests.total;
  });
  if (statsBefore) {
    await new Promise((r) => setTimeout(r, 1_500)); // backends flush their counters about once a second
    const after = await pgStats();
    const n = CLOSED_ROUNDS * RELATIONSHIPS;
    countQueries();
    console.log(`per POST: ${Object.keys(after.d).map((c) => `${c} ${fmt((Number(after.d[c]) - Number(statsBefore.d[c])) / n)}`).join(', ')}`);
    for (const r of after.t) {
      const b = statsBefore.t.find((x) => x.relname === r.relname);
      const per = (['ins', 'upd', 'hot', 'del', 'seq', 'idx'] as const).map((c) => (Number(r[c]) - Number(b?.[c] ?? 0)) / n);
      if (per.some((v) => v > 0.001)) console.log(`  ${r.relname}: ${['ins', 'upd', 'hot', 'del', 'seq_scan', 'idx_scan'].map((c, i) => `${c} ${fmt(per[i]!)}`).join(' ')}`);
    }
  }
  // BENCH_HTTP_SECONDS=0: no open loops (a BENCH_CPU_PROF profile of the closed loop's POSTs alone)
  const none = { rate: 0, sent: 0, achieved: NaN, non2xx: 0, errors: 0, latencies: [], maxSendLagMs: NaN };
  let post500: Awaited<ReturnType<typeof openLoop>> = none;
  const openCpu = await perRequest(async () => {
    if (HTTP_SECONDS > 0) post500 = await openLoop({ port, headers, connections: 50, rate: 500, seconds: HTTP_SECONDS, next: () => ({ method: 'POST', path: transitionPath(ids, k++) }) });
    return post500.sent;
  });
  let g = 0;
  const getPath = () => `/api/v1/vendor-partner-coordination/relationships/${ids[g++ % ids.length]}`;
  if (HTTP_SECONDS > 0) await openLoop({ port, headers, connections: 50, rate: 3_000, seconds: 2, next: () => ({ method: 'GET', path: getPath() }) }); // warm-up
  const get3000 = HTTP_SECONDS > 0 ? await openLoop({ port, headers, connections: 50, rate: 3_000, seconds: HTTP_SECONDS, next: () => ({ method: 'GET', path: getPath() }) }) : none;
  bad += post500.non2xx + post500.errors + get3000.non2xx + get3000.errors;
  await check.end();
  child.kill('SIGTERM');
  await exited;
  await dropNatsStreams(NATS_URL, prefix);
  await db.stop();
  await rtDb.stop();

  const p99 = (r: { latencies: number[] }) => percentile(r.latencies, 99);
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  console.log(`\n## Section-4 ratios (one run; ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; server: ${root})\n`);
  console.log(table(['figure', 'value', 'reference', 'value', 'ratio', 'target', ''], [
    ['runtime p99, 8 senders', `${fmt(runtime8.p99)} ms`, 'commit statement p99, 8 clients', `${fmt(statement8.p99)} ms`, `${fmt(runtime8.p99 / statement8.p99)}x`, '<= 1.3x', met(runtime8.p99 / statement8.p99 <= 1.3)],
    ['POST/s over HTTP, 50 connections, closed loop', fmt(postRate, 0), 'one-statement ceiling/s, 50 clients', fmt(ceiling50.rate, 0), `${fmt((100 * postRate) / ceiling50.rate, 0)}%`, '>= 50%', met(postRate / ceiling50.rate >= 0.5)],
    ['POST p99, open loop 500/s', `${fmt(p99(post500))} ms`, '-', '-', '-', '< 25 ms', met(p99(post500) < 25)],
    ['GET p99, open loop 3,000/s', `${fmt(p99(get3000))} ms`, '-', '-', '-', '< 10 ms', met(p99(get3000) < 10)],
  ]));
  console.log(`\nalso: runtime 8 senders ${fmt(runtime8.rate, 0)}/s p50 ${fmt(runtime8.p50)} ms; commit statement 8 clients ${fmt(statement8.rate, 0)}/s p50 ${fmt(statement8.p50)} ms; ceiling 50 clients p99 ${fmt(ceiling50.p99)} ms; POST 500/s achieved ${fmt(post500.achieved, 0)}/s p50 ${fmt(percentile(post500.latencies, 50))} ms; GET 3,000/s achieved ${fmt(get3000.achieved, 0)}/s p50 ${fmt(percentile(get3000.latencies, 50))} ms; failed requests ${bad}`);
  const row = (name: string, c: ReturnType<typeof cpu>) => [name, fmt(c.server, 0), fmt(c.postgres, 0), fmt(c.nats, 0), fmt(c.generator, 0), fmt(c.server + c.postgres + c.nats + c.generator, 0)];
  console.log(`\nCPU µs per POST by process (/proc utime+stime; PostgreSQL: all of its processes):\n`);
  console.log(table(['phase', 'server node', 'PostgreSQL', 'nats-server', 'load generator', 'total'], [
    row(`closed loop, 50 connections (${CLOSED_ROUNDS * RELATIONSHIPS} POSTs)`, closedCpu),
    row('open loop, 500 POST/s', openCpu),
    ['reference: one-statement ceiling, 50 clients (per statement)', '-', fmt(ceilingCpu.postgres, 0), '-', `${fmt(ceilingCpu.client, 0)} (pg client)`, fmt(ceilingCpu.postgres + ceilingCpu.client, 0)],
  ]));
  console.log(`\nserver write system calls per POST (/proc/<pid>/io syscw: its socket writes, and its log's): closed loop ${fmt(closedCpu.serverWrites, 2)}, open loop 500/s ${fmt(openCpu.serverWrites, 2)}; minor page faults per POST: closed loop ${fmt(closedCpu.serverFaults, 2)}, open loop 500/s ${fmt(openCpu.serverFaults, 2)}`);
}

await main();
