import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setPaused } from '../../../runtime/control.js';
import type { Database } from '../../../runtime/db.js';
import { partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType, type TallyContext } from './fixtures.js';

const nats = await natsForTests();
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe.skipIf(!nats)('a paused actor over NATS', () => {
  const prefix = testPrefix();
  const ref = { type: 'tally', id: 'held' };
  let database: Database;
  let runtime: Runtime;
  let nc: NatsConnection;
  let js: JetStreamClient;

  const entries = async (): Promise<string[]> => ((await runtime.host.get(ref)).context as unknown as TallyContext).entries;
  const publish = (seq: number) => js.publish(partitionedActorSubject(prefix, ref, 4), enc({ type: 'tally.add', seq, source: 'ext' }), { msgID: `held-${seq}` });
  const deadLetters = async () => (await database.pool.query(`SELECT 1 FROM dead_letters`)).rowCount;

  beforeAll(async () => {
    database = await freshDatabase();
    // two attempts before a dead letter: waiting while paused must never count as one
    runtime = await testRuntime(database, { types: [tallyType], env: natsEnv(nats!.url, prefix, { NATS_MAX_ATTEMPTS: '2' }) });
    await runtime.start();
    nc = await connect({ servers: nats!.url });
    js = jetstream(nc);
  });

  afterAll(async () => {
    await runtime?.stop();
    await nc?.close();
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('keeps its messages waiting, in order, without counting attempts, and applies them all on resume', async () => {
    await publish(0);
    await waitFor('the first entry', async () => (await entries()).length === 1);
    await setPaused(database.pool, ref, { at: new Date().toISOString(), by: 'op-1', reason: 'investigating' });
    // this process's cached copy is not told: the commit statement refuses the transition
    const refused = runtime.host.stats.paused;
    for (let seq = 1; seq <= 5; seq++) await publish(seq);
    await waitFor('the first waiting message tried 4 times', () => runtime.host.stats.paused - refused >= 4);
    expect(await entries()).toEqual(['ext:0']);
    expect(await deadLetters()).toBe(0);

    await setPaused(database.pool, ref, null);
    await waitFor('all six applied', async () => (await entries()).length === 6);
    expect(await entries()).toEqual(['ext:0', 'ext:1', 'ext:2', 'ext:3', 'ext:4', 'ext:5']);
    expect(await deadLetters()).toBe(0);
  });
});
