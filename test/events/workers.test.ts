import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../runtime/clock.js';
import { loadConfig } from '../../runtime/config.js';
import { createPool, type Database } from '../../runtime/db.js';
import { transaction } from '../../runtime/domain/sql.js';
import { EventService } from '../../runtime/events/service.js';
import { EventDeliveryWorker } from '../../runtime/events/worker.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { testLog } from '../helpers/runtime.js';
import { prng, receiver } from './support.js';

const operator = { sub: 'op', role: 'operator' as const, tenantId: null };
let database: Database;
let rx: Awaited<ReturnType<typeof receiver>>;
const config = (env: Record<string, string> = {}) =>
  loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', EVENT_RETRY_BACKOFF_MS: '10', EVENT_RETRY_MAX_MS: '50', EVENT_DELIVERY_POLL_MS: '10', WEBHOOK_TIMEOUT_MS: '2000', ...env }).events;

beforeAll(async () => {
  database = await freshDatabase();
  rx = await receiver();
});
afterAll(async () => {
  await rx?.close();
  await database?.close();
});

/** Holds an event's row lock from another session until `release`. */
async function holdEvent(id: string) {
  const client = await database.pool.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM cross_integration_events WHERE id = $1 FOR UPDATE', [id]);
  return {
    async release() {
      await client.query('ROLLBACK');
      client.release();
    },
  };
}

