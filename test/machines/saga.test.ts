import { createActor, type EventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import { backoffMs, formatDuration, parseDuration, planSaga, replyTypes, sagaMachine, uuidFrom, type SagaContext } from '../../machines/saga/index.js';
import { ORDER_FULFILLMENT, SAGA_DEFINITIONS } from '../../machines/saga/definitions.js';
import { loadConfig } from '../../runtime/config.js';
import { planFor } from '../../services/saga/plan.js';
import { replay } from '../../runtime/step.js';

const NULL_CLOCK = { setTimeout: () => 0, clearTimeout: () => undefined } as never;
const plan = planSaga(ORDER_FULFILLMENT, { services: 'svc', events: 'concord.events' });
const start = { type: 'saga.start', at: '2024-01-15T10:00:00.000Z', workflowType: 'ORDER_FULFILLMENT', correlationId: 'o-1', data: { orderId: 'o-1', customerId: 'c-1', items: [], amount: 10 }, metadata: { orderId: 'o-1' }, plan };

/** Runs events through the machine, round-tripping the persisted snapshot through JSON between each (as jsonb does). */
function run(events: EventObject[]) {
  let snapshot: unknown = null;
  const emitted: Array<{ type: string; subject?: string; data?: Record<string, unknown> }> = [];
  for (const e of events) {
    const actor = createActor(sagaMachine, { input: { id: 'wf-1', tenant: null }, ...(snapshot ? { snapshot: snapshot as never } : {}), clock: NULL_CLOCK });
    actor.on('*', (x) => void emitted.push(x as never));
    actor.start();
    actor.send(e as never);
    snapshot = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();
  }
  const s = snapshot as { value: unknown; context: SagaContext };
  return { value: s.value, ctx: s.context, emitted };
}

const reply = (type: string, step: string, attempt = 1, extra: Record<string, unknown> = {}) => ({ type, eventId: `${step}-${attempt}-${type}`, commandId: `wf-1:${step}:${attempt}`, timestamp: '2024-01-15T10:00:05Z', ...extra });

describe('saga machine (pure)', () => {
  it('ISO durations both ways; backoff doubles from 1 s up to 30 s', () => {
    expect(parseDuration('PT1M')).toBe(60_000);
    expect(parseDuration('PT2M30S')).toBe(150_000);
    expect(parseDuration('PT0.05S')).toBe(50);
    expect(parseDuration('P1DT1H')).toBe(90_000_000);
    expect(() => parseDuration('1m')).toThrow();
    expect(formatDuration(150_000)).toBe('PT2M30S');
    expect(formatDuration(180_000)).toBe('PT3M');
    expect(formatDuration(5_000)).toBe('PT5S');
    const b = plan.steps[0]!.backoff;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(b, n))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('the spec\u2019s numbers are the defaults: inventory PT1M, payment PT2M, order PT10M, 3 attempts, compensation PT5M x (1 + 5)', () => {
    expect(plan.timeoutMs).toBe(600_000);
    expect(plan.steps.map((s) => [s.name, s.timeoutMs, s.maxAttempts])).toEqual([
      ['INVENTORY_RESERVATION', 60_000, 3],
      ['PAYMENT_PROCESSING', 120_000, 3],
      ['DELIVERY_SCHEDULING', 120_000, 3],
      ['NOTIFICATION_SENDING', 60_000, 3],
    ]);
    expect(plan.steps[0]!.compensation).toMatchObject({ name: 'RELEASE_INVENTORY', subject: 'svc.inventory.release', timeoutMs: 300_000, maxAttempts: 6 });
  });

  it('configuration overrides timeouts and retries; bad durations are refused', () => {
    const config = loadConfig({ SAGA_ORDER_TIMEOUT: 'PT20M', SAGA_STEP_TIMEOUTS: 'PAYMENT_PROCESSING=PT30S', SAGA_RETRY_MAX_ATTEMPTS: '5', SAGA_COMPENSATION_MAX_RETRIES: '2', SAGA_SERVICE_PREFIX: 'shop.svc' });
    const p = planFor(config, 'ORDER_FULFILLMENT');
    expect(p.timeoutMs).toBe(1_200_000);
    expect(p.steps[1]).toMatchObject({ timeoutMs: 30_000, maxAttempts: 5, subject: 'shop.svc.payment.process' });
    expect(p.steps[0]!.timeoutMs).toBe(60_000);
    expect(p.steps[0]!.compensation!.maxAttempts).toBe(3);
    expect(() => loadConfig({ SAGA_ORDER_TIMEOUT: '10 minutes' })).toThrow(/SAGA_ORDER_TIMEOUT/);
    expect(() => loadConfig({ SAGA_STEP_TIMEOUTS: 'PAYMENT_PROCESSING' })).toThrow(/SAGA_STEP_TIMEOUTS/);
  });

  it('commands carry commandId, workflowId, orderId, attempt and the step\u2019s data; the message id is the commandId; replies are correlated', () => {
    const { emitted, ctx } = run([start as never, reply('InventoryReservedEvent', 'INVENTORY_RESERVATION', 1, { reservationId: 'r-1' }) as never]);
    const correlations = emitted.filter((e) => e.type === 'concord.correlate').map((e) => (e as unknown as { id: string }).id);
    expect(correlations).toEqual(['wf-1:INVENTORY_RESERVATION:1', 'wf-1:PAYMENT_PROCESSING:1']);
    const pay = emitted.find((e) => e.subject === 'svc.payment.process')!;
    expect(pay).toMatchObject({ messageId: 'wf-1:PAYMENT_PROCESSING:1', data: { commandId: 'wf-1:PAYMENT_PROCESSING:1', workflowId: 'wf-1', orderId: 'o-1', attempt: 1, customerId: 'c-1', amount: 10, reservationId: 'r-1' } });
    expect(ctx.steps[0]).toMatchObject({ status: 'COMPLETED', result: { reservationId: 'r-1' }, startedAt: '2024-01-15T10:00:00.000Z', completedAt: '2024-01-15T10:00:05.000Z' });
  });

  it('a reply for another command, or of a type the step does not expect, settles nothing', () => {
    const { value, ctx } = run([
      start as never,
      reply('PaymentProcessedEvent', 'INVENTORY_RESERVATION') as never, // right command, wrong event type
      reply('InventoryReservedEvent', 'INVENTORY_RESERVATION', 2) as never, // an attempt never sent
    ]);
    expect(value).toEqual({ running: 'awaiting' });
    expect(ctx.ignoredReplies).toBe(2);
    expect(ctx.steps[0]!.status).toBe('IN_PROGRESS');
  });

  it('a step timeout fires as the deadline it was set for; the timers are durable named delays', () => {
    const actor = createActor(sagaMachine, { input: { id: 'wf-1', tenant: null }, clock: NULL_CLOCK });
    actor.start();
    actor.send(start as never);
    const scheduled = Object.values((actor.system as unknown as { getSnapshot(): { _scheduledEvents: Record<string, { event: EventObject; delay: number }> } }).getSnapshot()._scheduledEvents);
    expect(scheduled.map((s) => [s.event.type, s.delay]).sort()).toEqual([
      ['xstate.after.sagaTimeout.saga.running', 600_000],
      ['xstate.after.stepTimeout.saga.running.awaiting', 60_000],
    ]);
    actor.stop();
  });

  it('every reply type of every definition is heard in every state; event ids are deterministic', () => {
    expect(replyTypes(Object.values(SAGA_DEFINITIONS))).toEqual(expect.arrayContaining(['InventoryReservedEvent', 'PaymentFailedEvent', 'DeliveryCancelledEvent', 'PickupScheduledEvent', 'InventoryDeductedEvent']));
    expect(uuidFrom('a')).toBe(uuidFrom('a'));
    expect(uuidFrom('a')).not.toBe(uuidFrom('b'));
    expect(uuidFrom('x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('replaying the journal gives the same state (the machine is pure)', () => {
    const events = [
      start,
      reply('InventoryReservedEvent', 'INVENTORY_RESERVATION', 1, { reservationId: 'r-1' }),
      reply('PaymentFailedEvent', 'PAYMENT_PROCESSING', 1, { error: { code: 'PAYMENT_DECLINED', message: 'Insufficient funds', details: {} } }),
      reply('InventoryReleasedEvent', 'RELEASE_INVENTORY'),
    ];
    const once = run(events as never);
    expect(once.value).toBe('failed');
    const again = replay(sagaMachine, { id: 'wf-1', tenant: null }, events.map((event) => ({ event: event as EventObject, targetPath: '' })));
    expect(again.context).toEqual(once.ctx);
  });
});
