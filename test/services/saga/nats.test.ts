import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsNames } from '../../../runtime/nats/subjects.js';
import { workflowIdFor } from '../../../services/saga/plan.js';
import { dropPrefix, natsForTests, testPrefix } from '../../helpers/nats.js';
import { FAST, order, sagaHarness, startOrder, type SagaHarness } from './harness.js';

const nats = await natsForTests();
const STEPS = ['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'DELIVERY_SCHEDULING', 'NOTIFICATION_SENDING'];

describe.skipIf(!nats)('order fulfillment saga over NATS JetStream', () => {
  const prefix = testPrefix();
  let h: SagaHarness;
  beforeAll(async () => {
    h = await sagaHarness({ env: FAST, nats: { url: nats!.url, prefix } });
  });
  afterAll(async () => {
    await h?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('completes end to end; every command is on the service stream with Nats-Msg-Id = commandId; Concord\u2019s events on <prefix>.events', async () => {
    const r = await startOrder(h);
    await h.settle(r.workflowId, ['COMPLETED'], 30_000);
    expect(h.sim.ledgerOf(r.workflowId).map((a) => a.step)).toEqual(STEPS);
    const jsm = await jetstreamManager(h.nc!);
    const names = natsNames(prefix);
    const seen: Array<{ subject: string; msgId: string | undefined; commandId: string }> = [];
    const info = await jsm.streams.info(names.serviceStream);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(names.serviceStream, { seq }).catch(() => null);
      if (!m || m.subject.includes('.events.')) continue;
      const data = m.json<{ commandId: string; workflowId: string }>();
      if (data.workflowId === r.workflowId) seen.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), commandId: data.commandId });
    }
    expect(seen.map((s) => s.subject)).toEqual([`${prefix}svc.inventory.reserve`, `${prefix}svc.payment.process`, `${prefix}svc.delivery.schedule`, `${prefix}svc.notification.send`]);
    for (const s of seen) expect(s.msgId).toBe(s.commandId);
    const events = await jsm.streams.info(names.eventsStream, { subjects_filter: `${prefix}.events.>` });
    expect(Object.keys(events.state.subjects ?? {})).toEqual(expect.arrayContaining([`${prefix}.events.WorkflowStartedEvent`, `${prefix}.events.SagaStepCompletedEvent`, `${prefix}.events.WorkflowCompletedEvent`]));
  });

  it('a declined payment compensates the reservation over NATS; WorkflowFailedEvent is published', async () => {
    h.sim.configure({ failureRate: { PAYMENT_PROCESSING: 1 } });
    const r = await startOrder(h);
    const ctx = await h.settle(r.workflowId, ['FAILED'], 30_000);
    h.sim.configure({ failureRate: {} });
    expect(ctx.steps.map((s) => s.status)).toEqual(['COMPENSATED', 'FAILED', 'PENDING', 'PENDING']);
    expect(h.sim.ledgerOf(r.workflowId).map((a) => a.step)).toEqual(['INVENTORY_RESERVATION', 'PAYMENT_PROCESSING', 'RELEASE_INVENTORY']);
    const jsm = await jetstreamManager(h.nc!);
    const last = await jsm.streams.getMessage(natsNames(prefix).eventsStream, { last_by_subj: `${prefix}.events.WorkflowFailedEvent` });
    expect(last!.json()).toMatchObject({ workflowId: r.workflowId, failedStep: 'PAYMENT_PROCESSING', error: { code: 'PAYMENT_DECLINED' }, compensationSteps: ['RELEASE_INVENTORY'] });
  });

  it('an OrderCreatedEvent on JetStream starts the saga once per orderId, even published twice', async () => {
    const o = order();
    const js = jetstream(h.nc!);
    const subject = `${prefix}svc.events.OrderCreatedEvent`;
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const e1 = { ...o, eventId: randomUUID() };
    const e2 = { ...o, eventId: randomUUID() };
    await js.publish(subject, enc(e1), { msgID: e1.eventId });
    await js.publish(subject, enc(e2), { msgID: e2.eventId });
    const workflowId = workflowIdFor('ORDER_FULFILLMENT', o.orderId);
    const ctx = await h.settle(workflowId, ['COMPLETED'], 30_000);
    expect(ctx.data).toMatchObject({ orderId: o.orderId, customerId: o.customerId, amount: 59.98 });
    expect(h.sim.ledgerOf(workflowId).map((a) => a.step)).toEqual(STEPS);
    const history = await h.runtime.host.history({ type: 'saga', id: workflowId });
    expect(history.filter((e) => e.event.type === 'saga.start')).toHaveLength(1);
    expect(h.sim.audit().appliedTwice).toEqual([]);
  });
});
