import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { freshDatabase } from '../helpers/db.js';
import { findNatsServer } from '../helpers/nats.js';
import { testLog } from '../helpers/runtime.js';
import { describeVerdict } from './lib/history.js';
import { natsClusterScenario } from './lib/nats-scenario.js';

/**
 * The NATS cluster scenario at CI size (`npm run faults` runs it for 2 minutes): 30 s of faults,
 * one every 5 s (kill, SIGSTOP for 5 s, restart, on each node in turn), while tally messages,
 * outbox relays and saga commands and replies flow; then the drain.
 */
describe.skipIf(!findNatsServer())('faults: a three-node NATS cluster losing, pausing and restarting nodes', () => {
  let database: Database;
  beforeAll(async () => {
    database = await freshDatabase(16);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('loses no acknowledged message, applies none twice, reorders none per actor, leaves nothing stuck', async () => {
    const { row, verdict } = await natsClusterScenario({
      database,
      log: testLog,
      durationMs: 30_000,
      faultEveryMs: 5_000,
      downMs: 5_000,
      sources: 8,
      perSourcePerSecond: 20,
      actors: 50,
      sagas: 60,
      drainTimeoutMs: 90_000,
      progress: (line) => console.log(line),
    });
    console.log(`[nats cluster] ${JSON.stringify(row)}\n${describeVerdict(verdict)}`);
    expect(row.faults).toBeGreaterThanOrEqual(6);
    // 4,800 offered; a kill overlapping a pause leaves the R3 streams without a quorum for a few
    // seconds, during which publishes wait (by design), so how many are acked varies by schedule
    // and by load (on a loaded machine a restarted node's catch-up held publishes for 20 s of the
    // 30: 1,157 acked): the run must have carried real traffic through the faults (800 is 5 s of
    // all eight sources, the first fault comes a second in), and lost none of it
    expect(verdict.acked).toBeGreaterThan(800);
    expect(verdict, describeVerdict(verdict)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, stuck: 0 });
  }, 240_000);
});
