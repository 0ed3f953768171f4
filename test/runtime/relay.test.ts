import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectorError } from '../../connectors/kit/errors.js';
import type { Database } from '../../runtime/db.js';
import { createPool } from '../../runtime/db.js';
import { InProcessDelivery } from '../../runtime/in-process.js';
import { partitionOf } from '../../runtime/partition.js';
import { OutboxRelay } from '../../runtime/relay.js';
import { PartitionLeases, type LeaseListener } from '../../runtime/leases.js';
import type { Runtime } from '../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testLog, testRuntime } from '../helpers/runtime.js';
import { callerType, ledgerType, type LedgerContext } from '../fixtures/machines.js';

let database: Database;
let rt: Runtime;
const seen: Array<{ subject: string; seq: number; id: string }> = [];

beforeAll(async () => {
  database = await freshDatabase();
  rt = await testRuntime(database, { maxDeliveryAttempts: 3 });
  let flaky = 2;
  rt.bus.subscribe('test.ledger.*', (m) => {
    if (m.subject === 'test.ledger.flaky' && flaky-- > 0) throw new Error('subscriber hiccup');
    seen.push({ subject: m.subject, seq: (m.data as { seq: number }).seq, id: m.messageId });
  });
  await rt.start();
});
afterAll(async () => {
  await rt.stop();
  await database.close();
});

describe('outbox relay (in-process transport)', () => {
  it('publishes effects after commit, in order per source, retrying a failing subscriber in place', async () => {
    for (let i = 1; i <= 30; i++) await rt.host.send({ type: 'ledger', id: 'flaky' }, { type: 'ledger.append', seq: i });
    await waitFor('30 publishes', () => seen.filter((s) => s.subject === 'test.ledger.flaky').length >= 30);
    const seqs = seen.filter((s) => s.subject === 'test.ledger.flaky').map((s) => s.seq);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(seen.map((s) => s.id)).size).toBe(seen.length);
    expect(seen[0]!.id).toBe('ledger/flaky@1#0');
  });

  it('delivers actor-to-actor sends through the target host with the outbox id as message id', async () => {
    for (let i = 0; i < 10; i++) await rt.host.send({ type: 'ledger', id: 'pinger' }, { type: 'ledger.ping', to: 'ponger' });
    await waitFor('10 pings applied', async () => ((await rt.host.get({ type: 'ledger', id: 'ponger' })).context as unknown as LedgerContext).entries.length === 10);
    const ponger = await rt.host.get({ type: 'ledger', id: 'ponger' });
    expect((ponger.context as unknown as LedgerContext).entries).toEqual(Array.from({ length: 10 }, () => 'pinger:0'));
    const { rows } = await database.pool.query(`SELECT message_id FROM inbox WHERE actor_id = 'ponger' ORDER BY version`);
    expect(rows.map((r) => r.message_id)).toEqual(Array.from({ length: 10 }, (_, i) => `ledger/pinger@${i + 1}#0`));
  });

  it('dead-letters a send the target refuses (reason rejected) without blocking the rest', async () => {
    await rt.host.send({ type: 'ledger', id: 'shut' }, { type: 'ledger.close' });
    await rt.host.send({ type: 'ledger', id: 'sender' }, { type: 'ledger.ping', to: 'shut' });
    await rt.host.send({ type: 'ledger', id: 'sender' }, { type: 'ledger.ping', to: 'open-target' });
    await waitFor('dead letter', async () => (await database.pool.query(`SELECT * FROM dead_letters WHERE reason = 'rejected'`)).rows[0]);
    const { rows } = await database.pool.query(`SELECT origin, reason, subject, actor_id, message_id, error FROM dead_letters WHERE reason = 'rejected'`);
    expect(rows[0]).toMatchObject({ origin: 'outbox', subject: 'concord.actor.ledger.shut', actor_id: 'sender', message_id: 'ledger/sender@1#0' });
    expect(rows[0].error).toContain('does not accept');
    await waitFor('next send delivered', async () => (await rt.host.get({ type: 'ledger', id: 'open-target' }).catch(() => null))?.version === 1);
  });

  it('reports relay lag, pending timers and dead letters in health', async () => {
    const h = await rt.health();
    expect(h.status).toBe('up');
    expect(h.database.status).toBe('up');
    expect(h.deadLetters).toBe(1);
    expect(h.partitions.owned).toEqual([0, 1, 2, 3]);
  });
});

