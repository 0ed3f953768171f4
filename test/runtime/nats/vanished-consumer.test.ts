import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { natsNames, partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testLog, testRuntime } from '../../helpers/runtime.js';
import { IdempotentConsumer } from '../../../services/saga/jetstream.js';
import { tallyType } from './fixtures.js';
import { allEntries, audit, countEntries, publishAll } from './support.js';

const nats = await natsForTests();

/**
 * A consumer can vanish while its worker runs: a delete of ours that timed out while a cluster
 * node was away and landed later, or an assignment the cluster lost (the three-node fault run
 * saw both the ingress and a partition consumer gone, and nothing flowed on their subjects again).
 * Here every consumer of the process is deleted under it: the workers notice, recreate their
 * consumers after the last message they acked (nothing applied twice, none replayed from the
 * start of the stream), and everything sent afterwards is applied, in order; health names a
 * missing consumer while it is missing.
 */
describe.skipIf(!nats)('NATS: a consumer deleted under its worker', () => {
  let database: Database;
  let prefix: string;
  beforeAll(async () => {
    database = await freshDatabase();
    prefix = testPrefix();
  });
  afterAll(async () => {
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('is recreated after its last acked message, and what follows is applied once, in order', async () => {
    const partitions = 2;
    const runtime = await testRuntime(database, { types: [tallyType], env: { PARTITIONS: String(partitions), ...natsEnv(nats!.url, prefix) } });
    await runtime.start();
    const names = natsNames(prefix);
    const nc = await connect({ servers: nats!.url });
    try {
      const expected = new Map<string, string[]>();
      const direct = (from: number, n: number) =>
        Array.from({ length: n }, (_, k) => {
          const i = from + k;
          const id = `t${i % 4}`;
          expected.set(id, [...(expected.get(id) ?? []), `direct:${i}`]);
          return { subject: partitionedActorSubject(prefix, { type: 'tally', id }, partitions), msgId: `d${i}`, event: { type: 'tally.add', seq: i, source: 'direct' } };
        });
      const viaIngress = (from: number, n: number) =>
        Array.from({ length: n }, (_, k) => {
          const i = from + k;
          const id = `t${i % 4}`;
          expected.set(id, [...(expected.get(id) ?? []), `ingress:${i}`]);
          return { subject: `${prefix}.actor.tally.${id}`, msgId: `i${i}`, event: { type: 'tally.add', seq: i, source: 'ingress' } };
        });

      await publishAll(nats!.url, [...direct(0, 40), ...viaIngress(0, 20)]);
      await waitFor('the first 60 applied', async () => (await countEntries(database.pool)) >= 60, 30_000, 50);
      await waitFor('every message acked', async () => (await runtime.health()).nats!.lag === 0, 10_000, 50);
      const before = (await runtime.health()).nats!;

      const jsm = await jetstreamManager(nc);
      const deleted = [...Array.from({ length: partitions }, (_, p) => [names.actorStream, names.partitionConsumer(p)] as const), [names.ingressStream, names.ingressConsumer] as const];
      for (const [stream, consumer] of deleted) await jsm.consumers.delete(stream, consumer);
      // health names each deleted consumer until its worker has recreated it (a moment later)
      const seen = await runtime.health();
      expect(seen.nats!.missing.length + seen.nats!.recreated).toBeGreaterThanOrEqual(deleted.length);
      if (seen.nats!.missing.length > 0) expect(seen.status).toBe('degraded');

      await publishAll(nats!.url, [...direct(40, 40), ...viaIngress(20, 20)]);
      await waitFor('all 120 applied', async () => (await countEntries(database.pool)) >= 120, 60_000, 100);
      expect(audit(expected, await allEntries(database.pool))).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: 120 });

      const after = (await runtime.health()).nats!;
      expect(after.missing).toEqual([]);
      expect(after.recreated).toBe(deleted.length);
      // started after the floor: the 60 new messages and the 20 forwards of the ingress ones, no replay of the first 80 handled
      expect(after.handled - before.handled).toBe(40 + 20 + 20);
    } finally {
      await nc.close();
      await runtime.stop();
    }
  }, 90_000);

  it('an idempotent consumer (services, intake) recreates its durable and handles what follows', async () => {
    const nc = await connect({ servers: nats!.url });
    const stream = `${prefix.toUpperCase()}_IDEMPOTENT`;
    const subject = `${prefix}.idem.>`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [subject] });
    const js = jetstream(nc);
    const handled = new Set<string>();
    const consumer = new IdempotentConsumer({ js, jsm, stream, durable: 'idem', filter: subject, log: testLog, handle: async (m) => void handled.add(m.string()) });
    try {
      await consumer.start();
      for (let i = 0; i < 20; i++) await js.publish(`${prefix}.idem.x`, `m${i}`);
      await waitFor('the first 20 handled', () => Promise.resolve(handled.size === 20), 10_000, 20);
      await jsm.consumers.delete(stream, 'idem');
      for (let i = 20; i < 40; i++) await js.publish(`${prefix}.idem.x`, `m${i}`);
      await waitFor('all 40 handled', () => Promise.resolve(handled.size === 40), 30_000, 50);
      expect((await jsm.consumers.info(stream, 'idem')).name).toBe('idem');
    } finally {
      await consumer.stop();
      await nc.close();
    }
  }, 60_000);
});
