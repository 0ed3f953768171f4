import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/db.js';
import { api, prng, receiver, type Api } from './support.js';

const SOURCES = Array.from({ length: 10 }, (_, i) => `src-${i}`);
const TARGETS = ['tgt-a', 'tgt-b', 'tgt-c', 'tgt-d', 'tgt-dead'];
const PER_SOURCE = 100;

let t: Api;
let rx: Awaited<ReturnType<typeof receiver>>;
let op: string;

beforeAll(async () => {
  t = await api({
    env: { EVENT_MAX_ATTEMPTS: '6', EVENT_RETRY_BACKOFF_MS: '5', EVENT_RETRY_MAX_MS: '40', WEBHOOK_TIMEOUT_MS: '400', EVENT_DELIVERY_BATCH: '64' },
  });
  op = t.token('operator');
  rx = await receiver();
});
afterAll(async () => {
  await t?.close();
  await rx?.close();
});

describe('cross-integration event delivery over a flaky receiver', () => {
  it('1,000 events from 10 sources to 5 targets: each live target gets each event once (by webhook-id), in order per source; the dead target is dead-lettered, then republished', async () => {
    for (const target of TARGETS) {
      const r = await t.call('PUT', `/integrations/${target}/endpoint`, { token: op, body: { url: rx.url(target) } });
      expect(r.status).toBe(201);
      expect(r.body.secret).toMatch(/^whsec_/);
      rx.secrets.set(target, r.body.secret);
    }
    const rand = prng(20260301);
    let deadTargetDown = true;
    rx.state.behaviour = ({ target, duplicate }) => {
      if (target === 'tgt-dead' && deadTargetDown) return { status: 503, record: false };
      if (duplicate) return { status: 200, record: true }; // already processed: acknowledge again
      const roll = rand();
      if (roll < 0.08) return { status: 500, record: false };
      if (roll < 0.1) return { status: 429, headers: { 'retry-after': '1' }, record: false };
      if (roll < 0.12) return { status: 200, delayMs: 900, record: true }; // processed, but the answer comes after the sender's timeout
      return { status: 200, record: true };
    };

    // each source publishes its events in order; the sources run concurrently
    const ids = new Map<string, string[]>();
    await Promise.all(
      SOURCES.map(async (source) => {
        const list: string[] = [];
        for (let seq = 0; seq < PER_SOURCE; seq++) {
          const r = await t.call('POST', '/events', {
            token: op,
            body: { eventName: 'customer.updated', sourceIntegrationId: source, targetIntegrationIds: TARGETS, payload: { seq }, eventCategory: 'data_sync', priority: seq % 7 === 0 ? 'high' : 'medium' },
          });
          expect(r.status).toBe(202);
          expect(r.body.deliveries).toHaveLength(TARGETS.length);
          list.push(r.body.id);
        }
        ids.set(source, list);
      }),
    );

    const counts = async () => {
      const { rows } = await t.database.pool.query<{ target: string; status: string; n: number }>(
        `SELECT target_integration_id AS target, status, count(*)::int AS n FROM event_deliveries GROUP BY 1, 2`,
      );
      return rows;
    };
    await waitFor(
      'every live delivery delivered and every dead-target delivery dead',
      async () => {
        const rows = await counts();
        const live = rows.filter((r) => r.target !== 'tgt-dead' && r.status === 'delivered').reduce((a, r) => a + r.n, 0);
        const dead = rows.find((r) => r.target === 'tgt-dead' && r.status === 'dead')?.n ?? 0;
        return live === 4 * 1000 && dead === 1000;
      },
      180_000,
      250,
    );

    const checkTarget = (target: string) => {
      const got = rx.accepted.filter((a) => a.target === target);
      // exactly once per webhook-id (the receiver's dedupe absorbed every redelivery)
      expect(got).toHaveLength(1000);
      expect(new Set(got.map((g) => g.webhookId)).size).toBe(1000);
      // in order per source
      for (const source of SOURCES) {
        const seqs = got.filter((g) => g.body.data.sourceIntegrationId === source).map((g) => g.body.data.payload.seq);
        expect(seqs).toEqual(Array.from({ length: PER_SOURCE }, (_, i) => i));
      }
    };
    for (const target of TARGETS.slice(0, 4)) checkTarget(target);
    expect(rx.accepted.filter((a) => a.target === 'tgt-dead')).toHaveLength(0);
    expect(rx.stats.badSignatures).toBe(0);
    expect(rx.stats.duplicates).toBeGreaterThan(0); // answers lost to timeouts really were redelivered

    const sample = await t.call('GET', `/events/${ids.get('src-3')![5]}`, { token: op });
    expect(sample.body.status).toBe('failed');
    const dead = sample.body.deliveries.find((d: { targetIntegrationId: string }) => d.targetIntegrationId === 'tgt-dead');
    expect(dead).toMatchObject({ status: 'dead', attempts: 6, lastStatusCode: 503 });
    expect(dead.lastError).toContain('gave up after 6 attempts');
    const failedList = await t.call('GET', `/events?status=failed&sourceIntegrationId=src-3&limit=200`, { token: op });
    expect(failedList.body.data).toHaveLength(PER_SOURCE);

    // the dead-letter queue holds the dead target's 1,000 deliveries, oldest first
    const dlq = await t.call('GET', '/events/dead-letters?targetIntegrationId=tgt-dead&limit=200', { token: op });
    expect(dlq.body.data).toHaveLength(200);
    expect(dlq.body.data[0]).toMatchObject({ targetIntegrationId: 'tgt-dead', status: 'dead', attempts: 6 });
    const next = await t.call('GET', `/events/dead-letters?targetIntegrationId=tgt-dead&limit=200&cursor=${dlq.body.pagination.nextCursor}`, { token: op });
    expect(next.body.data[0].webhookId).not.toBe(dlq.body.data[199].webhookId);

    // the dead target comes back; an operator requeues its dead deliveries in one call
    deadTargetDown = false;
    const requeue = await t.call('POST', '/events/dead-letters/republish', { token: op, body: { targetIntegrationId: 'tgt-dead' } });
    expect(requeue.status).toBe(202);
    expect(requeue.body.requeued).toBe(1000);
    await waitFor(
      'the republished deliveries delivered',
      async () => (await counts()).every((r) => r.status === 'delivered'),
      180_000,
      250,
    );
    for (const target of TARGETS) checkTarget(target);
    const { rows } = await t.database.pool.query(`SELECT count(*)::int AS n FROM cross_integration_events WHERE status = 'processed' AND processed_at IS NOT NULL`);
    expect(rows[0].n).toBe(1000);
  }, 420_000);
});
