import { formatDuration } from '../lib/duration.js';
import { epochMs as ms, isoAt as iso } from '../lib/time.js';
import { backoffMs, compensationNames } from './plan.js';
import { beginCompensation, errorOf, pick, replyTime, sendCompensation, sendStep, Tx, type Outcome } from './tx.js';
import type { SagaContext, SagaError, SagaStartEvent, ServiceReply } from './types.js';

/**
 * What each named action of the saga chart does: a pure function from the context (and the
 * event) to the next context and the effects. Time is the event's, or the deadline of the
 * timer that fired, so a journal replays to the same state.
 */

export function onStart(ctx: SagaContext, e: SagaStartEvent): Outcome {
  const tx = new Tx(ctx, e.at);
  tx.ctx = {
    ...tx.ctx,
    workflowType: e.workflowType,
    status: 'IN_PROGRESS',
    correlationId: e.correlationId,
    data: e.data,
    metadata: e.metadata,
    plan: e.plan,
    steps: e.plan.steps.map((p) => ({
      name: p.name,
      status: 'PENDING',
      attempt: 0,
      commandId: null,
      commandIds: [],
      startedAt: null,
      completedAt: null,
      result: null,
      error: null,
      outcomeUnknown: false,
      compensation: null,
    })),
    startedAt: e.at,
    sagaDeadline: iso(ms(e.at) + e.plan.timeoutMs),
  };
  tx.announce('WorkflowStartedEvent', { workflowType: e.workflowType, correlationId: e.correlationId, metadata: e.metadata });
  sendStep(tx, 0, 1);
  return tx.done();
}

export function onStepSucceeded(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const result = pick(e, p.result);
  tx.set(i, { status: 'COMPLETED', completedAt: tx.now, result });
  const s = tx.step(i);
  tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(s.startedAt)), result });
  if (i + 1 < ctx.plan.steps.length) {
    sendStep(tx, i + 1, 1);
  } else {
    tx.ctx.status = 'COMPLETED';
    tx.ctx.completedAt = tx.now;
    tx.ctx.deadline = null;
    tx.announce('WorkflowCompletedEvent', {
      workflowType: ctx.workflowType,
      status: 'COMPLETED',
      duration: formatDuration(ms(tx.now) - ms(ctx.startedAt)),
      completedSteps: ctx.plan.steps.map((x) => x.name),
    });
  }
  return tx.done();
}

export function onStepFailed(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const error = errorOf(e, `${p.name}_FAILED`);
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error });
  tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'FAILED', duration: formatDuration(ms(tx.now) - ms(tx.step(i).startedAt)), result: {}, error });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

export function onStepTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const s = tx.step(i);
  if (s.attempt < p.maxAttempts) {
    tx.ctx.deadline = iso(ms(tx.now) + backoffMs(p.backoff, s.attempt));
    return tx.done();
  }
  const error: SagaError = { code: 'STEP_TIMEOUT', message: `${p.name} got no answer in ${s.attempt} attempts of ${formatDuration(p.timeoutMs)}`, details: { attempts: s.attempt } };
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error, outcomeUnknown: true });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

export function onRetry(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  sendStep(tx, ctx.current, tx.step(ctx.current).attempt + 1);
  return tx.done();
}

export function onSagaTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.sagaDeadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const error: SagaError = { code: 'WORKFLOW_TIMEOUT', message: `the workflow did not finish in ${formatDuration(ctx.plan.timeoutMs)}`, details: {} };
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error, outcomeUnknown: true });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

/** Cancel: a step in flight stays awaited (until its deadline) and is compensated unless it fails. */
export function onCancel(ctx: SagaContext, e: { at: string; reason: string; initiatedBy: string }, inFlight: boolean): Outcome {
  const tx = new Tx(ctx, e.at > (ctx.now ?? '') ? e.at : ctx.now!);
  const i = ctx.current;
  tx.ctx.cancel = { reason: e.reason, initiatedBy: e.initiatedBy, at: tx.now };
  // assume the step in flight (or between attempts) happened until it says otherwise
  tx.set(i, { outcomeUnknown: true });
  const deadline = ctx.deadline;
  beginCompensation(tx, ctx.plan.steps[i]!.name, { code: 'WORKFLOW_CANCELLED', message: e.reason, details: { initiatedBy: e.initiatedBy } }, true);
  if (inFlight) tx.ctx.deadline = deadline;
  else tx.set(i, { status: 'FAILED', completedAt: tx.now, error: { code: 'CANCELLED', message: 'cancelled between attempts', details: {} } });
  return tx.done();
}

