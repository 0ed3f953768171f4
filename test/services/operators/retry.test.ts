import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConcordError } from '../../../runtime/errors.js';
import { FAST, sagaHarness, startOrder, type SagaHarness } from '../saga/harness.js';

const op = { principal: { sub: 'op-7', role: 'operator' as const, tenantId: null }, requestId: 'req-retry', reason: 'refund service restarted' };

describe('operator retry of a saga', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await sagaHarness({ env: FAST });
  });
  afterAll(async () => h?.close());

  it('retries the failed compensation of a COMPENSATION_FAILED saga (named or not), audited; refuses another step and a saga with nothing failed', async () => {
    h.sim.configure({ failureRate: { DELIVERY_SCHEDULING: 1 }, silentAttempts: { RELEASE_INVENTORY: Infinity } });
    const r = await startOrder(h);
    await h.settle(r.workflowId, ['COMPENSATION_FAILED']);
    const ref = { type: 'saga', id: r.workflowId };

    const wrong = await h.services.operators.retry(op, ref, 'PAYMENT_PROCESSING').catch((e: unknown) => e);
    expect(isConcordError(wrong) && wrong.code).toBe('EVENT_REJECTED');
    expect((wrong as Error).message).toContain('the failed step is RELEASE_INVENTORY (compensating INVENTORY_RESERVATION)');

    h.sim.configure({ silentAttempts: {} });
    const out = await h.services.operators.retry(op, ref, 'RELEASE_INVENTORY');
    expect(out).toMatchObject({ status: 'COMPENSATING', step: { id: 'INVENTORY_RESERVATION', name: 'RELEASE_INVENTORY' }, event: 'saga.retryCompensation' });
    const done = await h.settle(r.workflowId, ['FAILED']);
    expect(done.steps[0]!.compensation).toMatchObject({ status: 'COMPLETED' });
    const { rows } = await h.runtime.database.pool.query(`SELECT subject, reason, before, after FROM audit_log WHERE object_id = $1 AND action = 'actor.retry'`, [r.workflowId]);
    expect(rows).toEqual([
      { subject: 'op-7', reason: op.reason, before: expect.objectContaining({ status: 'COMPENSATION_FAILED', step: { id: 'INVENTORY_RESERVATION', name: 'RELEASE_INVENTORY' } }), after: expect.objectContaining({ status: 'COMPENSATING' }) },
    ]);

    // FAILED now: nothing left to retry
    const none = await h.services.operators.retry(op, ref, undefined).catch((e: unknown) => e);
    expect(isConcordError(none) && none.code).toBe('EVENT_REJECTED');
    expect((none as { details: unknown }).details).toMatchObject({ currentStatus: 'FAILED' });
  });
});
