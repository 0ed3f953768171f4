import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from '../../../http/app.js';
import { signToken } from '../../../http/auth/jwt.js';
import { sagaType } from '../../../machines/saga/index.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Logger } from '../../../runtime/logger.js';
import { Registry } from '../../../runtime/registry.js';
import { createRuntime } from '../../../runtime/runtime.js';
import { createServices } from '../../../services/index.js';
import { BusLink } from '../../../simulator/links.js';
import { ServiceSimulator } from '../../../simulator/services.js';
import { checkHistory, type Operation, type Verdict } from './history.js';
import { OwnPostgres } from './postgres.js';
import { anOrderRequest, FINAL_SAGA, sagaEffects, sagaProblems, type ScenarioRow } from './workload.js';

const SECRET = 'faults-secret-0123456789-0123456789-abcdef';
const STEPS = ['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'DELIVERY_SCHEDULING', 'NOTIFICATION_SENDING'];

export interface PostgresRestartScenario {
  log: Logger;
  sagas: number;
  /** Sagas are started over this long (through the HTTP edge). */
  startOverMs: number;
  /** A restart every [min, max] ms (uniform), the server down [min, max] ms each time. */
  restartEveryMs: [number, number];
  downMs: [number, number];
  /** The faults stop when the starts are done and at least this long has passed. */
  minFaultsMs: number;
  drainTimeoutMs: number;
  /** An HTTP answer slower than this is a hang. */
  hangMs: number;
  seed?: number;
  progress?: (line: string) => void;
}

export interface HttpTally {
  answers: number;
  ok: number;
  /** 503 `application/problem+json` answers. */
  unavailable: number;
  /** Anything else of 5xx, or a 503 that is not a problem document. */
  bad: number;
  /** No answer within `hangMs`. */
  hangs: number;
  other: number;
  slowestMs: number;
  examples: string[];
}

/**
 * PostgreSQL restarts during order sagas. A PostgreSQL of the scenario's own (initdb + pg_ctl on a
 * free port) is stopped every 5-20 s (alternately as a crash, `-m immediate`, and cleanly,
 * `-m fast`) and started again 0-2 s later, while Concord (runtime, saga service, HTTP edge on a
 * real port) runs order sagas against the simulated services (in-process bus; 10% of payments
 * declined, so some sagas compensate). Sagas are started over HTTP, a start answered 503 is
 * retried; a prober reads saga status all the while. Afterwards: every acknowledged start has its
 * saga, every saga is COMPLETED or compensated after the drain, no command's effect taken twice,
 * steps applied in plan order; and the edge answered only 2xx or 503 problems, never a 500 or a hang.
 */
export async function postgresRestartScenario(o: PostgresRestartScenario): Promise<{ row: ScenarioRow; verdict: Verdict; http: HttpTally }> {
  const server = await OwnPostgres.start();
  const url = await server.createDatabase('concord_faults');
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    DATABASE_URL: url,
    JWT_SECRET: SECRET,
    PARTITIONS: '4',
    TIMER_POLL_MS: '100',
    OUTBOX_POLL_MS: '50',
    DB_POOL_SIZE: '16',
    SAGA_STEP_TIMEOUTS: 'INVENTORY_RESERVATION=PT2S,PAYMENT_PROCESSING=PT2S,DELIVERY_SCHEDULING=PT2S,NOTIFICATION_SENDING=PT2S',
    SAGA_RETRY_INITIAL_INTERVAL: 'PT0.2S',
    SAGA_RETRY_MAX_INTERVAL: 'PT1S',
    SAGA_RETRY_MAX_ATTEMPTS: '30',
    SAGA_COMPENSATION_TIMEOUT: 'PT2S',
    SAGA_COMPENSATION_MAX_RETRIES: '30',
  });
  const runtime = await createRuntime({ config, registry: new Registry([sagaType]), log: o.log });
  const services = createServices({ runtime, log: o.log, run: { events: false, housekeeping: false } });
  const sim = new ServiceSimulator({ link: new BusLink(runtime.bus, config.saga.servicePrefix, o.log), servicePrefix: config.saga.servicePrefix, log: o.log, seed: o.seed ?? 5, latencyMs: { min: 0, max: 20 }, failureRate: { PAYMENT_PROCESSING: 0.1 } });
  const app = createApp({ services, log: o.log, jwtSecret: SECRET });
  const http = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => (http.listening ? resolve() : http.once('listening', () => resolve())));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/api/v1/workflows`;
  const token = signToken({ sub: 'faults', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3_600 }, SECRET);
  const tally: HttpTally = { answers: 0, ok: 0, unavailable: 0, bad: 0, hangs: 0, other: 0, slowestMs: 0, examples: [] };
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown } | null> => {
    const t = performance.now();
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(o.hangMs),
      });
      const text = await res.text();
      const ms = performance.now() - t;
      tally.answers++;
      tally.slowestMs = Math.max(tally.slowestMs, Math.round(ms));
      const problem = (res.headers.get('content-type') ?? '').startsWith('application/problem+json');
      if (res.status < 300) tally.ok++;
      else if (res.status === 503 && problem) tally.unavailable++;
      else if (res.status >= 500) {
        tally.bad++;
        if (tally.examples.length < 5) tally.examples.push(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
      } else {
        tally.other++;
        if (tally.examples.length < 5) tally.examples.push(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
      }
      return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        tally.hangs++;
        if (tally.examples.length < 5) tally.examples.push(`${method} ${path}: no answer in ${o.hangMs} ms`);
      } else if (tally.examples.length < 5) tally.examples.push(`${method} ${path}: ${(err as Error).message}`);
      return null;
    }
  };

  const operations: Operation[] = [];
  const started: string[] = [];
  let restarts = 0;
  let stop = false;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const between = ([a, b]: [number, number]) => a + Math.random() * (b - a);
  try {
    await runtime.start();
    await services.start();
    await sim.start();
    const t0 = Date.now();
    // the starts: spread over startOverMs, each retried until the edge accepts it
    const starting = Promise.all(
      Array.from({ length: o.sagas }, async (_, i) => {
        await sleep((i * o.startOverMs) / o.sagas);
        const order = anOrderRequest();
        const op: Operation = { id: `start:${String(order.orderId)}`, target: `start:${String(order.orderId)}`, source: `start:${String(order.orderId)}`, seq: 0, acked: false };
        operations.push(op);
        for (let attempt = 1; attempt <= 200; attempt++) {
          const r = await call('POST', '/order/start', order);
          if (r && (r.status === 201 || r.status === 200)) {
            op.acked = true;
            const id = (r.json as { workflowId: string }).workflowId;
            op.target = id;
            started.push(id);
            return;
          }
          if (r && r.status < 500) return; // refused for good: the history counts it as never acknowledged
          await sleep(250);
        }
      }),
    );
    // a prober reading status while it all happens
    const probing = (async () => {
      while (!stop) {
        const id = started[Math.floor(Math.random() * started.length)];
        if (id) await call('GET', `/${id}/status`);
        await sleep(50);
      }
    })();
    let startsDone = false;
    void starting.then(() => (startsDone = true));
    while (!startsDone || Date.now() - t0 < o.minFaultsMs) {
      await sleep(between(o.restartEveryMs));
      const mode = restarts % 2 === 0 ? 'immediate' : 'fast';
      const down = between(o.downMs);
      o.progress?.(`[postgres] ${Math.round((Date.now() - t0) / 1000)} s: stop (${mode}) for ${Math.round(down)} ms; ${started.length}/${o.sagas} sagas started; http ${JSON.stringify({ ok: tally.ok, unavailable: tally.unavailable, bad: tally.bad, hangs: tally.hangs })}`);
      await server.stopServer(mode);
      await sleep(down);
      await server.startServer();
      restarts++;
    }
    await starting;
    const faultsEnded = Date.now();
    // the drain
    const ids = () => started;
    let drained = false;
    while (Date.now() - faultsEnded < o.drainTimeoutMs) {
      const { rows } = await runtime.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = 'saga' AND id = ANY($1::text[]) AND status = ANY($2::text[])`, [ids(), FINAL_SAGA]);
      if (rows[0]!.n === started.length) {
        drained = true;
        break;
      }
      await sleep(500);
    }
    const drainMs = Date.now() - faultsEnded;
    stop = true;
    await probing;

    // the history: each acknowledged start is applied if its saga exists; each saga's steps, as the
    // services applied them, are a source whose sequence is the plan's order
    const { rows: existing } = await runtime.database.pool.query<{ id: string }>(`SELECT id FROM actors WHERE type = 'saga' AND id = ANY($1::text[])`, [started]);
    const applied = new Map<string, string[]>();
    for (const r of existing) {
      const op = operations.find((x) => x.target === r.id);
      if (op) applied.set(r.id, [op.id]);
    }
    for (const a of sim.applied) {
      if (a.compensates !== null) continue;
      const id = `${a.workflowId}/${a.step}/${a.attempt}`;
      operations.push({ id, target: `${a.workflowId}/steps`, source: a.workflowId, seq: STEPS.indexOf(a.step) * 1_000 + a.attempt, acked: false });
      applied.set(`${a.workflowId}/steps`, [...(applied.get(`${a.workflowId}/steps`) ?? []), id]);
    }
    const unfinished = await sagaProblems(runtime.database.pool, started);
    const dedupOps = [...new Map(operations.map((op) => [op.id, op])).values()];
    const verdict = checkHistory({ operations: dedupOps, applied, unfinished, effects: sagaEffects(sim) });
    const row: ScenarioRow = {
      scenario: 'PostgreSQL restarts',
      operations: o.sagas,
      faults: restarts,
      lost: verdict.lost,
      duplicated: verdict.duplicated,
      reordered: verdict.reordered,
      stuck: verdict.stuck,
      notes: `${o.sagas} sagas over HTTP; HTTP answers ${tally.answers}: ${tally.ok} 2xx, ${tally.unavailable} 503 problems, ${tally.bad} other 5xx, ${tally.hangs} hangs (> ${o.hangMs} ms), slowest ${tally.slowestMs} ms; ${drained ? `drained ${drainMs} ms after the last restart` : `NOT drained after ${drainMs} ms`}`,
    };
    return { row, verdict, http: tally };
  } finally {
    stop = true;
    if (!server.running) await server.startServer().catch(() => undefined);
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await sim.stop().catch(() => undefined);
    await services.stop().catch(() => undefined);
    await runtime.stop().catch(() => undefined);
    await server.dispose();
  }
}
