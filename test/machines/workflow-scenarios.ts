import type { AnyStateMachine, EventObject } from 'xstate';
import type { PersistedSnapshot } from '../../runtime/registry.js';
import { step, type TimerRow } from '../../runtime/step.js';

/**
 * Scripted runs of the workflow machine through every named action (DAG release and skip,
 * manual and automated steps, replies, connector answers, timeouts, automatic and manual
 * retries, cancel with a retry pending, dependencies), recorded step by step as the runtime
 * would persist them (snapshot through JSON, timers as rows).
 */
export interface Frame {
  event: unknown;
  effects: unknown[];
  timers: TimerRow[];
  now: number;
  snapshot: PersistedSnapshot;
}

type Send = (event: (EventObject & Record<string, unknown>) | { timer: string }) => void;

const T0 = Date.parse('2026-03-01T00:00:00Z');
const step1 = (n: number, extra: Record<string, unknown> = {}) => ({ id: `s${n}`, stepNumber: n, name: `step ${n}`, description: null, estimatedDuration: null, maxRetries: null, dependencies: [], configuration: null, ...extra });

export const SCENARIOS: Record<string, (send: Send, at: () => string, advance: (ms: number) => void) => void> = {
  manualDagWithSkipFailAndRetry(send, at, advance) {
    send({
      type: 'workflow.create', name: 'dag', workflowType: 'DATA_SYNC', at: at(), by: 't', metadata: { tier: 1 },
      steps: [
        step1(1),
        step1(2, { dependencies: [1], configuration: { condition: 'workflow.metadata.tier > 1' } }),
        step1(3, { dependencies: [1] }),
        step1(4, { dependencies: [2, 3] }),
      ],
    });
    send({ type: 'workflow.start', at: at(), by: 't' });
    advance(60_000);
    send({ type: 'workflow.step.execute', stepId: 's1', at: at(), by: 't' });
    advance(60_000);
    send({ type: 'workflow.step.complete', stepId: 's1', output: { n: 1 }, at: at(), by: 't' });
    send({ type: 'workflow.step.execute', stepId: 's3', at: at(), by: 't' });
    advance(30_000);
    send({ type: 'workflow.step.fail', stepId: 's3', errorMessage: 'broken', at: at(), by: 't' });
    send({ type: 'workflow.watch', dependent: 'later' });
    advance(30_000);
    send({ type: 'workflow.step.retry', stepId: 's3', at: at(), by: 't' });
    send({ type: 'workflow.step.execute', stepId: 's3', at: at(), by: 't' });
    send({ type: 'workflow.step.complete', stepId: 's3', at: at(), by: 't' });
    send({ type: 'workflow.step.execute', stepId: 's4', at: at(), by: 't' });
    advance(90_000);
    send({ type: 'workflow.step.complete', stepId: 's4', output: 'done', at: at(), by: 't' });
    send({ type: 'workflow.watch', dependent: 'after' });
  },
  automatedRepliesTimeoutsAndRetries(send, at, advance) {
    const publishAction = { type: 'publish', subject: 'svc.keys.issue', data: { scopes: ['read'] } };
    const connector = { type: 'connector', connector: 'ops', operation: 'provision', input: { x: 1 } };
    send({
      type: 'workflow.create', name: 'auto', workflowType: 'API_ACCESS_GRANT', at: at(), by: 't', vendorId: 'v', partnerId: 'p',
      steps: [
        step1(1, { maxRetries: 1, configuration: { action: publishAction, timeoutMs: 1000, retryBackoffMs: 200 } }),
        step1(2, { dependencies: [1], maxRetries: 2, configuration: { action: connector, timeoutMs: 5000, retryBackoffMs: 100 } }),
      ],
    });
    send({ type: 'workflow.start', at: at(), by: 't' });
    advance(100);
    send({ type: 'workflow.step.reply', correlationId: 'auto:s1:1', status: 'failed', error: { message: 'denied' }, at: at() });
    advance(200);
    send({ timer: 'workflow.step.retryDue' });
    advance(1000);
    send({ timer: 'workflow.step.timeout' });
    advance(10);
    send({ type: 'workflow.step.reply', correlationId: 'auto:s1:2', status: 'succeeded', output: { late: true }, at: at() });
    send({ type: 'workflow.step.retry', stepId: 's1', at: at(), by: 'op' });
    advance(50);
    send({ type: 'workflow.step.reply', correlationId: 'auto:s1:3', status: 'succeeded', output: { keyId: 'k' }, at: at() });
    advance(20);
    send({ type: 'wfstep.s2.1.failed', error: { code: 'RATE', message: 'slow down', retryable: true }, at: at() });
    advance(100);
    send({ timer: 'workflow.step.retryDue' });
    advance(20);
    send({ type: 'wfstep.s2.2.done', output: { id: 9 }, at: at() });
  },
  cancelWithRetryPending(send, at, advance) {
    send({
      type: 'workflow.create', name: 'c', workflowType: 'DATA_SYNC', at: at(), by: 't',
      steps: [step1(1, { configuration: { action: { type: 'connector', connector: 'ops', operation: 'x' }, retryBackoffMs: 1000 } }), step1(2)],
    });
    send({ type: 'workflow.start', at: at(), by: 't' });
    send({ type: 'workflow.step.execute', stepId: 's2', at: at(), by: 't' });
    advance(10);
    send({ type: 'wfstep.s1.1.failed', error: { message: 'no' }, at: at() });
    advance(10);
    send({ type: 'workflow.cancel', reason: 'changed plans', at: at(), by: 'op' });
    send({ type: 'wfstep.s1.1.done', at: at() });
  },
  blockedOnDependencies(send, at, advance) {
    send({ type: 'workflow.create', name: 'b', workflowType: 'DATA_SYNC', dependencies: ['d1', 'd2'], at: at(), by: 't', steps: [step1(1)] });
    send({ type: 'workflow.start', at: at(), by: 't' });
    advance(1000);
    send({ type: 'workflow.dependencyCompleted', workflowId: 'd1', at: at() });
    send({ type: 'workflow.dependencyCompleted', workflowId: 'd1', at: at() });
    advance(1000);
    send({ type: 'workflow.dependencyCompleted', workflowId: 'd2', at: at() });
    send({ type: 'workflow.cancel', at: at(), by: 'op' });
  },
  dependencyFails(send, at) {
    send({ type: 'workflow.create', name: 'f', workflowType: 'DATA_SYNC', dependencies: ['d1'], at: at(), by: 't', steps: [step1(1)] });
    send({ type: 'workflow.watch', dependent: 'x', at: at() });
    send({ type: 'workflow.start', at: at(), by: 't' });
    send({ type: 'workflow.dependencyFailed', workflowId: 'd1', status: 'CANCELLED', at: at() });
    send({ type: 'workflow.dependencyCompleted', workflowId: 'd1', at: at() });
  },
};

