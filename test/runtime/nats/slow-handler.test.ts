import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType } from './fixtures.js';
import { allEntries, audit, countEntries, publishAll } from './support.js';

const nats = await natsForTests();

/**
 * A handler slower than the ack wait (1 s): with `working()` the server never redelivers;
 * without it (heartbeat off) it does, and the redelivery is absorbed. Either way nothing is
 * applied twice or out of order.
 */
describe.skipIf(!nats)('NATS: a handler slower than the ack wait', () => {
  const prefixes: string[] = [];
  let database: Database;

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    await database?.close();
    for (const p of prefixes) await dropPrefix(nats!.url, p);
  });

  async function run(heartbeat: boolean): Promise<{ redeliveries: number; runtime: Runtime }> {
    const prefix = testPrefix();
    prefixes.push(prefix);
    await database.pool.query('TRUNCATE actors, inbox, journal, outbox, dead_letters');
    const runtime = await testRuntime(database, {
      types: [tallyType],
      env: { PARTITIONS: '2', ...natsEnv(nats!.url, prefix, { NATS_ACK_WAIT_MS: '1000' }) },
      nats: { heartbeat },
      hooks: {
        async beforeCommit(rec) {
          const e = rec.journal.event as { slow?: number };
          if (e.slow) await new Promise((r) => setTimeout(r, e.slow)); // the handler's slow work, inside the transition
        },
      },
    });
    await runtime.start();
    const expected = new Map<string, string[]>();
    const messages = Array.from({ length: 60 }, (_, i) => {
      const id = `s${i % 3}`;
      const seq = Math.floor(i / 3);
      expected.set(id, [...(expected.get(id) ?? []), `ext:${seq}`]);
      return { subject: partitionedActorSubject(prefix, { type: 'tally', id }, 2), msgId: `m${i}`, event: { type: 'tally.add', seq, source: 'ext', slow: i % 20 === 0 ? 2_500 : 0 } };
    });
    await publishAll(nats!.url, messages);
    await waitFor('all applied', async () => (await countEntries(database.pool)) >= 60, 60_000, 50);
    expect(audit(expected, await allEntries(database.pool))).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: 60 });
    const h = await runtime.health();
    await runtime.stop();
    return { redeliveries: h.nats!.redeliveries, runtime };
  }

  it('extends the ack deadline with working(): no redelivery', async () => {
    const { redeliveries } = await run(true);
    expect(redeliveries).toBe(0);
  }, 90_000);

  it('without working() the server redelivers, and the redelivery is absorbed', async () => {
    const { redeliveries } = await run(false);
    console.log(`[nats slow handler] redeliveries without working(): ${redeliveries}`);
    expect(redeliveries).toBeGreaterThan(0);
  }, 90_000);
});
