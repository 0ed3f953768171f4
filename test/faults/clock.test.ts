import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import type { Runtime } from '../../runtime/runtime.js';
import { spawnTs, type Child } from '../helpers/child.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';
import type { LedgerContext } from '../fixtures/machines.js';

const WORKER = fileURLToPath(new URL('../fixtures/clock-worker.ts', import.meta.url));
const AHEAD_MS = 5 * 60_000;
const ARM_MS = 4_000;

/**
 * Clock jumps: the only timer poller runs in a process whose wall clock is 5 minutes ahead. Timers
 * armed by this (correct) process and by the fast one itself must fire neither early (by more
 * than a second) nor 5 minutes late: the database's time decides.
 */
describe('faults: a process whose clock runs 5 minutes ahead', () => {
  let database: Database;
  let rt: Runtime;
  let child: Child | undefined;
  beforeAll(async () => {
    database = await freshDatabase();
    rt = await testRuntime(database, { run: { timers: false, relay: false } });
    await rt.start();
  });
  afterAll(async () => {
    await child?.kill('SIGTERM');
    await rt?.stop();
    await database?.close();
  });

  it('fires no timer early, and none late, whoever armed it', async () => {
    let childNow = 0;
    let childRuntimeNow = 0;
    child = spawnTs(WORKER, { DATABASE_URL: database.url, CLOCK_AHEAD_MS: String(AHEAD_MS), ARM: '3', ARM_MS: String(ARM_MS) }, (line) => {
      const m = /^ready (\d+) (\d+(?:\.\d+)?)/.exec(line);
      if (m) {
        childRuntimeNow = Number(m[2]) - Date.now(); // its runtime clock minus ours, as the line arrives
        childNow = Number(m[1]);
      }
    });
    await waitFor('the fast process', () => childNow > 0, 60_000);
    expect(childNow - Date.now()).toBeGreaterThan(AHEAD_MS - 10_000); // its clock really is ahead
    expect(Math.abs(childRuntimeNow)).toBeLessThan(1_000); // its runtime (and services) keep the database's time
    // the fast process armed c1..c3 just now; this one arms t1..t3
    const armedAt = Date.now();
    for (let i = 1; i <= 3; i++) await rt.host.send({ type: 'ledger', id: `t${i}` }, { type: 'ledger.arm', ms: ARM_MS }, { messageId: `t${i}-arm` });
    const { rows: due } = await database.pool.query<{ actor_id: string; due: number; now: number }>(
      `SELECT actor_id, extract(epoch FROM due_at) * 1000 AS due, extract(epoch FROM clock_timestamp()) * 1000 AS now FROM timers WHERE actor_type = 'ledger'`,
    );
    expect(due).toHaveLength(6);
    // every due time is the database's time plus the delay, not the fast clock's
    for (const r of due) expect(Number(r.due) - Number(r.now), r.actor_id).toBeLessThan(ARM_MS + 1_000);

    const firedAt = new Map<string, number>();
    const ids = ['c1', 'c2', 'c3', 't1', 't2', 't3'];
    await waitFor(
      'every timer fired',
      async () => {
        for (const id of ids) {
          if (firedAt.has(id)) continue;
          const s = await rt.host.get({ type: 'ledger', id }).catch(() => null);
          if ((s?.context as LedgerContext | undefined)?.fired === 1) firedAt.set(id, Date.now());
        }
        return firedAt.size === ids.length;
      },
      ARM_MS + 15_000,
      20,
    );
    const dueOf = new Map(due.map((r) => [r.actor_id, Number(r.due)]));
    const lateness = ids.map((id) => ({ id, ms: firedAt.get(id)! - dueOf.get(id)! }));
    console.log(`[clock +5 min] fired relative to due (ms): ${JSON.stringify(lateness)}; armed by this process at ${armedAt}`);
    for (const l of lateness) {
      expect(l.ms, `${l.id} early`).toBeGreaterThan(-1_000);
      expect(l.ms, `${l.id} late`).toBeLessThan(2_000);
    }
  }, 90_000);
});
