import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../runtime/clock.js';
import { loadConfig } from '../../../runtime/config.js';
import type { Database } from '../../../runtime/db.js';
import { EventService } from '../../../services/events/service.js';
import { EventDeliveryWorker } from '../../../services/events/worker.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { testLog } from '../../helpers/runtime.js';
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

  it("an event left pending by a process that died between a delivery's outcome and the status pass is settled by any worker", async () => {
    const svc = await setup(['sw-a']);
    const ev = await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'sw-s', targetIntegrationIds: ['sw-a'], payload: { n: 1 }, eventCategory: 'ops' });
    // the outcome committed, the status pass never ran (the process died in between)
    await database.pool.query(`UPDATE event_deliveries SET status = 'delivered', delivered_at = now(), lease_until = NULL WHERE event_id = $1`, [ev.id]);
    const status = async () => (await database.pool.query<{ status: string }>(`SELECT status FROM cross_integration_events WHERE id = $1`, [ev.id])).rows[0]!.status;
    expect(await status()).toBe('pending');
    const w = new EventDeliveryWorker({ pool: database.pool, config: config(), clock: systemClock, log: testLog, statusSweepMs: 200 });
    w.start();
    try {
      await waitFor('settled by the sweep', async () => (await status()) === 'processed', 10_000);
    } finally {
      await w.stop();
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

  it('an endpoint lane starts no POST that could outlive its lease: the rest of a batch goes back for the next claim, in order', async () => {
    const svc = await setup(['gl-a', 'gl-b']);
    rx.state.behaviour = () => ({ status: 200, record: true });
    for (let n = 0; n < 8; n++) {
      for (const target of ['gl-a', 'gl-b']) {
        await svc.publish(database.pool, operator, { eventName: 'tick', sourceIntegrationId: 'gl-s', targetIntegrationIds: [target], payload: { n }, eventCategory: 'ops' });
      }
    }
    // gl-a's lanes under a lease shorter than a POST's timeout plus the margin: one POST per claim;
    // then gl-b's under the default lease: the whole batch on one claim, nothing handed back
    const run = async (target: string, env: Record<string, string>) => {
      const worker = new EventDeliveryWorker({ pool: database.pool, config: config(env), clock: systemClock, log: testLog, endpointLaneBatch: 16 });
      worker.start();
      try {
        await waitFor(`${target}: 8 delivered`, () => rx.accepted.filter((a) => a.target === target).length === 8, 20_000);
      } finally {
        await worker.stop();
      }
      expect(rx.accepted.filter((a) => a.target === target).map((a) => a.body.data.payload.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      return worker.stats;
    };
    await database.pool.query(`UPDATE event_deliveries SET next_attempt_at = now() + interval '1 hour' WHERE target_integration_id = 'gl-b'`);
    const short = await run('gl-a', { EVENT_DELIVERY_LEASE_MS: '2000', WEBHOOK_TIMEOUT_MS: '1500' });
    await database.pool.query(`UPDATE event_deliveries SET next_attempt_at = now() WHERE target_integration_id = 'gl-b'`);
    const long = await run('gl-b', {});
    expect(short.released).toBe(7 + 6 + 5 + 4 + 3 + 2 + 1); // each claim POSTed its head and handed the rest back
    expect(long.released).toBe(0);
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
