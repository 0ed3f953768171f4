import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.js';
import { setPaused } from '../../runtime/control.js';
import type { Database } from '../../runtime/db.js';
import { createPool } from '../../runtime/db.js';
import { ErrorCode } from '../../runtime/errors.js';
import type { ActorRef } from '../../runtime/registry.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';
import type { LedgerContext } from '../fixtures/machines.js';

let database: Database;
const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
/** Two runtimes (own pools, hosts and caches) over one database, background loops off. */
const rt: Runtime[] = [];

beforeAll(async () => {
  database = await freshDatabase();
  for (let i = 0; i < 2; i++) {
    const pool = createPool(database.url, 4);
    const r = await testRuntime({ ...database, pool, close: async () => void (await pool.end()) }, { clock, run: { timers: false, relay: false } });
    await r.start();
    rt.push(r);
  }
});
afterAll(async () => {
  for (const r of rt) {
    await r.stop();
    await r.database.close();
  }
  await database.close();
});

/** What an operator's pause does in the engine: mark the row, and this process forgets its copy. */
async function pause(r: Runtime, ref: ActorRef, on: boolean): Promise<void> {
  await setPaused(r.database.pool, ref, on ? { at: new Date(clock.now()).toISOString(), by: 'op-1', reason: 'test' } : null);
  r.host.evict(ref);
}

const entries = async (r: Runtime, ref: ActorRef) => ((await r.host.get(ref)).context as unknown as LedgerContext).entries;
const timerFires = async (ref: ActorRef) =>
  (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal WHERE actor_type = $1 AND actor_id = $2 AND kind = 'timer'`, [ref.type, ref.id])).rows[0]!.n;

describe('pausing an actor', () => {
  it('applies nothing while paused: a send is ACTOR_PAUSED, a due timer stays; after the resume the timer fires once', async () => {
    const [a] = rt as [Runtime];
    const ref = { type: 'ledger', id: 'p1' };
    await a.host.send(ref, { type: 'ledger.arm', ms: 1_000 });
    await pause(a, ref, true);
    await expect(a.host.send(ref, { type: 'ledger.append', seq: 1 })).rejects.toMatchObject({ code: ErrorCode.ActorPaused });
    expect(await a.host.get(ref)).toMatchObject({ version: 1, value: 'armed', paused: { by: 'op-1', reason: 'test' } });

    clock.advance(10_000); // the timer is well past due
    expect(await a.timers.pollOnce()).toBe(0);
    expect((await a.health()).timers).toMatchObject({ pending: 1, overdue: 0 }); // waiting on purpose is not trouble
    expect(await timerFires(ref)).toBe(0);
    expect((await a.host.get(ref)).timers).toHaveLength(1);

    await pause(a, ref, false);
    expect(await a.timers.pollOnce()).toBe(1);
    expect(await a.timers.pollOnce()).toBe(0);
    expect(await timerFires(ref)).toBe(1);
    expect(await a.host.get(ref)).toMatchObject({ version: 2, value: 'open', paused: null, context: { fired: 1 } });
  });

  it('a pause taken in one runtime stops a transition in another whose cached copy says it runs', async () => {
    const [a, b] = rt as [Runtime, Runtime];
    const ref = { type: 'ledger', id: 'p2' };
    await a.host.send(ref, { type: 'ledger.append', seq: 1 });
    await a.host.send(ref, { type: 'ledger.append', seq: 2 }); // cached (and started) in runtime a
    await pause(b, ref, true); // a is not told
    await expect(a.host.send(ref, { type: 'ledger.append', seq: 3 })).rejects.toMatchObject({ code: ErrorCode.ActorPaused });
    expect(await entries(a, ref)).toEqual([1, 2]);
    expect((await a.host.get(ref)).version).toBe(2);

    // resumed in b: a's cached copy says paused, and must not refuse on its say-so
    await pause(b, ref, false);
    await a.host.send(ref, { type: 'ledger.append', seq: 3 });
    expect(await entries(b, ref)).toEqual([1, 2, 3]);
  });
});

describe('pausing an actor, with the in-process delivery', () => {
  it('actor-to-actor messages wait in the outbox without counting attempts, and are applied in order on resume', async () => {
    const r = await testRuntime(database, { clock, run: { timers: false, relay: true }, maxDeliveryAttempts: 2 });
    await r.start();
    try {
      const src = { type: 'ledger', id: 'src' };
      const dst = { type: 'ledger', id: 'dst' };
      await r.host.send(dst, { type: 'ledger.append', seq: 0, source: 'self' });
      await pause(r, dst, true);
      const refused = r.host.stats.paused;
      await r.host.send(src, { type: 'ledger.ping', to: 'dst' }); // src:0
      await r.host.send(src, { type: 'ledger.append', seq: 9 });
      await r.host.send(src, { type: 'ledger.ping', to: 'dst' }); // src:1
      // tried more often than the attempts allowed: waiting is not failing
      await waitFor('the relay to try the paused actor 4 times', () => r.host.stats.paused - refused >= 4);
      const { rows } = await database.pool.query<{ attempts: number }>(`SELECT attempts FROM outbox WHERE kind = 'send' AND subject LIKE '%.dst'`);
      expect(rows.length).toBe(2);
      expect(rows.every((x) => x.attempts === 0)).toBe(true);
      expect((await database.pool.query(`SELECT 1 FROM dead_letters`)).rowCount).toBe(0);
      expect(await entries(r, dst)).toEqual(['self:0']);

      await pause(r, dst, false);
      await waitFor('both messages applied', async () => (await entries(r, dst)).length === 3);
      expect(await entries(r, dst)).toEqual(['self:0', 'src:0', 'src:1']);
      expect((await database.pool.query(`SELECT 1 FROM dead_letters`)).rowCount).toBe(0);
    } finally {
      await r.stop();
    }
  });
});
