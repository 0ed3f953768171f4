import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { sagaType } from '../../../machines/saga/index.js';
import type { Database } from '../../../runtime/db.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Logger } from '../../../runtime/logger.js';
import { natsNames } from '../../../runtime/nats/subjects.js';
import { Registry } from '../../../runtime/registry.js';
import { createRuntime } from '../../../runtime/runtime.js';
import { createServices } from '../../../services/index.js';
import { NatsServiceLink } from '../../../simulator/links.js';
import { ServiceSimulator } from '../../../simulator/services.js';
import { tallyType } from '../../runtime/nats/fixtures.js';
import { diagnoseLoss } from './diagnose.js';
import { checkHistory, type Verdict } from './history.js';
import { NatsCluster } from './nats-cluster.js';
import { FINAL_SAGA, sagaEffects, sagaProblems, startSagas, TallyTraffic, tallyEntries, type ScenarioRow } from './workload.js';

export interface NatsClusterScenario {
  database: Database;
  log: Logger;
  /** How long the faults run while traffic flows. */
  durationMs: number;
  /** One fault every this often (kill, pause, restart in turn, on the next node each time). */
  faultEveryMs: number;
  /** How long a paused node stays stopped, and a killed one down. */
  downMs: number;
  sources: number;
  perSourcePerSecond: number;
  actors: number;
  sagas: number;
  /** Longest wait for the drain after the faults stop. */
  drainTimeoutMs: number;
  progress?: (line: string) => void;
}

const SAGA_TIMINGS = {
  SAGA_STEP_TIMEOUTS: 'INVENTORY_RESERVATION=PT3S,PAYMENT_PROCESSING=PT3S,DELIVERY_SCHEDULING=PT3S,NOTIFICATION_SENDING=PT3S',
  SAGA_RETRY_INITIAL_INTERVAL: 'PT0.2S',
  SAGA_RETRY_MAX_INTERVAL: 'PT1S',
  SAGA_RETRY_MAX_ATTEMPTS: '20',
  SAGA_COMPENSATION_TIMEOUT: 'PT3S',
  SAGA_COMPENSATION_MAX_RETRIES: '20',
};

/**
 * A three-node NATS cluster on loopback, streams with 3 replicas. A runtime (tallies and order
 * sagas) and the simulated services run against it, both with the three servers in their URL
 * list; outside publishers send tally messages (straight and through hub actors' outboxes) while
 * one node is killed (down `downMs`), paused with SIGSTOP, or restarted, one fault every
 * `faultEveryMs`. Then every node is brought back and the system drains. The history checker
 * judges what each tally applied against what was acknowledged; sagas must all be COMPLETED or
 * compensated, no service command applied twice; nothing pending in the outbox or consumers.
 */
