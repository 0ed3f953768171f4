import { setup } from 'xstate';
import type { ConcordEffect } from '../effects.js';
import { DEFAULT_EVENTS_ROOT } from '../lib/events.js';
import { epochMs as ms } from '../lib/time.js';
import {
  onCancel,
  onCompensated,
  onCompensationDispatch,
  onCompensationRetry,
  onCompensationTimedOut,
  onFinished,
  onInFlightSettled,
  onOperatorRetry,
  onRetry,
  onSagaTimedOut,
  onStart,
  onStepFailed,
  onStepSucceeded,
  onStepTimedOut,
} from './actions.js';
import type { SagaDefinition } from './definitions.js';
import { replyTypes } from './plan.js';
import { isReply, type Outcome } from './tx.js';
import type { SagaContext, SagaEvent, SagaStartEvent, ServiceReply } from './types.js';

/**
 * A saga (one workflow instance), built from a definition in `definitions.ts`:
 *
 * ```
 * new ─start─► running ──last step done──► completed                         (COMPLETED)
 *              │ awaiting ⇄ backoff   (step timeout: retry with backoff)
 *              ├─ *FailedEvent / out of retries / whole-saga timeout ─► compensating (COMPENSATING)
 *              └─ cancel ─► compensating (CANCELLING; the step in flight is awaited first)
 * compensating: next ─► awaiting ⇄ backoff ─► next … ─► failed (FAILED) | cancelled (CANCELLED)
 *               a compensation out of retries ─► compensationFailed (COMPENSATION_FAILED)
 *               ─ operator retry ─► compensating
 * ```
 *
 * Commands go out as `publish` effects on `<svc>.<service>.<command>` with the command id as the
 * message id, and `correlate(commandId)` routes the service's answer back here. A reply counts
 * only when its `commandId` is the current attempt's: late, duplicate and foreign replies are
 * ignored (and counted). Every wait is an `after` on a named delay, which the runtime keeps as a
 * durable timer. Time arrives in events (`at`, a service event's `timestamp`); a timer's own
 * time is the deadline it was set for, so a journal replays to the same state.
 */

const current = (ctx: SagaContext) => ctx.plan.steps[ctx.current];
const isCurrent = (ctx: SagaContext, e: SagaEvent) => isReply(e) && e.commandId === ctx.steps[ctx.current]?.commandId;
const compensationIndex = (ctx: SagaContext) => ctx.compensations[ctx.compensating];

const emptyContext = (id: string): SagaContext => ({
  workflowId: id,
  workflowType: null,
  status: 'NEW',
  correlationId: null,
  data: {},
  metadata: {},
  plan: { timeoutMs: 0, events: DEFAULT_EVENTS_ROOT, steps: [] },
  steps: [],
  current: 0,
  compensations: [],
  compensating: 0,
  startedAt: null,
  completedAt: null,
  failedAt: null,
  now: null,
  deadline: null,
  sagaDeadline: null,
  failure: null,
  cancel: null,
  ignoredReplies: 0,
  eventSeq: 0,
});

const remaining = (ctx: SagaContext, until: string | null) => Math.max(0, ms(until) - ms(ctx.now));

