import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { allEntries, audit, countEntries, kill, publishAll, spawnWorker, type Worker } from './support.js';

const nats = await natsForTests();

/**
 * Guarantee 3 and 4 under crashes: 10,000 messages to 500 actors from 4 concurrent outside
 * publishers (on the plain actor subject, so through the ingress and the partition consumers;
 * half of them relayed on by hub actors through the outbox), while the runtime process is
 * SIGKILLed every 2 s of uptime and restarted.
 */
describe.skipIf(!nats)('NATS: a runtime SIGKILLed every 2 s', () => {
  const prefix = testPrefix();
  let database: Database;

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('loses nothing, applies nothing twice, reorders nothing per actor', async () => {
    const env = { DATABASE_URL: database.url, PARTITIONS: '8', ...natsEnv(nats!.url, prefix, { NATS_ACK_WAIT_MS: '2000' }) };
    const actors = 500;
    const perPublisher = 2_500;
    const expected = new Map<string, string[]>();
    // half the messages go straight to their actor; the other half go to one of the
    // publisher's 5 hub actors, whose transition emits a send that the relay carries
    // (outbox -> JetStream -> consumer), so kills also land between publish and delete
    const batches = Array.from({ length: 4 }, (_, p) =>
      Array.from({ length: perPublisher }, (_, i) => {
        const id = `a${i % actors}`;
        const direct = i % 2 === 0;
        const source = direct ? `p${p}` : `h${p}-${i % 5}`;
        expected.set(id, [...(expected.get(id) ?? []), `${source}:${i}`]);
        return direct
          ? { subject: `${prefix}.actor.tally.${id}`, msgId: `p${p}-${i}`, event: { type: 'tally.add', seq: i, source } }
          : { subject: `${prefix}.actor.tally.${source}`, msgId: `p${p}-${i}`, event: { type: 'tally.fanout', to: [id], seq: i } };
      }),
    );
    const total = 4 * perPublisher;

    let worker: Worker = await spawnWorker(env);
    // 250 msg/s per publisher: the traffic lasts ~10 s, so the kills land while it flows
    const publishing = Promise.all(batches.map((b) => publishAll(nats!.url, b, 50, 250)));
    let kills = 0;
    let lastKill = 0;
    // kill 2 s after each start while work remains (at most 6 times), then let it drain
    while (kills < 6 && (await countEntries(database.pool)) < total) {
      const started = Date.now();
      await waitFor('2 s of uptime', () => Date.now() - started >= 2_000, 5_000, 50);
      await kill(worker);
      kills++;
      lastKill = Date.now();
      worker = await spawnWorker(env);
    }
    await publishing;
    await waitFor('every message applied', async () => (await countEntries(database.pool)) >= total, 120_000, 100);
    const drainMs = Date.now() - lastKill;
    const result = audit(expected, await allEntries(database.pool));
    console.log(`[nats crash] ${kills} SIGKILLs; drain after the last kill ${drainMs} ms; ${JSON.stringify(result)}`);
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(result).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: total });
    await kill(worker);
  }, 240_000);
});
