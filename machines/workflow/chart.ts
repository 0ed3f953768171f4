import { and, setup } from 'xstate';
import type { ConcordEffect } from '../effects.js';
import { aStepFailedForGood, allStepsDone, hasRetriesLeft } from '../steps/index.js';
import * as act from './actions.js';
import { draftFor, type Draft } from './draft.js';
import { reportsSuccess, stepOf } from './match.js';
import { retryPolicyOf } from './policy.js';
import type { WorkflowContext, WorkflowEvent } from './types.js';

/**
 * An integration workflow (the spec's IntegrationWorkflow with its WorkflowSteps):
 *
 * ```
 * draft ─create─► notStarted ─start─► blocked ──(every dependency COMPLETED)──► running ─► completed
 *                     │                  └──(a dependency FAILED/CANCELLED)──► failed ◄──┘   ▲
 *                     └─────────── cancel (from any unfinished state) ──► cancelled   └─retry─┘
 * ```
 *
 * The step DAG lives in context: a step whose dependencies are all COMPLETED (or SKIPPED)
 * becomes READY (or SKIPPED when its `condition` is false), so independent steps run in
 * parallel. Manual steps wait for `execute` then `complete`; automated steps
 * (`configuration.action`) start at once: they publish to a subject and wait for the correlated
 * `workflow.step.reply`, or call a connector and wait for its `.done`/`.failed`, each attempt
 * bounded by a durable timeout (a delayed raise). A failure with retries left waits out its
 * backoff (another delayed raise) and becomes READY again; without, the workflow fails, and
 * `retry` re-runs the step.
 *
 * Workflows that depend on others ask each of them (`workflow.watch`) to report back; a
 * workflow tells its dependents when it completes, fails or is cancelled. No polling.
 * Time arrives in events (`at`); ids come from the caller. Every change is published on
 * `<events>.workflow.*` (`events` from `workflow.create`: `<NATS_PREFIX>.events`).
 */

