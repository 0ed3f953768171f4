/**
 * `npx tsx bench/playbooks.ts`: the playbook engine on Postgres (DATABASE_URL's server, or an
 * embedded one), in one process.
 *
 * 1. API latency: GET a playbook, GET an execution, GET the executions list and POST execute,
 *    through the app (`app.request`, no socket), 8 at a time; p50/p95/p99 (target p95 < 20 ms).
 * 2. Engine overhead per step: executions of a chain of steps whose work is instant; per step,
 *    the time from its dependency's completion to its own (begin commit, the call through the
 *    outbox, the answer's commit): p50/p99 (target p99 < 5 ms). Two chains: `evaluate` steps
 *    (CEL: run inside the execution's own transition where the engine does that, so their gaps
 *    are 0) and `webhook` steps (an instant fake runner: always a call through the connector).
 *    Per execution also the time from the execute call to its `finishedAt` (or to the call's
 *    answer, when later: an execution that ended inside the call), and that over the
 *    chain's length: what a step costs end to end, the request included.
 * 3. Cron fan-out: PLAYBOOKS playbooks due on the same minute; the time from the tick to the
 *    last of their executions starting (target: all within 5 s).
 */
import pg from 'pg';
import { createApp } from '../http/app.js';
import { signToken } from '../http/auth/jwt.js';
import type { ConnectorInvoker } from '../connectors/kit/contract.js';
import { executionType, scheduleType } from '../machines/playbook/index.js';
import type { Clock } from '../runtime/clock.js';
import { loadConfig } from '../runtime/config.js';
import { Registry } from '../runtime/registry.js';
import { createRuntime } from '../runtime/runtime.js';
import type { Principal } from '../services/common/principal.js';
import { createServices } from '../services/index.js';
import type { StepRunner } from '../services/playbooks/steps/types.js';
import { benchDatabase, benchLog, fmt, percentile, table } from './lib.js';

const SECRET = 'bench-secret-0123456789-0123456789-abcdef';
const API_REQUESTS = Number(process.env.BENCH_API_REQUESTS ?? 2_000);
const CHAIN = Number(process.env.BENCH_CHAIN ?? 20);
const CHAINS = Number(process.env.BENCH_CHAINS ?? 50);
const PLAYBOOKS = Number(process.env.BENCH_PLAYBOOKS ?? 1_000);
/** Chain executions running at once. */
const AT_ONCE = Number(process.env.BENCH_AT_ONCE ?? 4);
/** `0`: instant work (evaluate, if) goes through the connector too (`playbooks.inline: false`). */
const INLINE = process.env.BENCH_INLINE !== '0';
/** Executions of the warm-up chain (through the connector), not counted. */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5 * AT_ONCE);
/** `engine` runs only the per-step figure. */
const ONLY = process.env.BENCH_ONLY;
const op: Principal = { sub: 'bench', role: 'operator', tenantId: null };

/** The real time shifted by `offset`, so the bench can jump to just before a minute. */
class ShiftedClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
}

const instant: StepRunner = async () => ({ ok: true });

