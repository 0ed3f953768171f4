import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isConcordError } from '../../../runtime/errors.js';
import { orderData } from '../../../services/saga/order.js';
import { waitFor } from '../../helpers/db.js';
import { collectEvents, FAST, order, sagaHarness, startOrder, type SagaHarness } from './harness.js';

const STEPS = ['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'DELIVERY_SCHEDULING', 'NOTIFICATION_SENDING'];
const COMPENSATION_OF: Record<string, string> = { INVENTORY_RESERVATION: 'RELEASE_INVENTORY', PAYMENT_PROCESSING: 'REFUND_PAYMENT', DELIVERY_SCHEDULING: 'CANCEL_DELIVERY' };
const name = (subject: string) => subject.slice(subject.lastIndexOf('.') + 1);

describe('order fulfillment saga (embedded transport)', () => {
  let h: SagaHarness;
  let events: ReturnType<typeof collectEvents>;
  beforeAll(async () => {
    h = await sagaHarness({ env: FAST });
    events = collectEvents(h);
  });
  afterAll(async () => h?.close());
  beforeEach(() => h.sim.configure({ latencyMs: 0, failureRate: {}, silentAttempts: {} }));

  const compensationsRun = (workflowId: string) => h.sim.ledgerOf(workflowId).filter((a) => a.compensates).map((a) => a.step);
  const eventsOf = (workflowId: string) => events.filter((e) => e.data.workflowId === workflowId);
  // a saga's events leave through the outbox after the commit that `settle` saw: wait for them
  const eventsArrived = (workflowId: string, n: number) =>
    waitFor(`${n} events of ${workflowId}`, () => (eventsOf(workflowId).length >= n ? eventsOf(workflowId) : null));
  const eventNamed = (workflowId: string, event: string) =>
    waitFor(`${event} of ${workflowId}`, () => eventsOf(workflowId).find((e) => name(e.subject) === event));
  const waitStep = (workflowId: string, step: string) => h.settle(workflowId, ['IN_PROGRESS']).then(async () => {
    for (let i = 0; i < 400; i++) {
      const ctx = await h.sagas.context(workflowId);
      const s = ctx.steps[ctx.current];
      if (s?.name === step && s.status === 'IN_PROGRESS') return ctx;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`${workflowId} never reached ${step}`);
  });

  it('happy path: four steps in order, COMPLETED, with the spec events', async () => {
    const o = order();
    const r = await startOrder(h, o);
    expect(r.created).toBe(true);
    expect(r.context.status).toBe('IN_PROGRESS');
    const ctx = await h.settle(r.workflowId, ['COMPLETED']);
    expect(ctx.steps.map((s) => [s.name, s.status])).toEqual(STEPS.map((s) => [s, 'COMPLETED']));
    expect(h.sim.ledgerOf(r.workflowId).map((a) => a.step)).toEqual(STEPS);
    const mine = await eventsArrived(r.workflowId, 6);
    expect(mine.map((e) => name(e.subject))).toEqual([
      'WorkflowStartedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'SagaStepCompletedEvent',
      'WorkflowCompletedEvent',
    ]);
    expect(mine[0]!.data).toEqual({
      eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      workflowId: r.workflowId,
      workflowType: 'ORDER_FULFILLMENT',
      correlationId: o.orderId,
      metadata: { orderId: o.orderId, customerId: o.customerId },
      timestamp: expect.any(String),
    });
    expect(mine[1]!.data).toMatchObject({ stepName: 'INVENTORY_RESERVATION', status: 'SUCCESS', duration: expect.stringMatching(/^PT/), result: { reservationId: expect.any(String) } });
    expect(mine[5]!.data).toMatchObject({ workflowType: 'ORDER_FULFILLMENT', status: 'COMPLETED', completedSteps: STEPS, duration: expect.stringMatching(/^PT/) });
    // the payment command carried what the step needs: the order total and the reservation
    const payment = h.sim.ledgerOf(r.workflowId)[1]!;
    expect(payment.commandId).toBe(`${r.workflowId}:PAYMENT_PROCESSING:1`);
    expect((await h.runtime.host.verifyReplay({ type: 'saga', id: r.workflowId })).matches).toBe(true);
  });

  it('a repeated start for the same orderId returns the existing workflow', async () => {
    const o = order();
    const a = await startOrder(h, o);
    const b = await startOrder(h, o);
    expect(b.workflowId).toBe(a.workflowId);
    expect(b.created).toBe(false);
    await h.settle(a.workflowId, ['COMPLETED']);
    const c = await startOrder(h, o);
    expect(c).toMatchObject({ workflowId: a.workflowId, created: false });
    expect(c.context.status).toBe('COMPLETED');
    expect(h.sim.ledgerOf(a.workflowId).filter((x) => x.step === 'INVENTORY_RESERVATION')).toHaveLength(1);
  });

  for (const [i, failing] of ['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'DELIVERY_SCHEDULING'].entries()) {
    it(`${failing} failing: not retried; compensations of exactly the completed steps, in reverse order; FAILED`, async () => {
      h.sim.configure({ failureRate: { [failing]: 1 } });
      const r = await startOrder(h);
      const ctx = await h.settle(r.workflowId, ['FAILED']);
      const completed = STEPS.slice(0, i);
      const expected = completed.map((s) => COMPENSATION_OF[s]!).reverse();
      expect(compensationsRun(r.workflowId)).toEqual(expected);
      expect(h.sim.ledgerOf(r.workflowId).filter((a) => a.step === failing)).toHaveLength(1); // a business failure is not retried
      expect(ctx.steps.map((s) => s.status)).toEqual([...completed.map(() => 'COMPENSATED'), 'FAILED', ...STEPS.slice(i + 1).map(() => 'PENDING')]);
      const failed = await eventNamed(r.workflowId, 'WorkflowFailedEvent');
      expect(failed.data).toMatchObject({ workflowType: 'ORDER_FULFILLMENT', failedStep: failing, compensationSteps: expected, error: { code: expect.any(String), message: expect.any(String), details: expect.any(Object) } });
      if (failing === 'PAYMENT_PROCESSING') expect(failed.data.error).toMatchObject({ code: 'PAYMENT_DECLINED', message: 'Insufficient funds' });
      expect(h.sim.audit().compensationOfFailedStep.filter((a) => a.workflowId === r.workflowId)).toEqual([]);
    });
  }

  it('a step with no reply is retried by its policy (3 attempts, backoff), then compensated', async () => {
    h.sim.configure({ silentAttempts: { PAYMENT_PROCESSING: Infinity } });
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['FAILED']);
    const pay = ctx.steps[1]!;
    expect(pay).toMatchObject({ status: 'COMPENSATED', attempt: 3, error: { code: 'STEP_TIMEOUT' } });
    expect(pay.commandIds).toEqual([1, 2, 3].map((n) => `${r.workflowId}:PAYMENT_PROCESSING:${n}`));
    // outcome unknown: the payment is refunded too, then the reservation released
    expect(compensationsRun(r.workflowId)).toEqual(['REFUND_PAYMENT', 'RELEASE_INVENTORY']);
    const journal = await h.runtime.host.history({ type: 'saga', id: r.workflowId });
    const fired = journal.filter((j) => j.kind === 'timer').map((j) => j.event.type);
    expect(fired.filter((t) => t.includes('stepTimeout'))).toHaveLength(3);
    expect(fired.filter((t) => t.includes('retryBackoff'))).toHaveLength(2);
    const at = (v: number) => Date.parse(String(journal.find((j) => j.version === v)!.at));
    const backoffs = journal.filter((j) => j.event.type.includes('retryBackoff')).map((j) => at(j.version) - at(j.version - 1));
    expect(backoffs[0]).toBeGreaterThanOrEqual(45); // 50 ms, then doubled
    expect(backoffs[1]).toBeGreaterThanOrEqual(95);
    expect((await h.runtime.host.verifyReplay({ type: 'saga', id: r.workflowId })).matches).toBe(true); // timers replay too
  });

  it('a timeout then an answer on the retry completes the saga', async () => {
    h.sim.configure({ silentAttempts: { DELIVERY_SCHEDULING: 1 } });
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['COMPLETED']);
    expect(ctx.steps[2]).toMatchObject({ status: 'COMPLETED', attempt: 2 });
    expect(compensationsRun(r.workflowId)).toEqual([]);
  });

  it('a service that never answers a compensation: COMPENSATION_FAILED, visible, and an operator retry finishes it', async () => {
    h.sim.configure({ failureRate: { DELIVERY_SCHEDULING: 1 }, silentAttempts: { RELEASE_INVENTORY: Infinity } });
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['COMPENSATION_FAILED']);
    expect(ctx.steps[0]!.compensation).toMatchObject({ status: 'FAILED', attempt: 3 }); // 1 + SAGA_COMPENSATION_MAX_RETRIES (2)
    expect(ctx.steps[1]!.status).toBe('COMPENSATED');
    const view = await h.sagas.status(r.workflowId);
    expect(view).toMatchObject({ status: 'COMPENSATION_FAILED', currentStep: 'RELEASE_INVENTORY', compensationSteps: ['RELEASE_INVENTORY'] });
    expect((await h.sagas.active(0, 200)).content.map((c) => c.workflowId)).toContain(r.workflowId);
    h.sim.configure({ silentAttempts: {} });
    await h.sagas.retryCompensation(r.workflowId, 'op-1');
    const done = await h.settle(r.workflowId, ['FAILED']);
    expect(done.steps.map((s) => s.status)).toEqual(['COMPENSATED', 'COMPENSATED', 'FAILED', 'PENDING']);
  });

  const cancelCases: Array<[string, string[]]> = [
    ['INVENTORY_RESERVATION', ['RELEASE_INVENTORY']],
    ['PAYMENT_PROCESSING', ['REFUND_PAYMENT', 'RELEASE_INVENTORY']],
    ['DELIVERY_SCHEDULING', ['CANCEL_DELIVERY', 'REFUND_PAYMENT', 'RELEASE_INVENTORY']],
    ['NOTIFICATION_SENDING', ['CANCEL_DELIVERY', 'REFUND_PAYMENT', 'RELEASE_INVENTORY']],
  ];
  for (const [step, expected] of cancelCases) {
    it(`cancel during ${step}: CANCELLING with ${expected.join(', ')}; the step in flight is awaited and compensated when its outcome is unknown; CANCELLED`, async () => {
      h.sim.configure({ silentAttempts: { [step]: Infinity } });
      const r = await startOrder(h);
      await waitStep(r.workflowId, step);
      const res = await h.sagas.cancel(r.workflowId, { reason: 'Customer requested cancellation', initiatedBy: 'CUSTOMER' });
      expect(res).toEqual({ workflowId: r.workflowId, status: 'CANCELLING', compensationSteps: expected });
      const ctx = await h.settle(r.workflowId, ['CANCELLED']);
      expect(compensationsRun(r.workflowId)).toEqual(expected);
      expect(ctx.cancel).toMatchObject({ reason: 'Customer requested cancellation', initiatedBy: 'CUSTOMER' });
      const failed = await eventNamed(r.workflowId, 'WorkflowFailedEvent');
      expect(failed.data).toMatchObject({ failedStep: step, error: { code: 'WORKFLOW_CANCELLED' }, compensationSteps: expected });
    });
  }

  it('cancel while a step is in flight that then succeeds: it is compensated; one that then fails is not', async () => {
    h.sim.configure({ latencyMs: 150 });
    const ok = await startOrder(h);
    await waitStep(ok.workflowId, 'PAYMENT_PROCESSING');
    await h.sagas.cancel(ok.workflowId, { reason: 'changed my mind', initiatedBy: 'CUSTOMER' });
    const a = await h.settle(ok.workflowId, ['CANCELLED']);
    expect(a.steps[1]).toMatchObject({ status: 'COMPENSATED', result: { paymentId: expect.any(String) } });
    expect(compensationsRun(ok.workflowId)).toEqual(['REFUND_PAYMENT', 'RELEASE_INVENTORY']);

    h.sim.configure({ latencyMs: 150, failureRate: { PAYMENT_PROCESSING: 1 } });
    const ko = await startOrder(h);
    await waitStep(ko.workflowId, 'PAYMENT_PROCESSING');
    const res = await h.sagas.cancel(ko.workflowId, { reason: 'changed my mind', initiatedBy: 'CUSTOMER' });
    expect(res.compensationSteps).toEqual(['REFUND_PAYMENT', 'RELEASE_INVENTORY']);
    const b = await h.settle(ko.workflowId, ['CANCELLED']);
    expect(b.steps[1]!.status).toBe('FAILED');
    expect(compensationsRun(ko.workflowId)).toEqual(['RELEASE_INVENTORY']);
  });

  it('cancel of a finished saga is rejected (409 at the edge); cancel of an unknown one is not found', async () => {
    const r = await startOrder(h);
    await h.settle(r.workflowId, ['COMPLETED']);
    const err = await h.sagas.cancel(r.workflowId, { reason: 'too late', initiatedBy: 'CUSTOMER' }).catch((e: unknown) => e);
    expect(isConcordError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EVENT_REJECTED', details: { currentStatus: 'COMPLETED' } });
    await expect(h.sagas.cancel(randomUUID(), { reason: 'x', initiatedBy: 'CUSTOMER' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('duplicate and late replies are ignored: redelivered command, repeated event, reply for an old attempt', async () => {
    h.sim.configure({ silentAttempts: { PAYMENT_PROCESSING: 1 } });
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['COMPLETED']);
    const ledger = h.sim.ledgerOf(r.workflowId);
    const before = (await h.runtime.host.get({ type: 'saga', id: r.workflowId })).version;
    const bus = h.runtime.bus;
    const prefix = h.servicePrefix;
    // a command delivered again: the simulator answers with its first answer, applies nothing
    const dupCommand = { commandId: `${r.workflowId}:INVENTORY_RESERVATION:1`, workflowId: r.workflowId, step: 'INVENTORY_RESERVATION', attempt: 1 };
    const dupBefore = h.sim.duplicates;
    await bus.publish({ subject: `${prefix}.inventory.reserve`, data: dupCommand, headers: {}, messageId: dupCommand.commandId });
    expect(h.sim.duplicates).toBe(dupBefore + 1);
    expect(h.sim.applications.get(dupCommand.commandId)).toBe(1);
    // the same event twice (same eventId): applied once by the inbox, nothing changes
    const late = { type: 'PaymentProcessedEvent', eventId: randomUUID(), workflowId: r.workflowId, commandId: `${r.workflowId}:PAYMENT_PROCESSING:1`, paymentId: 'late-payment' };
    await bus.publish({ subject: `${prefix}.events.PaymentProcessedEvent`, data: late, headers: {}, messageId: late.eventId });
    await bus.publish({ subject: `${prefix}.events.PaymentProcessedEvent`, data: late, headers: {}, messageId: late.eventId });
    const after = await h.sagas.context(r.workflowId);
    expect(after.status).toBe('COMPLETED');
    expect(after.steps[1]!.result).toEqual(ctx.steps[1]!.result); // the late answer for attempt 1 changed nothing
    expect(after.ignoredReplies).toBe(ctx.ignoredReplies + 1); // once: the repeat was deduped
    // the re-answered inventory reply carried its first eventId (deduped by the inbox); only the late payment was applied
    expect((await h.runtime.host.get({ type: 'saga', id: r.workflowId })).version).toBe(before + 1);
    expect(h.sim.ledgerOf(r.workflowId)).toEqual(ledger);
    expect(h.sim.audit().appliedTwice).toEqual([]);
  });

  it('late reply while the retry is in flight is ignored: the retry decides', async () => {
    h.sim.configure({ silentAttempts: { INVENTORY_RESERVATION: 1 }, latencyMs: 200 });
    const r = await startOrder(h);
    // wait for attempt 2 to be sent, then answer attempt 1 late with a failure
    for (let i = 0; i < 200; i++) {
      const c = await h.sagas.context(r.workflowId);
      if (c.steps[0]!.attempt === 2) break;
      await new Promise((res) => setTimeout(res, 10));
    }
    const late = { type: 'InventoryReservationFailedEvent', eventId: randomUUID(), workflowId: r.workflowId, commandId: `${r.workflowId}:INVENTORY_RESERVATION:1`, error: { code: 'OUT_OF_STOCK', message: 'late', details: {} } };
    await h.runtime.bus.publish({ subject: `${h.servicePrefix}.events.InventoryReservationFailedEvent`, data: late, headers: {}, messageId: late.eventId });
    const ctx = await h.settle(r.workflowId, ['COMPLETED']);
    expect(ctx.ignoredReplies).toBe(1);
    expect(ctx.steps[0]).toMatchObject({ status: 'COMPLETED', attempt: 2 });
  });

  it('RETURN_PROCESSING and INVENTORY_REPLENISHMENT run from their definitions alone', async () => {
    const ret = await h.sagas.start('RETURN_PROCESSING', { returnId: `ret-${randomUUID()}`, orderId: 'o-1', customerId: 'c-1', items: [{ productId: 'p', quantity: 1, price: 5 }], paymentId: 'pay-1', amount: 5 });
    const rep = await h.sagas.start('INVENTORY_REPLENISHMENT', { replenishmentId: `rep-${randomUUID()}`, supplierId: 's-1', items: [{ productId: 'p', quantity: 100, price: 1 }], amount: 100 });
    const a = await h.settle(ret.workflowId, ['COMPLETED']);
    const b = await h.settle(rep.workflowId, ['COMPLETED']);
    expect(a.steps.map((s) => s.name)).toEqual(['RETURN_PICKUP', 'INVENTORY_RESTOCK', 'REFUND_ISSUING', 'NOTIFICATION_SENDING']);
    expect(b.steps.map((s) => s.name)).toEqual(['SUPPLIER_PAYMENT', 'INBOUND_DELIVERY', 'STOCK_RECEIPT', 'NOTIFICATION_SENDING']);
    h.sim.configure({ failureRate: { STOCK_RECEIPT: 1 } });
    const rep2 = await h.sagas.start('INVENTORY_REPLENISHMENT', { replenishmentId: `rep-${randomUUID()}`, supplierId: 's-1', items: [], amount: 1 });
    await h.settle(rep2.workflowId, ['FAILED']);
    expect(compensationsRun(rep2.workflowId)).toEqual(['CANCEL_DELIVERY', 'REFUND_PAYMENT']);
    expect((await h.sagas.metrics()).workflowsByType).toMatchObject({ ORDER_FULFILLMENT: expect.any(Number), RETURN_PROCESSING: 0, INVENTORY_REPLENISHMENT: 0 });
  });

  it('starts from an OrderCreatedEvent, once per orderId', async () => {
    const o = order();
    const ev = { ...o, eventId: randomUUID() };
    await h.runtime.bus.publish({ subject: `${h.servicePrefix}.events.OrderCreatedEvent`, data: ev, headers: {}, messageId: ev.eventId });
    await h.runtime.bus.publish({ subject: `${h.servicePrefix}.events.OrderCreatedEvent`, data: { ...ev, eventId: randomUUID() }, headers: {}, messageId: 'again' });
    const r = await startOrder(h, o); // the same order through the API: the same workflow
    expect(r.created).toBe(false);
    await h.settle(r.workflowId, ['COMPLETED']);
    expect(h.sim.ledgerOf(r.workflowId).map((a) => a.step)).toEqual(STEPS);
    expect(orderData(o).amount).toBe(59.98);
  });
});

describe('the whole-saga timeout', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await sagaHarness({ env: { ...FAST, SAGA_ORDER_TIMEOUT: 'PT0.3S', SAGA_STEP_TIMEOUTS: 'PAYMENT_PROCESSING=PT5S' }, behavior: { silentAttempts: { PAYMENT_PROCESSING: Infinity } } });
  });
  afterAll(async () => h?.close());

  it('a saga past its deadline fails with WORKFLOW_TIMEOUT and compensates', async () => {
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['FAILED']);
    expect(ctx.failure).toMatchObject({ step: 'PAYMENT_PROCESSING', error: { code: 'WORKFLOW_TIMEOUT' } });
    expect(h.sim.ledgerOf(r.workflowId).filter((a) => a.compensates).map((a) => a.step)).toEqual(['REFUND_PAYMENT', 'RELEASE_INVENTORY']);
  });
});
