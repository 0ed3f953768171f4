import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectEvents, FAST, order, sagaHarness, startOrder, type SagaHarness } from './harness.js';

const STEPS = ['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'DELIVERY_SCHEDULING', 'NOTIFICATION_SENDING'];

describe('order fulfillment saga (embedded transport)', () => {
  let h: SagaHarness;
  let events: ReturnType<typeof collectEvents>;
  beforeAll(async () => {
    h = await sagaHarness({ env: FAST });
    events = collectEvents(h);
  });
  afterAll(async () => h?.close());

  it('happy path: four steps in order, COMPLETED, with the spec events', async () => {
    const o = order();
    const r = await startOrder(h, o);
    expect(r.created).toBe(true);
    expect(r.context.status).toBe('IN_PROGRESS');
    const ctx = await h.settle(r.workflowId, ['COMPLETED']);
    expect(ctx.steps.map((s) => [s.name, s.status])).toEqual(STEPS.map((s) => [s, 'COMPLETED']));
    expect(h.sim.ledgerOf(r.workflowId).map((a) => a.step)).toEqual(STEPS);
    const mine = events.filter((e) => e.data.workflowId === r.workflowId);
    expect(mine.map((e) => e.subject.split('.').pop())).toEqual([
      'WorkflowStartedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'WorkflowCompletedEvent',
    ]);
    expect(mine[0]!.data).toMatchObject({ workflowType: 'ORDER_FULFILLMENT', correlationId: o.orderId, metadata: { orderId: o.orderId, customerId: o.customerId } });
    expect(mine[1]!.data).toMatchObject({ stepName: 'INVENTORY_RESERVATION', status: 'SUCCESS', result: { reservationId: expect.any(String) } });
    expect(mine[5]!.data).toMatchObject({ status: 'COMPLETED', completedSteps: STEPS, duration: expect.stringMatching(/^PT/) });
  });
});