async function main(): Promise<void> {
  const db = await benchDatabase('concord_bench_playbooks');
  const clock = new ShiftedClock();
  const connectors = new Map<string, ConnectorInvoker>();
  const config = loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'warn', CREDENTIALS_KEYS: `k1:${Buffer.alloc(32, 3).toString('base64')}`, DB_POOL_SIZE: '16' });
  const runtime = await createRuntime({ config, registry: new Registry([executionType, scheduleType]), log: benchLog, clock, connectors });
  const services = createServices({ runtime, log: benchLog, clock, connectors, run: { events: false, sagaIntake: false, housekeeping: false }, playbooks: { runners: { evaluate: instant, webhook: instant }, inline: INLINE } });
  await runtime.start();
  await services.start();
  const app = createApp({ services, log: benchLog, jwtSecret: SECRET });
  const token = signToken({ sub: 'bench', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
  const pb = services.playbooks;

  // --- 2. engine overhead per step ---------------------------------------------------------
  const chainOf = (name: string, work: string) =>
    [`name: ${name}`, 'parallelism: 1', 'steps:', ...Array.from({ length: CHAIN }, (_, i) => [`  - id: s${i}`, ...(i ? [`    dependsOn: [s${i - 1}]`] : []), `    ${work}`]).flat()].join('\n');
  const runChains = async (name: string, work: string, count = CHAINS): Promise<{ id: string; row: Array<string | number> }> => {
    const chainPb = await pb.create({ principal: op }, chainOf(name, work), 'yaml');
    const gaps: number[] = [];
    const e2e: number[] = [];
    const started = Date.now();
    for (let batch = 0; batch < count; batch += AT_ONCE) {
      const runs = await Promise.all(
        Array.from({ length: Math.min(AT_ONCE, count - batch) }, async () => {
          const t0 = clock.now();
          const id = (await pb.execute({ principal: op }, chainPb.id, {})).id;
          return { id, t0, answered: clock.now() };
        }),
      );
      for (const { id, t0, answered } of runs) {
        for (;;) {
          const e = await pb.getExecution(op, id);
          if (e.status === 'succeeded') {
            const done = e.steps.map((s) => Date.parse(s.completedAt!));
            for (let i = 1; i < done.length; i++) gaps.push(done[i]! - done[i - 1]!);
            // an execution that ended inside its execute call ends when the call answers
            e2e.push(Math.max(Date.parse(e.finishedAt!), answered) - t0);
            break;
          }
          if (e.status === 'failed') throw new Error(`chain execution failed: ${e.error}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    const wall = Date.now() - started;
    gaps.sort((a, b) => a - b);
    e2e.sort((a, b) => a - b);
    return { id: chainPb.id, row: [name, gaps.length, fmt(percentile(gaps, 50)), fmt(percentile(gaps, 99)), fmt(gaps[gaps.length - 1] ?? 0), fmt(percentile(e2e, 50)), fmt(percentile(e2e, 99)), fmt(percentile(e2e, 50) / CHAIN), fmt(percentile(e2e, 99) / CHAIN), fmt(wall / 1000)] };
  };
  // warm-up, not counted: the call path (outbox, relay, runner, answer) warm whichever chain runs first
  await runChains('warm-up', 'webhook: { url: x }', WARMUP);
  // the webhook chain first: what runs before it is then the same whether evaluate is inline or not
  const webhookChains = await runChains('webhook', 'webhook: { url: x }');
  const evaluateChains = await runChains('evaluate', 'evaluate: "true"');
  const engineRows = [evaluateChains.row, webhookChains.row];
  const floor = await commitFloor(db.url);
  const engineHead = ['chain', 'steps', 'gap p50', 'gap p99', 'gap max', 'exec p50', 'exec p99', '/step p50', '/step p99', 'wall s'];

  const floorLine = `floor, same run: one durable commit alone (a one-row INSERT, autocommit), ${AT_ONCE} clients at once: p50 ${fmt(floor.p50)} / p99 ${fmt(floor.p99)} ms; a step that calls needs that commit (its answer) and a relay read`;
  if (ONLY === 'engine') {
    console.log(table(engineHead, engineRows));
    console.log(floorLine);
    await services.stop();
    await runtime.stop();
    await db.stop();
    return;
  }

  // --- 1. API latency ----------------------------------------------------------------------
  const simple = await pb.create({ principal: op }, ['name: api', 'steps:', '  - id: a', '    evaluate: "true"'].join('\n'), 'yaml');
  const anExecution = (await pb.execute({ principal: op }, simple.id, {})).id;
  const headers = { authorization: `Bearer ${token}` };
  const routes: Array<[string, () => Response | Promise<Response>]> = [
    ['GET /playbooks/{id}', () => app.request(`/api/partnerships/playbooks/${simple.id}`, { headers })],
    ['GET /executions/{id}', () => app.request(`/api/partnerships/executions/${anExecution}`, { headers })],
    ['GET /executions?playbookId', () => app.request(`/api/partnerships/executions?playbookId=${evaluateChains.id}&limit=20`, { headers })],
    ['POST /playbooks/{id}/execute', () => app.request(`/api/partnerships/playbooks/${simple.id}/execute`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': '2' }, body: '{}' })],
  ];
  const apiRows: Array<Array<string | number>> = [];
  for (const [name, hit] of routes) {
    const lat: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < API_REQUESTS) {
          const t = performance.now();
          const res = await hit();
          await res.arrayBuffer();
          if (res.status >= 300) throw new Error(`${name} answered ${res.status}`);
          lat.push(performance.now() - t);
        }
      }),
    );
    lat.sort((a, b) => a - b);
    apiRows.push([name, lat.length, fmt(percentile(lat, 50)), fmt(percentile(lat, 95)), fmt(percentile(lat, 99))]);
  }

  // --- 3. cron fan-out ---------------------------------------------------------------------
  const createStart = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < PLAYBOOKS; i += 20) {
    ids.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, PLAYBOOKS - i) }, async (_, j) =>
          (await pb.create({ principal: op }, [`name: due-${i + j}`, 'triggers:', '  - cron: { schedule: "* * * * *", overlap: allow }', 'steps:', '  - id: a', '    webhook: { url: x }'].join('\n'), 'yaml')).id,
        ),
      )),
    );
  }
  const createSeconds = (Date.now() - createStart) / 1000;
  // jump to 300 ms before the next minute after every schedule's nextAt
  const { rows: due } = await runtime.database.pool.query<{ at: string }>(`SELECT max(attrs->>'nextAt') AS at FROM actors WHERE type = 'playbook-schedule'`);
  const tick = Date.parse(due[0]!.at);
  clock.offset = tick - 300 - Date.now();
  runtime.timers.wake(tick);
  const deadline = Date.now() + 60_000;
  let last: { n: number; lastMs: number | null } = { n: 0, lastMs: null };
  while (Date.now() < deadline) {
    const { rows } = await runtime.database.pool.query<{ n: number; last: Date | null }>(
      `SELECT count(*)::int AS n, max(created_at) AS last FROM actors WHERE type = 'playbook-execution' AND snapshot->'context'->'trigger'->>'scheduledAt' = $1`,
      [new Date(tick).toISOString()],
    );
    last = { n: rows[0]!.n, lastMs: rows[0]!.last ? rows[0]!.last.getTime() - tick : null };
    if (last.n >= PLAYBOOKS) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  console.log(`\nplaybooks bench (one process; machine shared with other work: rerun on a quiet machine)\n`);
  console.log('API (in-process app.request, 8 concurrent), ms');
  console.log(table(['route', 'requests', 'p50', 'p95', 'p99'], apiRows));
  console.log(`\nengine overhead per step (instant work, chains of ${CHAIN}, ${CHAINS} executions, ${AT_ONCE} at a time), ms`);
  console.log('gap: a step\'s completion after its dependency\'s; exec: execute call to finishedAt (or its answer); /step: exec over the chain\'s length');
  console.log(table(engineHead, engineRows));
  console.log(floorLine);
  console.log(`\ncron fan-out: ${PLAYBOOKS} playbooks due on one minute (created in ${fmt(createSeconds)} s)`);
  console.log(table(['started', 'last start after the tick (s)'], [[`${last.n}/${PLAYBOOKS}`, last.lastMs === null ? '-' : fmt(last.lastMs / 1000)]]));

  await services.stop();
  await runtime.stop();
  await db.stop();
}

/** The floor under a step that calls: one durable commit, AT_ONCE clients writing at once (as many as executions run at once). */
async function commitFloor(url: string): Promise<{ p50: number; p99: number }> {
  const pool = new pg.Pool({ connectionString: url, max: AT_ONCE });
  try {
    await pool.query('CREATE TABLE IF NOT EXISTS bench_commit_floor (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
    const times: number[] = [];
    const perClient = Math.max(50, Math.round((CHAINS * CHAIN) / AT_ONCE));
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        for (let i = 0; i < perClient; i++) {
          const t = performance.now();
          await pool.query({ name: 'bench_commit_floor', text: 'INSERT INTO bench_commit_floor DEFAULT VALUES' });
          if (i >= 10) times.push(performance.now() - t);
        }
      }),
    );
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
