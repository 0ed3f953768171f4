import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { freshDatabase } from '../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../helpers/nats.js';
import { kill, spawnWorker, type Worker } from '../runtime/nats/support.js';
import { checkHistory, describeVerdict, type Verdict } from './lib/history.js';
import { TallyTraffic, tallyEntries } from './lib/workload.js';

const nats = await natsForTests();

/**
 * The history checker must see a broken build. The same run twice: outside publishers send tally
 * messages (straight and through hub actors' outboxes) while the runtime process is SIGKILLed
 * four times; once with the runtime as built, once with NATS_FAULT=ack-before-commit (every
 * consumed message acked before it is applied). The first is clean; in the second the checker
 * reports the acknowledged messages that died with the process.
 */
describe.skipIf(!nats)('faults: the history checker against a deliberately broken build', () => {
  const databases: Database[] = [];
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const d of databases) await d.close();
    for (const p of prefixes) await dropPrefix(nats!.url, p);
  });

  async function run(fault: string | undefined): Promise<Verdict> {
    const prefix = testPrefix();
    prefixes.push(prefix);
    const database = await freshDatabase();
    databases.push(database);
    const env = { DATABASE_URL: database.url, PARTITIONS: '4', ...natsEnv(nats!.url, prefix, { NATS_ACK_WAIT_MS: '2000' }), ...(fault ? { NATS_FAULT: fault } : {}) };
    let worker: Worker = await spawnWorker(env);
    const traffic = new TallyTraffic({ url: nats!.url, prefix, sources: 8, actors: 40, perSourcePerSecond: 80 });
    await traffic.start();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 1_500));
      await kill(worker);
      worker = await spawnWorker(env);
    }
    await traffic.stop();
    // drain: until every acknowledged message is applied, or nothing has moved for 3 s
    let last = -1;
    let still = Date.now();
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      const applied = [...(await tallyEntries(database.pool)).values()].reduce((n, e) => n + e.length, 0);
      if (applied >= traffic.operations.filter((o) => o.acked).length) break;
      if (applied !== last) {
        last = applied;
        still = Date.now();
      } else if (Date.now() - still > 3_000) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await kill(worker);
    return checkHistory({ operations: traffic.operations, applied: await tallyEntries(database.pool), unfinished: [] });
  }

  it('the runtime as built: clean; acking before the commit: acknowledged messages lost', async () => {
    const good = await run(undefined);
    console.log(`[broken build] as built: ${describeVerdict(good)}`);
    expect(good.acked).toBeGreaterThan(1_000);
    expect(good, describeVerdict(good)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, stuck: 0, ok: true });

    const broken = await run('ack-before-commit');
    console.log(`[broken build] ack before commit: ${describeVerdict(broken)}`);
    expect(broken.ok).toBe(false);
    expect(broken.lost).toBeGreaterThan(0);
  }, 180_000);
});