export async function natsClusterScenario(o: NatsClusterScenario): Promise<{ row: ScenarioRow; verdict: Verdict }> {
  const cluster = await NatsCluster.start(3);
  const prefix = `f${Math.random().toString(36).slice(2, 8)}`;
  const servicePrefix = `${prefix}svc`;
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    DATABASE_URL: o.database.url,
    NATS_URL: cluster.url,
    NATS_PREFIX: prefix,
    NATS_REPLICAS: '3',
    NATS_SERVICE_SUBJECTS: `${servicePrefix}.>`,
    NATS_SERVICE_EVENTS: `${servicePrefix}.events.>`,
    NATS_SERVICE_ROUTER_SKIP: `${servicePrefix}.events.OrderCreatedEvent`,
    NATS_ACK_WAIT_MS: '5000',
    NATS_RETRY_BACKOFF_MS: '100',
    NATS_PUBLISH_TIMEOUT_MS: '4000',
    SAGA_SERVICE_PREFIX: servicePrefix,
    PARTITIONS: '4',
    TIMER_POLL_MS: '100',
    OUTBOX_POLL_MS: '50',
    ...SAGA_TIMINGS,
  });
  const runtime = await createRuntime({ config, registry: new Registry([tallyType, sagaType]), log: o.log, database: o.database });
  const services = createServices({ runtime, log: o.log, run: { events: false, housekeeping: false } });
  const simConn = await connect({ servers: cluster.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const sim = new ServiceSimulator({
    link: new NatsServiceLink(simConn, { natsPrefix: prefix, servicePrefix, log: o.log }),
    servicePrefix,
    log: o.log,
    seed: 21,
    failureRate: { PAYMENT_PROCESSING: 0.1 },
  });
  const traffic = new TallyTraffic({ url: cluster.url, prefix, sources: o.sources, actors: o.actors, perSourcePerSecond: o.perSourcePerSecond });
  let faults = 0;
  const started: string[] = [];
  const t0 = Date.now();
  try {
    await runtime.start();
    await services.start();
    await sim.start();
    // every stream has three replicas
    const jsm = await jetstreamManager(simConn);
    const names = natsNames(prefix);
    for (const s of [names.actorStream, names.ingressStream, names.serviceStream]) {
      const info = await jsm.streams.info(s);
      if (info.config.num_replicas !== 3) throw new Error(`stream ${s} has ${info.config.num_replicas} replicas, not 3`);
    }
    await traffic.start();
    const sagaRun = startSagas(services.sagas, o.sagas, o.durationMs * 0.8, started);

    const kinds = ['kill', 'pause', 'restart'] as const;
    let down: string | undefined;
    const faultsFrom = Date.now(); // the faults run durationMs, however long the start-up took
    for (let i = 0; Date.now() - faultsFrom < o.durationMs; i++) {
      const tick = Date.now();
      if (down) {
        await cluster.startNode(down);
        down = undefined;
      }
      const kind = kinds[i % kinds.length]!;
      const node = cluster.nodes[i % cluster.nodes.length]!.name;
      o.progress?.(`[nats cluster] ${Math.round((Date.now() - t0) / 1000)} s: ${kind} ${node}; ${traffic.operations.length} published, ${started.length} sagas started`);
      faults++;
      if (kind === 'kill') {
        await cluster.kill(node);
        down = node;
        await sleepUntil(tick + o.faultEveryMs);
      } else if (kind === 'pause') {
        await cluster.pause(node, o.downMs);
        await sleepUntil(tick + o.faultEveryMs);
      } else {
        await cluster.restart(node);
        await sleepUntil(tick + o.faultEveryMs);
      }
    }
    if (down) await cluster.startNode(down);
    await traffic.stop();
    await sagaRun;
    const faultsEnded = Date.now();

    // the drain: everything acknowledged applied, every saga final, nothing pending anywhere
    const acked = () => traffic.operations.filter((op) => op.acked);
    const deadline = Date.now() + o.drainTimeoutMs;
    let drained = false;
    while (Date.now() < deadline) {
      const entries = await tallyEntries(o.database.pool);
      const applied = new Set([...entries.values()].flat());
      const missing = acked().filter((op) => !applied.has(op.id)).length;
      const { rows } = await o.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = 'saga' AND id = ANY($1::text[]) AND status = ANY($2::text[])`, [started, FINAL_SAGA]);
      const outbox = (await o.database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n;
      if (missing === 0 && rows[0]!.n === started.length && outbox === 0) {
        drained = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const drainMs = Date.now() - faultsEnded;
    // the consumers' lag settles a moment after the last commit (acks in flight)
    let lag = 0;
    let missing: string[] = [];
    let consumers = '';
    for (let i = 0; i < 20; i++) {
      const h = await runtime.nats!.health(runtime.leases.owned());
      ({ lag, missing } = h);
      consumers = `resyncs ${h.resyncs}, consumers recreated ${h.recreated}`;
      if (lag === 0 && missing.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const outboxLeft = (await o.database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n;
    const unfinished = [
      ...(await sagaProblems(o.database.pool, started)),
      ...(outboxLeft > 0 ? [`${outboxLeft} outbox rows not relayed`] : []),
      ...(lag > 0 ? [`${lag} messages pending on the consumers`] : []),
      ...missing.map((name) => `consumer ${name} missing`),
    ];
    const appliedNow = await tallyEntries(o.database.pool);
    const verdict = checkHistory({ operations: traffic.operations, applied: appliedNow, unfinished, effects: sagaEffects(sim) });
    if (verdict.lost > 0 || verdict.stuck > 0) {
      const applied = new Set([...appliedNow.values()].flat());
      const lost = traffic.operations.filter((op) => op.acked && !applied.has(op.id));
      o.progress?.(`[nats cluster] where the lost went, and what was left:\n${await diagnoseLoss(simConn, prefix, lost).catch((err: Error) => `diagnosis failed: ${err.message}`)}`);
    }
    const row: ScenarioRow = {
      scenario: 'NATS cluster (3 nodes, R3)',
      operations: traffic.operations.length + started.length,
      faults,
      lost: verdict.lost,
      duplicated: verdict.duplicated,
      reordered: verdict.reordered,
      stuck: verdict.stuck,
      notes: `${traffic.operations.length} tally messages (${verdict.acked} acknowledged), ${started.length} sagas; ${traffic.publishFailures} publish attempts failed and were retried; ${drained ? `drained ${drainMs} ms after the last fault` : `NOT drained after ${drainMs} ms`}; reconnects ${runtime.nats!.link?.reconnects ?? 0}; ${consumers}`,
    };
    return { row, verdict };
  } finally {
    await traffic.stop().catch(() => undefined);
    await sim.stop().catch(() => undefined);
    await services.stop().catch(() => undefined);
    await runtime.stop().catch(() => undefined);
    await simConn.close().catch(() => undefined);
    await cluster.dispose();
  }
}

async function sleepUntil(t: number): Promise<void> {
  const ms = t - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}
