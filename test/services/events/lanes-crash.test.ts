import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../runtime/clock.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Database } from '../../../runtime/db.js';
import { deliverStreamName, natsDeliverPublisher } from '../../../services/events/channel.js';
import { EventService } from '../../../services/events/service.js';
import { EventDeliveryWorker, type DeliverPublisher } from '../../../services/events/worker.js';
import { spawnTs, type Child } from '../../helpers/child.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testLog } from '../../helpers/runtime.js';
import { prng } from './support.js';

/**
 * Lanes under kill -9: a worker process is killed while its lane tasks have batches published
 * to JetStream and not yet recorded (their acks are slow), then a worker in this process, whose
 * publishes lose acks now and then (retries), takes the lanes over once the leases lapse. Every
 * (source, target) lane is in the stream in order, each event once.
 */
const nats = await natsForTests();
const operator = { sub: 'op', role: 'operator' as const, tenantId: null };
const LANE_WORKER = fileURLToPath(new URL('./lane-worker.ts', import.meta.url));

describe.skipIf(!nats)('cross-integration lanes under kill -9', () => {
  const prefix = testPrefix();
  let database: Database;
  let nc: NatsConnection;
  let child: Child | undefined;
  beforeAll(async () => {
    database = await freshDatabase();
    nc = await connect({ servers: nats!.url });
  });
  afterAll(async () => {
    await child?.kill();
    await nc?.close();
    await dropPrefix(nats!.url, prefix);
    await database?.close();
  });

  it('a worker killed mid-batch: after its leases lapse another finishes every lane, in order, once each', async () => {
    const env = natsEnv(nats!.url, prefix, { EVENT_RETRY_BACKOFF_MS: '10', EVENT_RETRY_MAX_MS: '40', EVENT_DELIVERY_POLL_MS: '10', EVENT_DELIVERY_BATCH: '8', EVENT_DELIVERY_LEASE_MS: '1000' });
    const config = loadConfig(env);
    const svc = new EventService(database.pool, systemClock, config.events);
    const sources = ['k-s1', 'k-s2', 'k-s3', 'k-s4'];
    const targets = ['k-a', 'k-b'];
    const N = 200;
    for (let n = 0; n < N; n++) {
      for (const source of sources) {
        await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: source, targetIntegrationIds: targets, payload: { n }, eventCategory: 'ops' });
      }
    }
    const total = N * sources.length * targets.length;
    const count = async (where: string) => (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_deliveries WHERE ${where}`)).rows[0]!.n;

    child = spawnTs(LANE_WORKER, { ...env, DATABASE_URL: database.url, LANE_WORKER_ACK_DELAY_MS: '25', LANE_WORKER_BATCH: '16' });
    await child.waitLine('ready');
    await waitFor('a quarter delivered by the child', async () => (await count(`status = 'delivered'`)) >= total / 4, 30_000, 5);
    // and claims out at this moment (a loaded machine can catch the child between batches)
    await waitFor('claims out', async () => (await count(`status IN ('pending', 'failed') AND lease_until IS NOT NULL`)) > 0, 30_000, 1);
    await child.kill('SIGKILL');
    const deliveredByChild = await count(`status = 'delivered'`);
    // the kill landed with claims out: rows leased (published or being published) and not recorded
    expect(await count(`status IN ('pending', 'failed') AND lease_until IS NOT NULL`)).toBeGreaterThan(0);
    expect(deliveredByChild).toBeLessThan(total);

    const real = await natsDeliverPublisher(nc, config.nats, testLog);
    const rand = prng(23);
    let lost = 0;
    const lossy: DeliverPublisher = async (...args) => {
      await real(...args);
      if (rand() < 0.02) {
        lost++;
        throw new Error('ack lost');
      }
    };
    const worker = new EventDeliveryWorker({ pool: database.pool, config: config.events, clock: systemClock, log: testLog, publish: lossy, laneBatch: 16 });
    worker.start();
    try {
      await waitFor(`${total} deliveries recorded`, async () => (await count(`status = 'delivered'`)) === total, 60_000);
    } finally {
      await worker.stop();
    }
    expect(lost).toBeGreaterThan(0);
    expect(worker.stats.delivered).toBe(total - deliveredByChild);
    // lanes went on by their own claims, the batch's record in the same statement
    expect(worker.stats.rounds).toBeGreaterThan(0);
    // rows the child had claimed were attempted again
    expect(await count('attempts > 1')).toBeGreaterThan(0);

    const stream = deliverStreamName(prefix);
    // the repeats (the child's unrecorded batches, the lost acks) were dropped on webhook-id
    expect((await (await jetstreamManager(nc)).streams.info(stream)).state.messages).toBe(total);
    const consumer = await jetstream(nc).consumers.get(stream);
    const seen = new Map<string, number[]>();
    const it = await consumer.fetch({ max_messages: total + 1, expires: 3_000 });
    let read = 0;
    for await (const m of it) {
      const body = m.json<{ data: { sourceIntegrationId: string; targetIntegrationId: string; payload: { n: number } } }>();
      const lane = `${body.data.sourceIntegrationId}>${body.data.targetIntegrationId}`;
      seen.set(lane, [...(seen.get(lane) ?? []), body.data.payload.n]);
      if (++read === total) break;
    }
    expect(read).toBe(total);
    expect(seen.size).toBe(sources.length * targets.length);
    for (const [lane, ns] of seen) expect(ns, lane).toEqual(Array.from({ length: N }, (_, i) => i));
  }, 120_000);
});
