import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { natsNames } from '../../runtime/nats/subjects.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../helpers/nats.js';
import { testRuntime } from '../helpers/runtime.js';
import { tallyType } from '../runtime/nats/fixtures.js';

const nats = await natsForTests();

/**
 * What two relays of one partition publish during a handover. Relay A reads a batch of 5 rows
 * and stalls before publishing (as a SIGSTOP or a long GC pause would stall it); its lease
 * session dies, B takes the partition (epoch + 1), publishes the 5 rows and deletes them; then
 * A wakes up and carries on with the batch it holds. Each row's message id must be in the
 * stream once.
 */
describe.skipIf(!nats)('faults: the outbox relay\'s partition handover', () => {
  let database: Database;
  let nc: NatsConnection;
  const prefixes: string[] = [];
  beforeAll(async () => {
    database = await freshDatabase();
    nc = await connect({ servers: nats!.url });
  });
  afterAll(async () => {
    await nc?.close();
    await database?.close();
    for (const p of prefixes) await dropPrefix(nats!.url, p);
  });

  /** Message ids in the actor stream, with how many times each is there. */
  async function streamIds(prefix: string): Promise<Map<string, number>> {
    const jsm = await jetstreamManager(nc);
    const stream = natsNames(prefix).actorStream;
    const info = await jsm.streams.info(stream);
    const ids = new Map<string, number>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      const id = m?.header?.get('Nats-Msg-Id');
      if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    return ids;
  }

  async function handover(windowMs: number, stallAfterHandoverMs: number): Promise<{ ids: Map<string, number>; applied: string[]; publishedByA: number }> {
    const prefix = testPrefix();
    prefixes.push(prefix);
    await database.pool.query('DELETE FROM outbox');
    await database.pool.query('DELETE FROM partition_epochs');
    let stall: Promise<void> | undefined;
    let release: () => void = () => undefined;
    let stalled = 0;
    let publishedByA = 0;
    const env = natsEnv(nats!.url, prefix, { PARTITIONS: '1', NATS_DUPLICATE_WINDOW_MS: String(windowMs) });
    const a: Runtime = await testRuntime(database, {
      types: [tallyType],
      env,
      run: { timers: false },
      nats: {
        hooks: {
          beforeDeliver: async (rows) => {
            if (!stall || rows.length === 0) return;
            stalled = rows.length;
            await stall;
          },
          afterPublish: (rows) => void (publishedByA += rows.length),
        },
      },
    });
    let b: Runtime | undefined;
    try {
      await a.start();
      stall = new Promise<void>((r) => (release = r));
      // one hub message fans out to 5 tallies: 5 `send` rows in the outbox of partition 0
      const to = [1, 2, 3, 4, 5].map((n) => `${prefix}-x${n}`);
      await a.host.send({ type: 'tally', id: `${prefix}-hub` }, { type: 'tally.fanout', to, seq: 1 }, { messageId: `${prefix}-fan` });
      await waitFor('relay A holding the batch', () => stalled === 5);
      // A's lease session dies (a network partition, a dropped connection); B takes over
      await database.pool.query('SELECT pg_terminate_backend($1)', [a.leases.backendPid]);
      await waitFor('A to notice', () => a.leases.owned().length === 0);
      b = await testRuntime(database, { types: [tallyType], env, run: { timers: false } });
      await b.start();
      await waitFor('B to relay and delete the rows', async () => (await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')).rows[0]!.n === 0);
      await waitFor('the 5 messages applied', async () => (await Promise.all(to.map((id) => b!.host.get({ type: 'tally', id }).catch(() => null)))).every((s) => s !== null));
      await new Promise((r) => setTimeout(r, stallAfterHandoverMs));
      stall = undefined;
      publishedByA = 0;
      release(); // A wakes up with its batch
      await new Promise((r) => setTimeout(r, 1_500));
      const applied = (await Promise.all(to.map(async (id) => ((await b!.host.get({ type: 'tally', id })).context as { entries: string[] }).entries))).flat();
      return { ids: await streamIds(prefix), applied, publishedByA };
    } finally {
      release();
      await b?.stop();
      await a.stop().catch(() => undefined);
    }
  }

  it('inside the duplicate window: A publishes its batch again and JetStream drops every copy', async () => {
    const { ids, applied, publishedByA } = await handover(30_000, 200);
    expect(publishedByA).toBe(5); // acknowledged by JetStream as duplicates
    expect([...ids.values()]).toEqual([1, 1, 1, 1, 1]);
    expect(applied).toHaveLength(5);
  }, 60_000);

  it('past the duplicate window: A\'s stale batch is fenced (not published), so no second copy reaches the stream', async () => {
    // the window closes 1 s after B's publish; A wakes 2.5 s after it
    const { ids, applied, publishedByA } = await handover(1_000, 2_500);
    expect(publishedByA).toBe(0);
    expect([...ids.values()]).toEqual([1, 1, 1, 1, 1]);
    expect(applied).toHaveLength(5);
  }, 60_000);
});