describe('a relay that dies after delivering, before deleting the rows', () => {
  it('delivers again with the same message ids and the receivers apply each once', async () => {
    const db2 = await freshDatabase();
    let crashes = 2;
    const rt2 = await testRuntime(db2, {
      delivery: (host, bus) => {
        const inner = new InProcessDelivery(host, bus);
        return {
          async deliver(rows) {
            const outcomes = await inner.deliver(rows);
            // the crash point "after publish, before mark": delivered, but the rows stay
            if (crashes-- > 0) throw new Error('crash after publish, before mark');
            return outcomes;
          },
        };
      },
    });
    await rt2.start();
    try {
      for (let i = 0; i < 5; i++) await rt2.host.send({ type: 'ledger', id: 'src' }, { type: 'ledger.ping', to: 'dst' });
      await waitFor('outbox drained', async () => (await db2.pool.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n === 0);
      expect(crashes).toBeLessThan(0);
      const dst = await rt2.host.get({ type: 'ledger', id: 'dst' });
      expect((dst.context as unknown as LedgerContext).entries).toHaveLength(5);
      expect(dst.version).toBe(5);
    } finally {
      await rt2.stop();
      await db2.close();
    }
  });
});

describe('connector calls', () => {
  it('run independently of each other, time out as retryable failures, and answer with a time stamp', async () => {
    const db3 = await freshDatabase();
    const aborted: string[] = [];
    const connectors = new Map([
      [
        'fake',
        async (op: string, _input: unknown, ctx: { signal: AbortSignal }) => {
          if (op === 'hang') return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => (aborted.push(op), reject(new Error('aborted')))));
          if (op === 'boom') throw new ConnectorError('DECLINED', 'card declined', { retryable: false });
          return { op };
        },
      ],
    ]);
    const rt3 = await testRuntime(db3, { types: [ledgerType, callerType], connectors, env: { CONNECTOR_CALL_TIMEOUT_MS: '400' } });
    await rt3.start();
    try {
      const ref = { type: 'caller', id: 'c1' };
      await rt3.host.send(ref, { type: 'caller.call', op: 'hang' });
      await rt3.host.send(ref, { type: 'caller.call', op: 'quick' });
      await rt3.host.send(ref, { type: 'caller.call', op: 'boom' });
      const answers = await waitFor('three answers', async () => {
        const a = ((await rt3.host.get(ref)).context as { answers: Array<{ type: string; code?: string; at?: string }> }).answers;
        return a.length === 3 ? a : null;
      });
      // the hanging call did not hold up the others (which run independently, in either order): its timeout answer came last
      expect(answers[2]!.type).toBe('fake.hang.failed');
      expect(answers[2]!.code).toBe('TIMEOUT');
      expect(answers.slice(0, 2).map((a) => a.type).sort()).toEqual(['fake.boom.failed', 'fake.quick.done']);
      expect(answers.find((a) => a.type === 'fake.boom.failed')!.code).toBe('DECLINED');
      expect(aborted).toEqual(['hang']);
      expect(answers.every((a) => typeof a.at === 'string' && !Number.isNaN(Date.parse(a.at)))).toBe(true);
    } finally {
      await rt3.stop();
      await db3.close();
    }
  });
});