const base = setup({
  types: {
    context: {} as WorkflowContext,
    events: {} as WorkflowEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
});

/**
 * Runs a named action on a draft of the context, then hands XState the new context, the timers
 * to cancel and set, and the effects. An entry action (`onEntry`) takes the last event's time.
 */
const named = (run: (o: Draft, e: WorkflowEvent) => void, onEntry = false) =>
  base.enqueueActions(({ context, event, enqueue }) => {
    const o = draftFor(context, onEntry ? null : event);
    run(o, event);
    enqueue.assign(() => o.ctx);
    for (const id of o.cancel) enqueue.cancel(id);
    for (const r of o.raise) enqueue.raise(r.event, { delay: r.delay, id: r.id });
    for (const e of o.effects) enqueue.emit(e);
  });

/** An action written for one event type; the chart only names it on transitions for that type. */
const as = <E extends WorkflowEvent['type']>(fn: (o: Draft, e: Extract<WorkflowEvent, { type: E }>) => void) => fn as (o: Draft, e: WorkflowEvent) => void;

/**
 * A step failed: it runs again after its backoff while it has retries and the failure may pass
 * (a connector's terminal failure, `retryable: false`, never does), else the workflow fails.
 */
const failure = [
  { guard: and(['appliesToStep', 'mayPass', 'hasRetriesLeft']), actions: ['failStep', 'scheduleRetry'] },
  { guard: 'appliesToStep', actions: ['failStep', 'giveUpStep'] },
] as const;

/** An automated step's answer: success completes it; a failure is a failure. */
const answer = [{ guard: and(['appliesToStep', 'reportsSuccess']), actions: 'completeStep' }, ...failure] as const;

export const workflowMachine = base.extend({
  guards: {
    hasDependencies: ({ context }) => context.dependencies.length > 0,
    dependenciesMet: ({ context }) => context.dependencies.every((d) => context.dependenciesCompleted.includes(d)),
    appliesToStep: ({ context, event }) => stepOf(context, event) !== undefined,
    hasRetriesLeft: ({ context, event }) => {
      const s = stepOf(context, event);
      return s !== undefined && hasRetriesLeft(s, retryPolicyOf(s));
    },
    mayPass: ({ event }) => {
      const error = 'error' in event ? event.error : undefined;
      return !(typeof error === 'object' && error !== null && 'retryable' in error && error.retryable === false);
    },
    reportsSuccess: ({ event }) => reportsSuccess(event),
    allStepsDone: ({ context }) => allStepsDone(context.steps),
    aStepFailedForGood: ({ context }) => aStepFailedForGood(context.steps),
  },
  actions: {
    ignore: base.assign(() => ({})),
    recordCreation: named(as(act.recordCreation)),
    noteTime: named(act.noteTime),
    watchDependencies: named(act.watchDependencies),
    addDependent: named(as(act.addDependent)),
    recordDependencyCompleted: named(as(act.recordDependencyCompleted)),
    recordDependencyFailed: named(as(act.recordDependencyFailed)),
    beginStep: named(act.beginStep),
    completeStep: named(act.completeStep),
    failStep: named(act.failStep),
    scheduleRetry: named(act.scheduleRetry),
    giveUpStep: named(act.giveUpStep),
    retryStep: named(act.retryStep),
    retryStepByHand: named(act.retryStepByHand),
    cancelSteps: named(as(act.cancelSteps)),
    enterRunning: named(act.enterRunning, true),
    settleCompleted: named((o) => act.settle(o, 'COMPLETED'), true),
    settleFailed: named((o) => act.settle(o, 'FAILED'), true),
    settleCancelled: named((o) => act.settle(o, 'CANCELLED'), true),
  },
}).createMachine({
  id: 'workflow',
  context: ({ input }) => ({
    id: input.id,
    name: '',
    description: null,
    workflowType: null,
    vendorId: null,
    partnerId: null,
    integrationId: null,
    dependencies: [],
    dependenciesCompleted: [],
    dependents: [],
    estimatedDuration: null,
    actualDuration: null,
    startedAt: null,
    completedAt: null,
    cancelledAt: null,
    currentStep: null,
    errorMessage: null,
    metadata: null,
    steps: [],
    outcome: null,
    createdAt: null,
    createdBy: null,
    lastEventAt: null,
  }),
  initial: 'draft',
  on: {
    'workflow.watch': { actions: 'addDependent' },
    // a reply to an attempt that timed out or was cancelled, or a dependency reporting back after
    // this workflow stopped waiting: accepted (so the sender does not dead-letter it) and ignored
    'workflow.step.reply': { actions: 'ignore' },
    'wfstep.*': { actions: 'ignore' },
    'workflow.dependencyCompleted': { actions: 'ignore' },
    'workflow.dependencyFailed': { actions: 'ignore' },
  },
  states: {
    draft: {
      on: { 'workflow.create': { target: 'notStarted', actions: 'recordCreation' } },
    },
    notStarted: {
      on: {
        'workflow.start': [
          { guard: 'hasDependencies', target: 'blocked', actions: 'watchDependencies' },
          { target: 'running', actions: 'noteTime' },
        ],
        'workflow.cancel': { target: 'cancelled', actions: 'cancelSteps' },
      },
    },
    blocked: {
      always: { guard: 'dependenciesMet', target: 'running' },
      on: {
        'workflow.dependencyCompleted': { actions: 'recordDependencyCompleted' },
        'workflow.dependencyFailed': { target: 'failed', actions: 'recordDependencyFailed' },
        'workflow.cancel': { target: 'cancelled', actions: 'cancelSteps' },
      },
    },
    running: {
      entry: 'enterRunning',
      always: [
        { guard: 'allStepsDone', target: 'completed' },
        { guard: 'aStepFailedForGood', target: 'failed' },
      ],
      on: {
        'workflow.step.execute': { guard: 'appliesToStep', actions: 'beginStep' },
        'workflow.step.complete': { guard: 'appliesToStep', actions: 'completeStep' },
        'workflow.step.fail': failure,
        'workflow.step.timeout': failure,
        'workflow.step.reply': answer,
        'wfstep.*': answer,
        'workflow.step.retryDue': { guard: 'appliesToStep', actions: 'retryStep' },
        'workflow.step.retry': { guard: 'appliesToStep', actions: 'retryStepByHand' },
        'workflow.cancel': { target: 'cancelled', actions: 'cancelSteps' },
      },
    },
    completed: { entry: 'settleCompleted' },
    failed: {
      entry: 'settleFailed',
      on: {
        'workflow.step.retry': { guard: 'appliesToStep', target: 'running', actions: 'retryStepByHand' },
        'workflow.cancel': { target: 'cancelled', actions: 'cancelSteps' },
      },
    },
    cancelled: { entry: 'settleCancelled' },
  },
});
