import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../runtime/clock.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Database } from '../../../runtime/db.js';
import { deliverStreamName, natsDeliverPublisher } from '../../../services/events/channel.js';
import { EventService } from '../../../services/events/service.js';
import { EventDeliveryWorker, type DeliverPublisher } from '../../../services/events/worker.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testLog } from '../../helpers/runtime.js';
import { prng } from './support.js';

/**
 * Lanes to the messaging channel are delivered in batches (claimed together, published
 * pipelined, recorded in one statement). Over real JetStream, with two workers on one database
 * taking lanes from each other and publishes whose acks are lost (the message stored, the
 * publisher told it failed), every (source, target) lane still arrives in order, each event once
 * (the stream dedupes the repeats on webhook-id), and the batches really are batches.
 */
const nats = await natsForTests();
const operator = { sub: 'op', role: 'operator' as const, tenantId: null };

describe.skipIf(!nats)('cross-integration delivery in lanes over NATS', () => {
  const prefix = testPrefix();
  let database: Database;
  let nc: NatsConnection;
  beforeAll(async () => {
    database = await freshDatabase();
    nc = await connect({ servers: nats!.url });
  });
  afterAll(async () => {
    await nc?.close();
    await dropPrefix(nats!.url, prefix);
    await database?.close();
  });

  it('4 sources x 2 targets, 300 events each, two workers, lost acks: in order per lane, once each, in batches', async () => {
    const env = natsEnv(nats!.url, prefix, { EVENT_RETRY_BACKOFF_MS: '10', EVENT_RETRY_MAX_MS: '40', EVENT_DELIVERY_POLL_MS: '10', EVENT_DELIVERY_BATCH: '4' });
    const config = loadConfig(env);
    const svc = new EventService(database.pool, systemClock, config.events);
    const sources = ['l-s1', 'l-s2', 'l-s3', 'l-s4'];
    const targets = ['l-a', 'l-b'];
    const N = 300;
    for (let n = 0; n < N; n++) {
      for (const source of sources) {
        await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: source, targetIntegrationIds: targets, payload: { n }, eventCategory: 'ops' });
      }
    }
    const real = await natsDeliverPublisher(nc, config.nats, testLog);
    const rand = prng(11);
    let lost = 0;
    // the message reaches the stream; its ack does not reach us (a timeout, a dropped link)
    const lossy: DeliverPublisher = async (...args) => {
      await real(...args);
      if (rand() < 0.03) {
        lost++;
        throw new Error('ack lost');
      }
    };
    const workers = [1, 2].map(() => new EventDeliveryWorker({ pool: database.pool, config: config.events, clock: systemClock, log: testLog, publish: lossy }));
    workers.forEach((w) => w.start());
    const total = N * sources.length * targets.length;
    try {
      const delivered = `SELECT count(*)::int AS n FROM event_deliveries WHERE status = 'delivered'`;
      await waitFor(`${total} deliveries recorded`, async () => (await database.pool.query<{ n: number }>(delivered)).rows[0]!.n === total, 60_000);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(lost).toBeGreaterThan(0);
    expect(workers.every((w) => w.stats.delivered > 0)).toBe(true);
    // far fewer lane tasks than deliveries: lanes went in batches, not one row at a time
    const lanes = workers.reduce((a, w) => a + w.stats.lanes, 0);
    expect(lanes).toBeLessThan(total / 10);
    expect(workers.reduce((a, w) => a + w.stats.delivered, 0)).toBe(total);

    // read the stream back: per lane, n = 0..N-1 once each, in order
    const jsm = await jetstreamManager(nc);
    const stream = deliverStreamName(prefix);
    const info = await jsm.streams.info(stream);
    expect(info.state.messages).toBe(total);
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream);
    const seen = new Map<string, number[]>();
    const it = await consumer.fetch({ max_messages: total, expires: 10_000 });
    let read = 0;
    for await (const m of it) {
      const body = m.json<{ data: { sourceIntegrationId: string; targetIntegrationId: string; payload: { n: number } } }>();
      const lane = `${body.data.sourceIntegrationId}>${body.data.targetIntegrationId}`;
      seen.set(lane, [...(seen.get(lane) ?? []), body.data.payload.n]);
      if (++read === total) break;
    }
    expect(seen.size).toBe(sources.length * targets.length);
    for (const [lane, ns] of seen) expect(ns, lane).toEqual(Array.from({ length: N }, (_, i) => i));
  }, 120_000);
});
