import { sendToActor } from '../effects.js';
import { minutesBetween } from '../lib/time.js';
import {
  cancelSteps as cancelAll,
  completeStep as complete,
  failStep as fail,
  giveUpStep as giveUp,
  notStarted,
  readyAgain,
  releaseDueSteps,
  retryByHand,
  retryTimer,
  scheduleRetry as schedule,
  timeoutTimer,
} from '../steps/index.js';
import { evaluateCondition } from './condition.js';
import { announce, beginAttempt, refreshCurrent, tell, type Draft } from './draft.js';
import { failureOf, namedStep, outputOf } from './match.js';
import { actionOf, conditionOf, retryPolicyOf, timeoutOf } from './policy.js';
import type { WorkflowContext, WorkflowEvent, WorkflowStep } from './types.js';

/**
 * The workflow's named actions, one concept each, as pure functions on a draft. The chart
 * (`chart.ts`) names them in its transitions, so it reads like the spec; the step mechanics
 * (DAG readiness, statuses, retry policy) come from `machines/steps/`.
 */

type Action<E extends WorkflowEvent['type'] = WorkflowEvent['type']> = (o: Draft, e: Extract<WorkflowEvent, { type: E }>) => void;

/** The step an action is about; the transition's guard has checked that it applies. */
const stepIn = (o: Draft, e: WorkflowEvent): WorkflowStep => namedStep(o.ctx, e)!;

function conditionScope(c: WorkflowContext) {
  return {
    workflow: { id: c.id, name: c.name, workflowType: c.workflowType, vendorId: c.vendorId, partnerId: c.partnerId, integrationId: c.integrationId, metadata: c.metadata },
    steps: Object.fromEntries(c.steps.map((s) => [String(s.stepNumber), { status: s.status, output: s.output ?? null, retryCount: s.retryCount }])),
  };
}

/** Makes every step whose dependencies are done READY (or SKIPPED), starting automated ones. */
function releaseSteps(o: Draft): void {
  releaseDueSteps(o.ctx.steps, o.at, {
    skip: (s) => {
      const cond = conditionOf(s);
      return cond !== null && !evaluateCondition(cond, conditionScope(o.ctx));
    },
    skipped: (s) => announce(o, 'skipped', s),
    ready: (s) => {
      announce(o, 'ready', s);
      if (actionOf(s)) beginAttempt(o, s);
    },
  });
  refreshCurrent(o.ctx);
}

export const recordCreation: Action<'workflow.create'> = (o, e) => {
  Object.assign(o.ctx, {
    name: e.name,
    description: e.description ?? null,
    workflowType: e.workflowType,
    vendorId: e.vendorId ?? null,
    partnerId: e.partnerId ?? null,
    integrationId: e.integrationId ?? null,
    dependencies: e.dependencies ?? [],
    estimatedDuration: e.estimatedDuration ?? null,
    metadata: e.metadata ?? null,
    createdAt: e.at,
    createdBy: e.by,
    steps: e.steps.map((st) => notStarted(st)),
    ...(e.events ? { events: e.events } : {}),
  });
  announce(o, 'created');
};

/** The event's time becomes the workflow's (what `draftFor` does for every action). */
export const noteTime: Action = () => undefined;

/** Asks every dependency to report back when it ends. */
export const watchDependencies: Action = (o) => {
  for (const dep of o.ctx.dependencies) o.effects.push(sendToActor({ type: 'workflow', id: dep }, { type: 'workflow.watch', dependent: o.ctx.id, at: o.at }));
  announce(o, 'blocked');
};

/** A workflow waits on this one; if this one has ended already, it hears so at once. */
export const addDependent: Action<'workflow.watch'> = (o, e) => {
  if (!o.ctx.dependents.includes(e.dependent)) o.ctx.dependents.push(e.dependent);
  if (o.ctx.outcome) o.effects.push(tell(o.ctx, e.dependent, o.at));
};

export const recordDependencyCompleted: Action<'workflow.dependencyCompleted'> = (o, e) => {
  if (!o.ctx.dependenciesCompleted.includes(e.workflowId)) o.ctx.dependenciesCompleted.push(e.workflowId);
};

