import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../runtime/clock.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Database } from '../../../runtime/db.js';
import { EventService } from '../../../services/events/service.js';
import { EventDeliveryWorker } from '../../../services/events/worker.js';
import { spawnTs, type Child } from '../../helpers/child.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { testLog } from '../../helpers/runtime.js';
import { prng, receiver } from './support.js';

/**
 * HTTP endpoint lanes under kill -9: a lane's rows are claimed together, POSTed one at a time and
 * recorded many per statement, so a worker process killed mid-turn leaves rows POSTed and not
 * recorded, and rows claimed and not POSTed. A worker in this process, whose receiver now refuses
 * some POSTs (503: a retry mid-batch hands the rest of the batch back), takes the lanes over when
 * the leases lapse. Each lane's events are accepted in order, each once (repeats deduped on
 * webhook-id), and the repeats really happened.
 */
const operator = { sub: 'op', role: 'operator' as const, tenantId: null };
const LANE_WORKER = fileURLToPath(new URL('./lane-worker.ts', import.meta.url));

describe('HTTP endpoint lanes under kill -9', () => {
  let database: Database;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let child: Child | undefined;
  beforeAll(async () => {
    database = await freshDatabase();
    rx = await receiver();
  });
  afterAll(async () => {
    await child?.kill();
    await rx?.close();
    await database?.close();
  });

  it('a worker killed mid-turn: another finishes every lane in order, once each, through refusals', async () => {
    const env = {
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_TIMEOUT_MS: '500',
      EVENT_RETRY_BACKOFF_MS: '10',
      EVENT_RETRY_MAX_MS: '40',
      EVENT_DELIVERY_POLL_MS: '10',
      EVENT_DELIVERY_BATCH: '8',
      EVENT_DELIVERY_LEASE_MS: '2500',
    };
    const config = loadConfig(env);
    const svc = new EventService(database.pool, systemClock, config.events);
    const sources = ['h-s1', 'h-s2', 'h-s3'];
    const targets = ['h-a', 'h-b'];
    for (const target of targets) rx.secrets.set(target, (await svc.putEndpoint(operator, target, { url: rx.url(target) })).endpoint.secret);
    const N = 150;
    for (let n = 0; n < N; n++) {
      for (const source of sources) {
        await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: source, targetIntegrationIds: targets, payload: { n }, eventCategory: 'ops' });
      }
    }
    const total = N * sources.length * targets.length;
    const count = async (where: string) => (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_deliveries WHERE ${where}`)).rows[0]!.n;

    // the child's receiver answers after a few milliseconds, so its turns are long enough to be cut
    rx.state.behaviour = () => ({ status: 200, record: true, delayMs: 3 });
    child = spawnTs(LANE_WORKER, { ...env, DATABASE_URL: database.url, LANE_WORKER_HTTP: '1', LANE_WORKER_BATCH: '16' });
    await child.waitLine('ready');
    await waitFor('a quarter delivered by the child', async () => (await count(`status = 'delivered'`)) >= total / 4, 30_000, 5);
    await waitFor('claims out', async () => (await count(`status IN ('pending', 'failed') AND lease_until IS NOT NULL`)) > 0, 30_000, 1);
    await child.kill('SIGKILL');
    const deliveredByChild = await count(`status = 'delivered'`);
    const acceptedAtKill = rx.accepted.length;
    expect(await count(`status IN ('pending', 'failed') AND lease_until IS NOT NULL`)).toBeGreaterThan(0);
    expect(deliveredByChild).toBeLessThan(total);
    // the receiver accepted rows the child had not recorded yet (POSTed, then killed before the record)
    expect(acceptedAtKill).toBeGreaterThan(deliveredByChild);

    const rand = prng(31);
    let refused = 0;
    rx.state.behaviour = ({ duplicate }) => {
      if (!duplicate && rand() < 0.03) {
        refused++;
        return { status: 503, record: false };
      }
      return { status: 200, record: true };
    };
    const worker = new EventDeliveryWorker({ pool: database.pool, config: config.events, clock: systemClock, log: testLog, endpointLaneBatch: 16 });
    worker.start();
    try {
      await waitFor(`${total} deliveries recorded`, async () => (await count(`status = 'delivered'`)) === total, 60_000);
    } finally {
      await worker.stop();
    }
    expect(refused).toBeGreaterThan(0);
    expect(worker.stats.retried).toBe(refused);
    expect(worker.stats.released).toBeGreaterThan(0); // the rows after a refused one went back untried
    expect(worker.stats.rounds).toBeGreaterThan(0); // lanes went on by their own claims
    expect(rx.stats.duplicates).toBeGreaterThan(0); // the child's unrecorded POSTs were made again
    expect(rx.stats.badSignatures).toBe(0);
    expect(rx.accepted.length).toBe(total);
    for (const target of targets) {
      for (const source of sources) {
        const ns = rx.accepted.filter((a) => a.target === target && a.body.data.sourceIntegrationId === source).map((a) => a.body.data.payload.n);
        expect(ns, `${source}>${target}`).toEqual(Array.from({ length: N }, (_, i) => i));
      }
    }
  }, 120_000);
});