/** How many sessions of `applicationName` wait for a lock (a second waiter for a row waits behind the first). */
async function waiting(applicationName: string): Promise<number> {
  const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND cardinality(pg_blocking_pids(pid)) > 0`, [applicationName]);
  return rows[0]!.n;
}

async function setup(targets: string[]) {
  const svc = new EventService(database.pool, systemClock, config());
  for (const target of targets) {
    const r = await svc.putEndpoint(operator, target, { url: rx.url(target) });
    rx.secrets.set(target, r.endpoint.secret);
  }
  return svc;
}

describe('delivery workers', () => {
  it('two workers on one database keep order per (source, target) and deliver each event once', async () => {
    const svc = await setup(['w-a', 'w-b']);
    const rand = prng(7);
    rx.state.behaviour = ({ duplicate }) => (duplicate ? { status: 200, record: true } : rand() < 0.1 ? { status: 503, record: false } : { status: 200, record: true, delayMs: Math.floor(rand() * 5) });
    for (let n = 0; n < 100; n++) {
      for (const source of ['w-s1', 'w-s2', 'w-s3']) {
        await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: source, targetIntegrationIds: ['w-a', 'w-b'], payload: { n }, eventCategory: 'ops' });
      }
    }
    const workers = [1, 2].map(() => new EventDeliveryWorker({ pool: database.pool, config: config({ EVENT_DELIVERY_BATCH: '4' }), clock: systemClock, log: testLog }));
    workers.forEach((w) => w.start());
    try {
      await waitFor('600 deliveries', () => rx.accepted.filter((a) => a.target.startsWith('w-')).length === 600, 60_000);
      // and recorded: stopping then aborts no POST and leaves no row open for the next test's workers to claim
      const recorded = `SELECT count(*)::int AS n FROM event_deliveries WHERE target_integration_id IN ('w-a', 'w-b') AND status = 'delivered'`;
      await waitFor('600 deliveries recorded', async () => (await database.pool.query<{ n: number }>(recorded)).rows[0]!.n === 600);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    expect(workers.every((w) => w.stats.delivered > 50)).toBe(true); // both really took part
    for (const target of ['w-a', 'w-b']) {
      for (const source of ['w-s1', 'w-s2', 'w-s3']) {
        const seqs = rx.accepted.filter((a) => a.target === target && a.body.data.sourceIntegrationId === source).map((a) => a.body.data.payload.n);
        expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i));
      }
    }
  });

  it('a worker that dies after the POST but before recording it: the lease lapses and another delivers again (the receiver dedupes)', async () => {
    const svc = await setup(['z-a']);
    rx.state.behaviour = () => ({ status: 200, record: true });
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'z-s', targetIntegrationIds: ['z-a'], payload: { n: 1 }, eventCategory: 'ops' });
    const before = rx.stats.requests;
    let stuck: (() => void) | undefined;
    const dying = new EventDeliveryWorker({
      pool: database.pool,
      config: config({ EVENT_DELIVERY_LEASE_MS: '1000', EVENT_DELIVERY_BATCH: '1' }), // its one slot stays taken: it claims nothing more
      clock: systemClock,
      log: testLog,
      beforeRecord: () => new Promise<void>((r) => (stuck = r)), // the crash point: POSTed, never recorded
    });
    dying.start();
    // the crash point itself, not the receiver's request count (a late request of the previous
    // test could move that first, and the survivor would then find the event unclaimed)
    await waitFor('the first POST, never recorded', () => stuck !== undefined && rx.stats.requests > before);
    const survivor = new EventDeliveryWorker({ pool: database.pool, config: config(), clock: systemClock, log: testLog });
    survivor.start();
    try {
      await waitFor('delivered by the survivor', async () => (await svc.get(ev.id)).status === 'processed', 20_000);
      expect(rx.stats.requests - before).toBe(2); // the same webhook-id twice
      expect(rx.accepted.filter((a) => a.body.data.id === ev.id)).toHaveLength(1);
      expect((await svc.get(ev.id)).deliveries![0]).toMatchObject({ status: 'delivered', attempts: 2 });
    } finally {
      stuck?.();
      await Promise.all([dying.stop(), survivor.stop()]);
    }
  });

  it('a worker that dies while recording an outcome leaves the delivery and its event consistent: both recorded or neither', async () => {
    const svc = await setup(['cr-a']);
    rx.state.behaviour = () => ({ status: 200, record: true });
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'cr-s', targetIntegrationIds: ['cr-a'], payload: { n: 1 }, eventCategory: 'ops' });
    const before = rx.stats.requests;
    // the dying worker's own sessions, so that its death can take them with it
    const pool = createPool(database.url, 4, 'concord-dying-events');
    const dying = new EventDeliveryWorker({ pool, config: config({ EVENT_DELIVERY_LEASE_MS: '1000' }), clock: systemClock, log: testLog });
    const survivor = new EventDeliveryWorker({ pool: database.pool, config: config(), clock: systemClock, log: testLog });
    try {
      // another session holds the event row, so the worker is caught in the middle of recording
      // the outcome: what it writes without the event row commits, the rest waits
      const held = await holdEvent(ev.id);
      dying.start();
      try {
        await waitFor('the POSTed outcome being recorded, held up by the lock', async () => rx.stats.requests > before && (await waiting('concord-dying-events')) === 1);
        // the process dies there: it runs no further statement and its sessions end mid-statement
        const ended = pool.end();
        await database.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'concord-dying-events'`);
        await ended;
      } finally {
        await held.release();
      }
      // neither: the delivery is still open under its lease, as after a crash before recording
      expect(await svc.get(ev.id)).toMatchObject({ status: 'pending', deliveries: [{ status: 'pending', attempts: 1 }] });
      survivor.start();
      await waitFor('delivered by the survivor once the lease lapsed', async () => (await svc.get(ev.id)).status === 'processed', 20_000);
    } finally {
      await Promise.all([dying.stop(), survivor.stop()]);
    }
    expect((await svc.get(ev.id)).deliveries![0]).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(rx.accepted.filter((a) => a.body.data.id === ev.id)).toHaveLength(1); // the second POST was a duplicate
  });

  it('two deliveries of one event recorded at the same moment: the later one counts both', async () => {
    const svc = await setup(['tw-a', 'tw-b']);
    rx.state.behaviour = () => ({ status: 200, record: true });
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'tw-s', targetIntegrationIds: ['tw-a', 'tw-b'], payload: { n: 1 }, eventCategory: 'ops' });
    const pool = createPool(database.url, 4, 'concord-twin-events');
    const worker = new EventDeliveryWorker({ pool, config: config(), clock: systemClock, log: testLog });
    try {
      // both outcomes wait for the event row, so both statements start before either commits
      const held = await holdEvent(ev.id);
      worker.start();
      try {
        await waitFor('both outcomes waiting', async () => (await waiting('concord-twin-events')) === 2);
      } finally {
        await held.release();
      }
      await waitFor('both recorded', async () => worker.stats.delivered === 2 && (await svc.get(ev.id)).deliveries!.every((d) => d.status === 'delivered'));
    } finally {
      await worker.stop();
      await pool.end();
    }
    const after = await svc.get(ev.id);
    expect(after.status).toBe('processed');
    expect(after.processedAt).toBe([...after.deliveries!.map((d) => d.deliveredAt!)].sort().at(-1));
  });

  it('requeuing dead letters while a sibling delivery of the same event is being recorded: no deadlock, both take effect', async () => {
    const svc = await setup(['dl-a', 'dl-b']);
    let aDown = true;
    rx.state.behaviour = ({ target }) => {
      if (target === 'dl-a') return aDown ? { status: 410, record: false } : { status: 200, record: true }; // dead at once, until requeued
      if (target === 'dl-b') return { status: 200, delayMs: 500, record: true };
      return { status: 200, record: true };
    };
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'dl-s', targetIntegrationIds: ['dl-a', 'dl-b'], payload: { n: 1 }, eventCategory: 'ops' });
    const pool = createPool(database.url, 4, 'concord-sibling-events');
    const ops = createPool(database.url, 2, 'concord-requeue');
    const worker = new EventDeliveryWorker({ pool, config: config(), clock: systemClock, log: testLog });
    try {
      worker.start();
      await waitFor('dl-a dead', async () => (await svc.get(ev.id)).deliveries![0]!.status === 'dead');
      // dl-b's outcome and the requeue both wait for the event row, the outcome first
      const held = await holdEvent(ev.id);
      let requeue: Promise<{ requeued: number }> | undefined;
      try {
        await waitFor('the dl-b outcome waiting', async () => (await waiting('concord-sibling-events')) === 1);
        aDown = false;
        requeue = transaction(ops, (client) => svc.republishDead(client, operator, { targetIntegrationId: 'dl-a' }));
        await waitFor('the requeue waiting', async () => (await waiting('concord-requeue')) === 1);
      } finally {
        await held.release();
      }
      expect(await requeue).toEqual({ requeued: 1 });
      await waitFor('both delivered', async () => (await svc.get(ev.id)).status === 'processed', 10_000);
    } finally {
      await worker.stop();
      await Promise.all([pool.end(), ops.end()]);
    }
    expect(worker.stats).toMatchObject({ delivered: 2, dead: 1 });
    expect((await svc.get(ev.id)).deliveries!.map((d) => d.status)).toEqual(['delivered', 'delivered']);
  });

  it('a worker stopped mid-POST hands the claim back: the aborted attempt is not counted and the next worker delivers at once', async () => {
    const svc = await setup(['sd-a']);
    let calls = 0;
    rx.state.behaviour = ({ target }) => {
      if (target !== 'sd-a') return { status: 200, record: true };
      calls++;
      if (calls === 1) return { status: 503, record: false }; // attempt 1 of 2 fails
      if (calls === 2) return { status: 200, delayMs: 30_000, record: false }; // attempt 2, the last, hangs until the worker stops
      return { status: 200, record: true };
    };
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'sd-s', targetIntegrationIds: ['sd-a'], payload: { n: 1 }, eventCategory: 'ops' });
    // the lease is the default 60 s: only a released claim is taken again within the test
    const stopping = new EventDeliveryWorker({ pool: database.pool, config: config({ EVENT_MAX_ATTEMPTS: '2', WEBHOOK_TIMEOUT_MS: '20000' }), clock: systemClock, log: testLog });
    stopping.start();
    await waitFor('the last attempt in flight', () => calls === 2);
    await stopping.stop(); // SIGTERM: the POST is aborted
    expect(stopping.stats).toMatchObject({ retried: 1, dead: 0, released: 1 });
    expect(await svc.get(ev.id)).toMatchObject({ status: 'pending', deliveries: [{ status: 'failed', attempts: 1, lastStatusCode: 503 }] });
    const next = new EventDeliveryWorker({ pool: database.pool, config: config({ EVENT_MAX_ATTEMPTS: '2' }), clock: systemClock, log: testLog });
    next.start();
    try {
      await waitFor('delivered by the next worker', async () => (await svc.get(ev.id)).status === 'processed', 5_000);
    } finally {
      await next.stop();
    }
    expect((await svc.get(ev.id)).deliveries![0]).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(calls).toBe(3);
    expect(rx.accepted.filter((a) => a.body.data.id === ev.id)).toHaveLength(1);
  });

  it('a receiver that times out still uses up an attempt (only our own shutdown does not)', async () => {
    const svc = await setup(['to-a']);
    rx.state.behaviour = ({ target }) => (target === 'to-a' ? { status: 200, delayMs: 5_000, record: false } : { status: 200, record: true });
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'to-s', targetIntegrationIds: ['to-a'], payload: { n: 1 }, eventCategory: 'ops' });
    const worker = new EventDeliveryWorker({ pool: database.pool, config: config({ EVENT_MAX_ATTEMPTS: '1', WEBHOOK_TIMEOUT_MS: '100' }), clock: systemClock, log: testLog });
    worker.start();
    try {
      await waitFor('dead-lettered after its one attempt', async () => (await svc.get(ev.id)).status === 'failed', 5_000);
    } finally {
      await worker.stop();
    }
    expect((await svc.get(ev.id)).deliveries![0]).toMatchObject({ status: 'dead', attempts: 1, lastError: 'timed out after 100 ms (gave up after 1 attempts)' });
  });
});