export const recordDependencyFailed: Action<'workflow.dependencyFailed'> = (o, e) => {
  o.ctx.errorMessage = `dependency workflow ${e.workflowId} is ${e.status}`;
};

/** READY -> IN_PROGRESS (a manual step's `execute`). */
export const beginStep: Action = (o, e) => {
  beginAttempt(o, stepIn(o, e));
  refreshCurrent(o.ctx);
};

/** IN_PROGRESS -> COMPLETED; its dependents may now be due. */
export const completeStep: Action = (o, e) => {
  const s = stepIn(o, e);
  complete(s, o.at, outputOf(e));
  o.cancel.push(timeoutTimer(s.id));
  announce(o, 'completed', s);
  releaseSteps(o);
};

/** IN_PROGRESS -> FAILED; followed by `scheduleRetry` or `giveUpStep`. */
export const failStep: Action = (o, e) => {
  const s = stepIn(o, e);
  o.cancel.push(timeoutTimer(s.id));
  fail(s, failureOf(e, s, timeoutOf(s)));
};

/** The failed step runs again after its backoff (a durable timer raising `retryDue`). */
export const scheduleRetry: Action = (o, e) => {
  const s = stepIn(o, e);
  const delay = schedule(s, o.at, retryPolicyOf(s));
  o.raise.push({ event: { type: 'workflow.step.retryDue', stepId: s.id, attempt: s.attempt, at: s.retryAt! }, delay, id: retryTimer(s.id) });
  announce(o, 'retrying', s);
  refreshCurrent(o.ctx);
};

/** No retries left: the step stays FAILED and so does the workflow, until a retry by hand. */
export const giveUpStep: Action = (o, e) => {
  const s = stepIn(o, e);
  giveUp(s);
  o.ctx.errorMessage = `step ${s.stepNumber} (${s.name}) failed: ${s.errorMessage}`;
  announce(o, 'failed', s);
  refreshCurrent(o.ctx);
};

function runAgain(o: Draft, s: WorkflowStep): void {
  readyAgain(s);
  announce(o, 'ready', s);
  if (actionOf(s)) beginAttempt(o, s);
  refreshCurrent(o.ctx);
}

/** The backoff is over: FAILED -> READY (an automated step starts its next attempt). */
export const retryStep: Action = (o, e) => runAgain(o, stepIn(o, e));

/** An operator's retry of a FAILED step: replaces a pending automatic retry, or counts one. */
export const retryStepByHand: Action = (o, e) => {
  const s = stepIn(o, e);
  if (retryByHand(s)) o.cancel.push(retryTimer(s.id));
  o.ctx.errorMessage = null;
  runAgain(o, s);
};

/** Cancels every running and remaining step and all their timers. */
export const cancelSteps: Action<'workflow.cancel'> = (o, e) => {
  for (const st of o.ctx.steps) o.cancel.push(timeoutTimer(st.id), retryTimer(st.id));
  cancelAll(o.ctx.steps);
  o.ctx.cancelledAt = o.at;
  o.ctx.errorMessage = e.reason ? `cancelled: ${e.reason}` : o.ctx.errorMessage;
};

/** Entering running: the first time it stamps startedAt; every time it makes due steps READY. */
export function enterRunning(o: Draft): void {
  const first = o.ctx.startedAt === null;
  o.ctx.startedAt ??= o.at;
  o.ctx.outcome = null;
  if (first) announce(o, 'started');
  releaseSteps(o);
}

/** Entering a terminal state: stamp it, announce it and tell every dependent. */
export function settle(o: Draft, outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED'): void {
  const ctx = o.ctx;
  ctx.outcome = outcome;
  if (outcome === 'COMPLETED') {
    ctx.completedAt = o.at;
    ctx.actualDuration = minutesBetween(ctx.startedAt, o.at);
    ctx.currentStep = null;
    ctx.errorMessage = null;
  }
  if (outcome === 'CANCELLED') ctx.completedAt = o.at;
  announce(o, outcome.toLowerCase());
  for (const d of ctx.dependents) o.effects.push(tell(ctx, d, o.at));
}