export function onInFlightSettled(ctx: SagaContext, e: ServiceReply | null, ok: boolean): Outcome {
  const tx = new Tx(ctx, e ? replyTime(ctx, e) : ctx.deadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  if (e && ok) {
    const result = pick(e, p.result);
    tx.set(i, { status: 'COMPLETED', completedAt: tx.now, result, outcomeUnknown: false });
    tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(tx.step(i).startedAt)), result });
  } else if (e) {
    tx.set(i, { status: 'FAILED', completedAt: tx.now, error: errorOf(e, `${p.name}_FAILED`), outcomeUnknown: false });
    tx.ctx.compensations = tx.ctx.compensations.filter((x) => x !== i);
  } else {
    tx.set(i, { status: 'FAILED', completedAt: tx.now, error: { code: 'STEP_TIMEOUT', message: `${p.name} did not answer before its deadline`, details: {} } });
  }
  tx.ctx.deadline = null;
  return tx.done();
}

export function onCompensationDispatch(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.now!);
  sendCompensation(tx, 1);
  return tx.done();
}

export function onCompensated(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.compensations[ctx.compensating]!;
  const c = ctx.plan.steps[i]!.compensation!;
  const s = tx.step(i);
  tx.set(i, { status: 'COMPENSATED', compensation: { ...s.compensation!, status: 'COMPLETED', completedAt: tx.now } });
  tx.announce('SagaStepCompletedEvent', { stepName: c.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(s.compensation!.startedAt)), result: pick(e, ['compensationId']) });
  tx.ctx.compensating += 1;
  tx.ctx.deadline = null;
  return tx.done();
}

export function onCompensationTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.compensations[ctx.compensating]!;
  const c = ctx.plan.steps[i]!.compensation!;
  const s = tx.step(i);
  if (s.compensation!.attempt < c.maxAttempts) {
    tx.ctx.deadline = iso(ms(tx.now) + backoffMs(ctx.plan.steps[i]!.backoff, s.compensation!.attempt));
    return tx.done();
  }
  tx.set(i, { compensation: { ...s.compensation!, status: 'FAILED' } });
  tx.ctx.status = 'COMPENSATION_FAILED';
  tx.ctx.deadline = null;
  const error: SagaError = { code: 'COMPENSATION_FAILED', message: `${c.name} got no answer in ${s.compensation!.attempt} attempts`, details: { compensates: s.name } };
  tx.announce('WorkflowFailedEvent', { workflowType: ctx.workflowType, failedStep: c.name, error, compensationSteps: compensationNames(tx.ctx) });
  return tx.done();
}

export function onCompensationRetry(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.compensations[ctx.compensating]!;
  sendCompensation(tx, tx.step(i).compensation!.attempt + 1);
  return tx.done();
}

export function onOperatorRetry(ctx: SagaContext, e: { at: string }): Outcome {
  const tx = new Tx(ctx, e.at > (ctx.now ?? '') ? e.at : ctx.now!);
  tx.ctx.status = ctx.cancel ? 'CANCELLING' : 'COMPENSATING';
  const i = ctx.compensations[ctx.compensating]!;
  // a fresh round of attempts; command ids stay unique by continuing the attempt count
  const s = tx.step(i);
  const next = s.compensation!.attempt + 1;
  const c = ctx.plan.steps[i]!.compensation!;
  tx.ctx.plan = { ...ctx.plan, steps: ctx.plan.steps.map((p, k) => (k === i ? { ...p, compensation: { ...c, maxAttempts: s.compensation!.attempt + c.maxAttempts } } : p)) };
  sendCompensation(tx, next);
  return tx.done();
}

export function onFinished(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.now!);
  tx.ctx.status = ctx.cancel ? 'CANCELLED' : 'FAILED';
  tx.ctx.completedAt = tx.now;
  tx.ctx.deadline = null;
  return tx.done();
}
