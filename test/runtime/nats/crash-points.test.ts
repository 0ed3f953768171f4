import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { natsNames, partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { allEntries, audit, countEntries, kill, publishAll, spawnWorker } from './support.js';

const nats = await natsForTests();

/**
 * The two points where a crash matters on the NATS path, hit on purpose: after JetStream acked
 * a relay batch but before the rows were deleted, and after a message's transition committed
 * but before it was acked.
 */
describe.skipIf(!nats)('NATS: crashes at the points that matter', () => {
  let database: Database;
  const prefixes: string[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    await database?.close();
    for (const p of prefixes) await dropPrefix(nats!.url, p);
  });

  async function scenario(crashAt: 'after-publish' | 'before-ack') {
    const prefix = testPrefix();
    prefixes.push(prefix);
    await database.pool.query('TRUNCATE actors, inbox, journal, outbox, dead_letters, correlations');
    const env = { DATABASE_URL: database.url, PARTITIONS: '4', ...natsEnv(nats!.url, prefix) };
    const crashing = await spawnWorker({ ...env, NATS_CRASH_AT: crashAt, NATS_CRASH_AFTER: '3' });
    // 4 hubs x 50 fanouts to 5 targets: 200 messages in, 1,000 relayed sends
    const targets = ['t0', 't1', 't2', 't3', 't4'];
    const expected = new Map<string, string[]>(targets.map((t) => [t, []]));
    const messages = Array.from({ length: 200 }, (_, i) => {
      const hub = `h${i % 4}`;
      for (const t of targets) expected.get(t)!.push(`${hub}:${i}`);
      return { subject: partitionedActorSubject(prefix, { type: 'tally', id: hub }, 4), msgId: `in-${i}`, event: { type: 'tally.fanout', to: targets, seq: i } };
    });
    await publishAll(nats!.url, messages, 32);
    await crashing.exited; // it killed itself at the crash point
    expect(crashing.child.signalCode).toBe('SIGKILL');
    const applied = await countEntries(database.pool);
    const survivor = await spawnWorker(env);
    try {
      await waitFor('every relayed message applied', async () => (await countEntries(database.pool)) >= 1_000, 60_000, 50);
      const result = audit(expected, await allEntries(database.pool));
      const nc = await connect({ servers: nats!.url });
      const stream = (await (await jetstreamManager(nc)).streams.info(natsNames(prefix).actorStream)).state.messages;
      await nc.close();
      console.log(`[nats crash point ${crashAt}] applied before the crash ${applied}; ${JSON.stringify(result)}; ${stream} messages in the stream`);
      expect(result).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: 1_000 });
      // JetStream's duplicate window kept one copy of each republished row
      expect(stream).toBe(1_200);
      await waitFor('outbox drained', async () => (await database.pool.query('SELECT 1 FROM outbox LIMIT 1')).rowCount === 0);
    } finally {
      await kill(survivor);
    }
  }

  it('a relay killed after the JetStream ack, before deleting the rows: republished with the same ids, kept once', async () => {
    await scenario('after-publish');
  }, 120_000);

  it('a consumer killed after the commit, before the ack: redelivered and dropped by the inbox', async () => {
    await scenario('before-ack');
  }, 120_000);
});
