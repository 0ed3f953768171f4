import { describe, expect, it } from 'vitest';
import { testLog } from '../helpers/runtime.js';
import { describeVerdict } from './lib/history.js';
import { postgresRestartScenario } from './lib/pg-scenario.js';
import { findPgBin } from './lib/postgres.js';

/**
 * PostgreSQL restarts at CI size (`npm run faults` runs 2,000 sagas with a restart every 5-20 s):
 * a server of the test's own, restarted every 2-5 s (down 0-2 s) while 150 order sagas start over
 * HTTP and run against the simulated services.
 */
describe.skipIf(!findPgBin())('faults: PostgreSQL restarting under order sagas', () => {
  it('every saga ends COMPLETED or compensated, no effect twice, none stuck; the edge answers 503 problems, never a 500 or a hang', async () => {
    const { row, verdict, http } = await postgresRestartScenario({
      log: testLog,
      sagas: 150,
      startOverMs: 15_000,
      restartEveryMs: [2_000, 5_000],
      downMs: [0, 2_000],
      minFaultsMs: 20_000, // at least 3 restarts even at 8 s a cycle (5 s up, 2 s down, stop and start)
      drainTimeoutMs: 90_000,
      hangMs: 10_000,
      progress: (line) => console.log(line),
    });
    console.log(`[postgres] ${JSON.stringify(row)}\n${describeVerdict(verdict)}\nhttp: ${JSON.stringify(http)}`);
    expect(row.faults).toBeGreaterThanOrEqual(3);
    expect(http.unavailable).toBeGreaterThan(0); // the edge did see the database down
    expect(http.examples.filter((e) => !/: 503/.test(e))).toEqual([]);
    expect({ bad: http.bad, hangs: http.hangs }).toEqual({ bad: 0, hangs: 0 });
    expect(verdict, describeVerdict(verdict)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, stuck: 0 });
  }, 240_000);
});
