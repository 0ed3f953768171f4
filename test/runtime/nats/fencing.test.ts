import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType, type TallyContext } from './fixtures.js';

const nats = await natsForTests();
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe.skipIf(!nats)('NATS consumers under a fenced lease', () => {
  const prefix = testPrefix();
  let database: Database;
  let nc: NatsConnection;

  beforeAll(async () => {
    database = await freshDatabase();
    nc = await connect({ servers: nats!.url });
  });
  afterAll(async () => {
    await nc?.close();
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('a process whose leases passed on without its noticing applies nothing; the next owner applies every message once, in order', async () => {
    const start = async (): Promise<Runtime> => {
      const rt = await testRuntime(database, { types: [tallyType], env: natsEnv(nats!.url, prefix, { PARTITIONS: '4' }), run: { timers: false } });
      await rt.start();
      return rt;
    };
    const entries = async (rt: Runtime, id: string) => ((await rt.host.get({ type: 'tally', id }).catch(() => null))?.context as TallyContext | undefined)?.entries ?? [];
    const a = await start();
    let b: Runtime | undefined;
    try {
      expect(a.leases.owned()).toEqual([0, 1, 2, 3]);
      // every partition is taken over behind a's back: its lease session looks alive to it
      await database.pool.query('UPDATE partition_epochs SET epoch = epoch + 1');
      const js = jetstream(nc);
      for (let seq = 1; seq <= 5; seq++) {
        await js.publish(partitionedActorSubject(prefix, { type: 'tally', id: 't1' }, 4), enc({ type: 'tally.add', seq, source: 'f' }), { msgID: `f-${seq}` });
      }
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await entries(a, 't1')).toEqual([]);

      await a.stop();
      b = await start();
      await waitFor('every message, applied by the new owner', async () => (await entries(b!, 't1')).length >= 5);
      await new Promise((r) => setTimeout(r, 300));
      expect(await entries(b, 't1')).toEqual(['f:1', 'f:2', 'f:3', 'f:4', 'f:5']);
    } finally {
      await a.stop().catch(() => undefined);
      await b?.stop();
    }
  }, 60_000);
});