/** The event a frame delivered, as `step` takes it (a timer by its row's key). */
export function deliveryOf(frame: Frame, timersBefore: TimerRow[]) {
  const e = frame.event as (EventObject & Record<string, unknown>) | { timer: string };
  return 'timer' in e ? { kind: 'timer' as const, key: timersBefore.find((t) => t.event.type === e.timer)!.key } : { kind: 'event' as const, event: e };
}

/** Runs one scenario against `machine` and returns every frame. */
export function record(machine: AnyStateMachine, id: string, scenario: keyof typeof SCENARIOS): Frame[] {
  let snapshot: PersistedSnapshot | null = null;
  let timers: TimerRow[] = [];
  let now = T0;
  const frames: Frame[] = [];
  const send: Send = (event) => {
    const out = step({
      machine,
      snapshot,
      input: { id, tenant: null },
      timers,
      deliver: 'timer' in event ? { kind: 'timer', key: timers.find((t) => t.event.type === event.timer)!.key } : { kind: 'event', event },
      now,
    });
    if ('rejected' in out) throw new Error(`${scenario}: ${JSON.stringify(event)} rejected in ${JSON.stringify(out.value)}`);
    snapshot = JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot;
    timers = out.timers;
    frames.push(
      JSON.parse(
        JSON.stringify({ event, effects: out.effects, timers, now, snapshot }),
      ) as Frame,
    );
  };
  SCENARIOS[scenario]!(send, () => new Date(now).toISOString(), (ms) => (now += ms));
  return frames;
}