describe('partition leases', () => {
  it('share partitions fairly between processes and hand them over when one dies', async () => {
    const mk = (name: string, log: string[]) => {
      const owned = new Set<number>();
      const listener: LeaseListener = {
        acquired: (p) => void (owned.add(p), log.push(`${name}+${p}`)),
        releasing: async (p) => void (owned.delete(p), log.push(`${name}-${p}`)),
        lost: () => owned.clear(),
      };
      return { owned, leases: new PartitionLeases({ url: database.url, partitions: 8, rebalanceMs: 100, log: testLog, listener }) };
    };
    const log: string[] = [];
    const a = mk('a', log);
    const b = mk('b', log);
    // the relay's own lease holder in `rt` is a member too: stop it so only a and b compete
    await rt.leases.stop();
    await a.leases.start();
    expect(a.owned.size).toBe(8);
    await b.leases.start();
    await waitFor('fair share', () => a.owned.size === 4 && b.owned.size === 4, 10_000);
    expect([...a.owned].some((p) => b.owned.has(p))).toBe(false);
    // a's session dies (as with a killed process): b takes everything within a few seconds
    const pool = createPool(database.url, 1);
    await pool.query('SELECT pg_terminate_backend($1)', [a.leases.backendPid]);
    await pool.end();
    const t0 = Date.now();
    await waitFor('a drops its partitions when its session dies', () => a.owned.size === 0, 5_000);
    await a.leases.stop(); // and the process is gone: it never reconnects
    await waitFor('takeover', () => b.owned.size === 8, 10_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await b.leases.stop();
    const c = mk('c', log);
    await c.leases.start();
    expect(c.owned.size).toBe(8);
    await c.leases.stop();
  });
});

describe('a wake that comes while the relay is reading', () => {
  it('is not lost: a row committed after the read began goes out at once, not at the next poll', async () => {
    const db3 = await freshDatabase();
    // the read's answer is held back (after PostgreSQL has run it) while a row commits and wakes the relay
    let holdRead: (() => Promise<void>) | null = null;
    const pool = new Proxy(db3.pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
        return async (q: { name?: string }, ...rest: unknown[]) => {
          const res = await (target.query as (...a: unknown[]) => Promise<unknown>).call(target, q, ...rest);
          if (q?.name === 'concord_outbox_read' && holdRead) {
            const hold = holdRead;
            holdRead = null;
            await hold();
          }
          return res;
        };
      },
    });
    const delivered: number[] = [];
    const relay = new OutboxRelay({
      pool,
      delivery: { deliver: async (rows) => rows.map((r) => (delivered.push(r.id), { status: 'done' as const })) },
      log: testLog,
      batch: 16,
      pollMs: 30_000,
      maxAttempts: 3,
    });
    const insert = async () =>
      (
        await db3.pool.query<{ id: number }>(
          `INSERT INTO outbox (partition, source_type, source_id, kind, subject, message_id, payload) VALUES (0, 't', 's', 'publish', 'x', gen_random_uuid()::text, '{}') RETURNING id`,
        )
      ).rows[0]!.id;
    let late = 0;
    holdRead = async () => {
      late = await insert(); // commits after the read's snapshot: the read did not see it
      relay.wake(0); // what the committer does after such a commit
    };
    relay.acquired(0); // first read: empty, held while the row commits
    const t0 = Date.now();
    await waitFor('the late row relayed', () => late > 0 && delivered.includes(late), 5_000);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await relay.stop();
    await db3.close();
  });
});

describe('a commit in a process that does not relay its partition', () => {
  it("wakes the owner's relay through Postgres: the row goes out at once, not at the owner's next poll", async () => {
    const db4 = await freshDatabase();
    // polls 20 s apart: only a wake can get a row out within the test's time
    const env = { PARTITIONS: '4', OUTBOX_POLL_MS: '20000' };
    const a = await testRuntime(db4, { env, run: { timers: false } });
    const poolB = createPool(db4.url, 6);
    const b = await testRuntime({ ...db4, pool: poolB, close: async () => void (await poolB.end()) }, { env, run: { timers: false } });
    const got = new Map<string, number>();
    for (const r of [a, b]) r.bus.subscribe('test.ledger.*', (m) => void got.set(m.subject, Date.now()));
    await a.start();
    await b.start();
    try {
      await waitFor('a fair share', () => a.leases.owned().length === 2 && b.leases.owned().length === 2, 15_000);
      // actors whose partitions b relays, changed through a
      const ids = Array.from({ length: 40 }, (_, i) => `x${i}`).filter((id) => b.leases.owned().includes(partitionOf(`ledger/${id}`, 4))).slice(0, 5);
      expect(ids.length).toBe(5);
      for (const id of ids) {
        const t0 = Date.now();
        await a.host.send({ type: 'ledger', id }, { type: 'ledger.append', seq: 1 });
        const at = await waitFor(`${id} relayed by b`, () => got.get(`test.ledger.${id}`), 5_000, 5);
        expect(at - t0).toBeLessThan(1_000);
      }
      // and a commit in the owner itself still wakes its relay in memory, with no notify
      const own = Array.from({ length: 40 }, (_, i) => `y${i}`).find((id) => a.leases.owned().includes(partitionOf(`ledger/${id}`, 4)))!;
      await a.host.send({ type: 'ledger', id: own }, { type: 'ledger.append', seq: 1 });
      await waitFor(`${own} relayed by a`, () => got.get(`test.ledger.${own}`), 5_000, 5);
    } finally {
      await a.stop();
      await b.stop();
      await b.database.close();
      await db4.close();
    }
  });
});
