import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { actorSubject } from '../../../runtime/effects.js';
import { natsNames } from '../../../runtime/nats/subjects.js';
import { partitionOf } from '../../../runtime/partition.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType } from './fixtures.js';
import { allEntries, audit, countEntries } from './support.js';

const nats = await natsForTests();

/**
 * Outbox rows whose transactions commit out of id order (32 writers holding their
 * transaction open for a random time): the relay must publish every row, none twice, and
 * keep each source's order to each target.
 */
describe.skipIf(!nats)('NATS relay: rows committed out of id order', () => {
  const prefix = testPrefix();
  let database: Database;
  let runtime: Runtime;

  beforeAll(async () => {
    database = await freshDatabase(40);
    runtime = await testRuntime(database, { types: [tallyType], env: { PARTITIONS: '4', ...natsEnv(nats!.url, prefix) } });
    await runtime.start();
  });
  afterAll(async () => {
    await runtime?.stop();
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('publishes every row once, in order per source and target', async () => {
    const writers = 32;
    const perWriter = 60;
    const targets = 16;
    const expected = new Map<string, string[]>();
    let outOfOrder = 0;
    let lastCommitted = 0;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const source = `w${w}`;
        for (let seq = 0; seq < perWriter; seq++) {
          const target = `t${(w * 7 + seq) % targets}`;
          expected.set(target, [...(expected.get(target) ?? []), `${source}:${seq}`]);
          const client = await database.pool.connect();
          try {
            await client.query('BEGIN');
            const { rows } = await client.query<{ id: string }>(
              `INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload)
               VALUES ($1, 'src', $2, 'send', $3, $4, $5::jsonb) RETURNING id`,
              [partitionOf(`src/${source}`, 4), source, actorSubject('tally', target), `${source}#${seq}`, JSON.stringify({ type: 'tally.add', seq, source })],
            );
            // hold the transaction open for a while: higher ids of other writers commit first
            await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 20)));
            await client.query('COMMIT');
            const id = Number(rows[0]!.id);
            if (id < lastCommitted) outOfOrder++;
            lastCommitted = Math.max(lastCommitted, id);
          } finally {
            client.release();
          }
        }
      }),
    );
    const total = writers * perWriter;
    await waitFor('every row applied', async () => (await countEntries(database.pool)) >= total, 90_000, 100);
    const result = audit(expected, await allEntries(database.pool));
    console.log(`[nats late commit] ${outOfOrder} of ${total} rows committed after a higher id; ${JSON.stringify(result)}`);
    expect(outOfOrder).toBeGreaterThan(total / 10);
    expect(result).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: total });
    const nc = await connect({ servers: nats!.url });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(natsNames(prefix).actorStream)).state.messages).toBe(total);
    await nc.close();
    await waitFor('outbox empty', async () => (await runtime.health()).outbox.pending === 0);
  }, 120_000);
});
