import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { allEntries, audit, countEntries, kill, publishAll, spawnWorker, type Worker } from './support.js';

const nats = await natsForTests();
const PARTITION_KEY = 720_111; // runtime/leases.ts

/** Partitions held per backend pid (the lease sessions of the two processes). */
async function holders(db: Database): Promise<Map<number, number>> {
  const { rows } = await db.pool.query<{ pid: number; n: number }>(
    `SELECT pid, count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) GROUP BY pid`,
    [PARTITION_KEY],
  );
  return new Map(rows.map((r) => [r.pid, r.n]));
}

/** Two runtime processes share the partitions; one is SIGKILLed mid-stream; the survivor takes over. */
describe.skipIf(!nats)('NATS scale-out: two processes, one killed', () => {
  const prefix = testPrefix();
  let database: Database;
  const workers: Worker[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    for (const w of workers) await kill(w).catch(() => undefined);
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('applies every message once and in order per actor, and the survivor owns every partition within seconds', async () => {
    const partitions = 8;
    const env = { DATABASE_URL: database.url, PARTITIONS: String(partitions), ...natsEnv(nats!.url, prefix, { NATS_ACK_WAIT_MS: '2000' }) };
    workers.push(await spawnWorker(env), await spawnWorker(env));
    await waitFor('both processes own partitions', async () => {
      const h = await holders(database);
      return h.size === 2 && [...h.values()].every((n) => n === partitions / 2);
    }, 30_000, 100);

    const actors = 200;
    const perPublisher = 1_000;
    const expected = new Map<string, string[]>();
    const batches = Array.from({ length: 4 }, (_, p) =>
      Array.from({ length: perPublisher }, (_, i) => {
        const id = `a${i % actors}`;
        const seq = Math.floor(i / actors);
        expected.set(id, [...(expected.get(id) ?? []), `p${p}:${seq}`]);
        return { subject: partitionedActorSubject(prefix, { type: 'tally', id }, partitions), msgId: `p${p}-${i}`, event: { type: 'tally.add', seq, source: `p${p}` } };
      }),
    );
    const total = 4 * perPublisher;
    const publishing = Promise.all(batches.map((b) => publishAll(nats!.url, b, 64)));
    await waitFor('a quarter applied', async () => (await countEntries(database.pool)) >= total / 4, 60_000, 20);
    const victim = workers.shift()!;
    await kill(victim);
    const killedAt = Date.now();
    await waitFor('the survivor owns every partition', async () => {
      const h = await holders(database);
      return h.size === 1 && [...h.values()][0] === partitions;
    }, 30_000, 50);
    const takeoverMs = Date.now() - killedAt;
    await publishing;
    await waitFor('every message applied', async () => (await countEntries(database.pool)) >= total, 90_000, 100);
    const result = audit(expected, await allEntries(database.pool));
    console.log(`[nats scale-out] survivor owned all ${partitions} partitions ${takeoverMs} ms after the SIGKILL; all applied ${Date.now() - killedAt} ms after it; ${JSON.stringify(result)}`);
    expect(takeoverMs).toBeLessThan(10_000);
    expect(result).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: total });
  }, 180_000);
});