/** Builds the saga machine for a set of definitions (one machine runs every saga type). */
export function createSagaMachine(defs: readonly SagaDefinition[]) {
  const replies = replyTypes(defs);
  const base = setup({
    types: {
      context: {} as SagaContext,
      events: {} as SagaEvent,
      input: {} as { id: string; tenant: string | null },
      emitted: {} as ConcordEffect,
    },
  });
  const apply = (fn: (ctx: SagaContext, e: SagaEvent) => Outcome) =>
    base.enqueueActions(({ context, event, enqueue }) => {
      const out = fn(context, event);
      enqueue.assign(out.ctx);
      for (const eff of out.effects) enqueue.emit(eff);
    });
  const on = (transitions: (type: string) => unknown[]) => Object.fromEntries(replies.map((t) => [t, transitions(t)]));

  return base.extend({
    guards: {
      isStepSuccess: ({ context, event }) => isCurrent(context, event) && event.type === current(context)?.success,
      isStepFailure: ({ context, event }) => isCurrent(context, event) && event.type === current(context)?.failure,
      hasAttemptsLeft: ({ context }) => {
        const s = context.steps[context.current];
        return Boolean(s && s.attempt < current(context)!.maxAttempts);
      },
      isCompensationSuccess: ({ context, event }) => {
        const i = compensationIndex(context);
        if (i === undefined || !isReply(event)) return false;
        return event.commandId === context.steps[i]!.compensation?.commandId && event.type === context.plan.steps[i]!.compensation!.success;
      },
      compensationAttemptsLeft: ({ context }) => {
        const i = compensationIndex(context)!;
        return context.steps[i]!.compensation!.attempt < context.plan.steps[i]!.compensation!.maxAttempts;
      },
      hasCompensationLeft: ({ context }) => compensationIndex(context) !== undefined,
      isCompleted: ({ context }) => context.status === 'COMPLETED',
      isCancelling: ({ context }) => context.cancel !== null,
    },
    actions: {
      start: apply((ctx, e) => onStart(ctx, e as SagaStartEvent)),
      stepSucceeded: apply((ctx, e) => onStepSucceeded(ctx, e as ServiceReply)),
      stepFailed: apply((ctx, e) => onStepFailed(ctx, e as ServiceReply)),
      stepTimedOut: apply((ctx) => onStepTimedOut(ctx)),
      retryStep: apply((ctx) => onRetry(ctx)),
      sagaTimedOut: apply((ctx) => onSagaTimedOut(ctx)),
      cancelInFlight: apply((ctx, e) => onCancel(ctx, e as { at: string; reason: string; initiatedBy: string }, true)),
      cancelBetweenAttempts: apply((ctx, e) => onCancel(ctx, e as { at: string; reason: string; initiatedBy: string }, false)),
      inFlightSucceeded: apply((ctx, e) => onInFlightSettled(ctx, e as ServiceReply, true)),
      inFlightFailed: apply((ctx, e) => onInFlightSettled(ctx, e as ServiceReply, false)),
      inFlightUnknown: apply((ctx) => onInFlightSettled(ctx, null, false)),
      dispatchCompensation: apply((ctx) => onCompensationDispatch(ctx)),
      compensated: apply((ctx, e) => onCompensated(ctx, e as ServiceReply)),
      compensationTimedOut: apply((ctx) => onCompensationTimedOut(ctx)),
      retryCompensation: apply((ctx) => onCompensationRetry(ctx)),
      operatorRetry: apply((ctx, e) => onOperatorRetry(ctx, e as { at: string })),
      finish: apply((ctx) => onFinished(ctx)),
      ignoreReply: base.assign({ ignoredReplies: ({ context }) => context.ignoredReplies + 1 }),
    },
    delays: {
      sagaTimeout: ({ context }) => remaining(context, context.sagaDeadline),
      stepTimeout: ({ context }) => remaining(context, context.deadline),
      retryBackoff: ({ context }) => remaining(context, context.deadline),
      inFlightTimeout: ({ context }) => remaining(context, context.deadline),
      compensationTimeout: ({ context }) => remaining(context, context.deadline),
      compensationBackoff: ({ context }) => remaining(context, context.deadline),
    },
  }).createMachine({
    id: 'saga',
    context: ({ input }) => emptyContext(input.id),
    initial: 'new',
    // late, duplicate and foreign replies are accepted and ignored in every state
    on: on(() => [{ actions: 'ignoreReply' }]) as never,
    states: {
      new: {
        on: { 'saga.start': { target: 'running', actions: 'start' } },
      },
      running: {
        initial: 'awaiting',
        after: { sagaTimeout: { target: 'compensating', actions: 'sagaTimedOut' } },
        states: {
          awaiting: {
            after: {
              stepTimeout: [
                { guard: 'hasAttemptsLeft', target: 'backoff', actions: 'stepTimedOut' },
                { target: '#saga.compensating', actions: 'stepTimedOut' },
              ],
            },
            on: {
              ...(on(() => [
                { guard: 'isStepSuccess', target: 'settled', actions: 'stepSucceeded' },
                { guard: 'isStepFailure', target: '#saga.compensating', actions: 'stepFailed' },
              ]) as object),
              'saga.cancel': { target: '#saga.compensating.awaitingInFlight', actions: 'cancelInFlight' },
            },
          },
          // a step just completed: on to the next one, or done
          settled: {
            always: [{ guard: 'isCompleted', target: '#saga.completed' }, { target: 'awaiting' }],
          },
          backoff: {
            after: { retryBackoff: { target: 'awaiting', actions: 'retryStep' } },
            on: { 'saga.cancel': { target: '#saga.compensating', actions: 'cancelBetweenAttempts' } },
          },
        },
      },
      compensating: {
        initial: 'next',
        states: {
          awaitingInFlight: {
            after: { inFlightTimeout: { target: 'next', actions: 'inFlightUnknown' } },
            on: on(() => [
              { guard: 'isStepSuccess', target: 'next', actions: 'inFlightSucceeded' },
              { guard: 'isStepFailure', target: 'next', actions: 'inFlightFailed' },
            ]) as never,
          },
          next: {
            always: [
              { guard: 'hasCompensationLeft', target: 'awaiting', actions: 'dispatchCompensation' },
              { guard: 'isCancelling', target: '#saga.cancelled', actions: 'finish' },
              { target: '#saga.failed', actions: 'finish' },
            ],
          },
          awaiting: {
            after: {
              compensationTimeout: [
                { guard: 'compensationAttemptsLeft', target: 'backoff', actions: 'compensationTimedOut' },
                { target: '#saga.compensationFailed', actions: 'compensationTimedOut' },
              ],
            },
            on: on(() => [{ guard: 'isCompensationSuccess', target: 'next', actions: 'compensated' }]) as never,
          },
          backoff: {
            after: { compensationBackoff: { target: 'awaiting', actions: 'retryCompensation' } },
          },
        },
      },
      completed: {},
      failed: {},
      cancelled: {},
      compensationFailed: {
        on: { 'saga.retryCompensation': { target: 'compensating.awaiting', actions: 'operatorRetry' } },
      },
    },
  });
}
