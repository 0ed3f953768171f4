import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { listDeadLetters } from '../../../runtime/dead-letters.js';
import { natsNames } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { findNatsServer, natsEnv, natsForTests, startNatsServer, testPrefix, type NatsServer } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType } from './fixtures.js';
import { allEntries, audit, countEntries } from './support.js';

const nats = await natsForTests();
const binary = findNatsServer();
if (nats && !binary && process.env.CI === 'true') throw new Error('CI=true: the outage test needs nats-server on PATH');

/** NATS goes away for 5 s mid-run (a server this test owns, with its own store). */
describe.skipIf(!nats || !binary)('NATS stopped for 5 s and started again', () => {
  const prefix = testPrefix();
  let server: NatsServer;
  let database: Database;
  let runtime: Runtime;

  beforeAll(async () => {
    server = await startNatsServer(binary!);
    database = await freshDatabase();
    runtime = await testRuntime(database, {
      types: [tallyType],
      env: { PARTITIONS: '4', ...natsEnv(server.url, prefix, { NATS_PUBLISH_TIMEOUT_MS: '1000', NATS_ACK_WAIT_MS: '2000' }) },
    });
    await runtime.start();
  });
  afterAll(async () => {
    await runtime?.stop();
    await database?.close();
    await server?.dispose();
  });

  it('relay and consumers recover by themselves and nothing is lost, doubled or reordered', async () => {
    const sources = 20;
    const rounds = 40;
    const targets = Array.from({ length: 5 }, (_, i) => `t${i}`);
    const expected = new Map<string, string[]>(targets.map((t) => [t, []]));
    // 20 source actors each fan 40 rounds out to 5 targets: 4,000 messages through outbox -> relay -> JetStream -> consumers
    const driving = Promise.all(
      Array.from({ length: sources }, async (_, s) => {
        for (let seq = 0; seq < rounds; seq++) {
          await runtime.host.send({ type: 'tally', id: `s${s}` }, { type: 'tally.fanout', to: targets, seq });
          for (const t of targets) expected.get(t)!.push(`s${s}:${seq}`);
        }
      }),
    );
    await waitFor('traffic flowing through NATS', async () => (await countEntries(database.pool)) > 300, 30_000);
    await server.stop();
    const stoppedAt = Date.now();
    const during = await countEntries(database.pool);
    await waitFor('5 s of outage', () => Date.now() - stoppedAt >= 5_000, 10_000, 50);
    expect((await runtime.health()).nats?.status).not.toBe('connected');
    await server.start();
    await driving;
    await waitFor('every message applied', async () => (await countEntries(database.pool)) >= sources * rounds * targets.length, 90_000, 100);
    const recoveredMs = Date.now() - stoppedAt - 5_000;
    const all = await allEntries(database.pool);
    const result = audit(expected, new Map(targets.map((t) => [t, all.get(t) ?? []])));
    console.log(`[nats outage] applied before stop ${during}; all ${sources * rounds * targets.length} applied ${recoveredMs} ms after restart; ${JSON.stringify(result)}`);
    expect(during).toBeLessThan(sources * rounds * targets.length);
    expect(result).toEqual({ lost: 0, duplicated: 0, reordered: 0, applied: 4_000 });
    // an outage is not the messages' fault: nothing was dead-lettered for it
    expect(await listDeadLetters(database.pool)).toEqual([]);
    await waitFor('health back to connected with no lag', async () => {
      const h = await runtime.health();
      return h.nats?.status === 'connected' && h.nats.lag === 0 && h.outbox.pending === 0;
    });
    // JetStream kept one copy of each message
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(natsNames(prefix).actorStream)).state.messages).toBe(4_000);
    await nc.close();
  }, 180_000);
});
