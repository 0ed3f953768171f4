import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { ErrorCode, isConcordError } from '../../runtime/errors.js';
import { PartitionLeases, type LeaseListener } from '../../runtime/leases.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';

let database: Database;
let rt: Runtime;
beforeAll(async () => {
  database = await freshDatabase(6);
  rt = await testRuntime(database, { run: { timers: false, relay: false } });
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

const append = (id: string, seq: number, fence: { partition: number; epoch: number }) =>
  rt.host.send({ type: 'ledger', id }, { type: 'ledger.append', seq }, { messageId: `${id}-${seq}`, fence });

async function written(id: string) {
  const q = async (sql: string) => (await database.pool.query<{ n: number }>(sql, [id])).rows[0]!.n;
  return {
    version: await q(`SELECT coalesce(max(version), 0)::int AS n FROM actors WHERE type = 'ledger' AND id = $1`),
    inbox: await q(`SELECT count(*)::int AS n FROM inbox WHERE actor_type = 'ledger' AND actor_id = $1`),
    journal: await q(`SELECT count(*)::int AS n FROM journal WHERE actor_type = 'ledger' AND actor_id = $1`),
    outbox: await q(`SELECT count(*)::int AS n FROM outbox WHERE source_type = 'ledger' AND source_id = $1`),
  };
}

describe('fencing tokens for partition leases', () => {
  it('a commit under a stale epoch writes nothing and fails FENCED; the current epoch commits', async () => {
    await database.pool.query(`INSERT INTO partition_epochs (partition, epoch) VALUES (1, 2)`);
    await append('f1', 1, { partition: 1, epoch: 2 });
    const before = await written('f1');
    expect(before).toEqual({ version: 1, inbox: 1, journal: 1, outbox: 1 });

    const stale = await append('f1', 2, { partition: 1, epoch: 1 }).catch((e: unknown) => e);
    expect(isConcordError(stale, ErrorCode.Fenced)).toBe(true);
    expect(await written('f1')).toEqual(before);
    // unfenced partitions (no epoch row yet) are not a licence either
    expect(isConcordError(await append('f1', 3, { partition: 7, epoch: 1 }).catch((e: unknown) => e), ErrorCode.Fenced)).toBe(true);

    const r = await append('f1', 2, { partition: 1, epoch: 2 });
    expect(r.version).toBe(2);
    expect((await rt.host.get({ type: 'ledger', id: 'f1' })).context.entries).toEqual([1, 2]);
  });

  it('in one group commit, only the transitions under a stale epoch are refused', async () => {
    await database.pool.query(`INSERT INTO partition_epochs (partition, epoch) VALUES (2, 5)`);
    const ids = Array.from({ length: 24 }, (_, i) => `g${i}`);
    const outcomes = await Promise.allSettled(ids.map((id, i) => append(id, 1, { partition: 2, epoch: i % 3 === 0 ? 4 : 5 })));
    outcomes.forEach((o, i) => {
      if (i % 3 === 0) expect(o.status === 'rejected' && isConcordError(o.reason, ErrorCode.Fenced), `g${i}`).toBe(true);
      else expect(o.status, `g${i}`).toBe('fulfilled');
    });
    for (const [i, id] of ids.entries()) expect((await written(id)).version, id).toBe(i % 3 === 0 ? 0 : 1);
  });

  it('taking a partition bumps its epoch: the process whose lease session ended can commit nothing more', async () => {
    const took: Array<{ who: string; epoch: number }> = [];
    const lost: string[] = [];
    const listener = (who: string): LeaseListener => ({
      acquired: (p, epoch) => void (p === 0 && took.push({ who, epoch })),
      releasing: async () => undefined,
      lost: () => void lost.push(who),
    });
    const a = new PartitionLeases({ url: database.url, partitions: 1, rebalanceMs: 60_000, log: testLog, listener: listener('a') });
    const b = new PartitionLeases({ url: database.url, partitions: 1, rebalanceMs: 60_000, log: testLog, listener: listener('b') });
    try {
      await a.start();
      expect(took.map((t) => t.who)).toEqual(['a']);
      const epochA = took[0]!.epoch;
      await append('h1', 1, { partition: 0, epoch: epochA });

      // a's lease session ends (a dropped connection, an operator, a network partition) and b takes over
      await database.pool.query('SELECT pg_terminate_backend($1)', [a.backendPid]);
      for (let i = 0; i < 100 && !lost.includes('a'); i++) await new Promise((r) => setTimeout(r, 20));
      await b.start();
      expect(took.map((t) => t.who)).toEqual(['a', 'b']);
      expect(took[1]!.epoch).toBe(epochA + 1);

      // whatever a still had in flight under its old lease is refused, whoever commits it
      expect(isConcordError(await append('h1', 2, { partition: 0, epoch: epochA }).catch((e: unknown) => e), ErrorCode.Fenced)).toBe(true);
      await append('h1', 2, { partition: 0, epoch: took[1]!.epoch });
      expect((await rt.host.get({ type: 'ledger', id: 'h1' })).context.entries).toEqual([1, 2]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
