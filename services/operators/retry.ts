import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { DomainCode, DomainError } from '../common/errors.js';

/**
 * What "retry a failed step" means for each actor type whose machine allows one by hand: the
 * event to send, planned from the actor's context. Each planner only names the event and checks
 * that the step the operator named is the one that failed; the machine's own guards decide
 * whether the current state accepts it (a refusal is the usual EVENT_REJECTED).
 *
 * - `workflow` (machines/workflow): `workflow.step.retry` for a FAILED step, named by its id or
 *   its step number; accepted while the workflow runs or after it failed.
 * - `saga` (machines/saga): a failed forward step is compensated, never retried; the one retry
 *   the chart takes is `saga.retryCompensation` in COMPENSATION_FAILED (the compensation of the
 *   named step, if one is named, must be the one that failed).
 */
export interface RetryPlan {
  /** The event to send. */
  event: { type: string; [field: string]: unknown };
  /** The step it retries, as the audit record names it. */
  step: { id: string; name: string | null };
}

type Planner = (context: Record<string, unknown>, step: string | undefined, stamp: { at: string; by: string }) => RetryPlan;

interface WorkflowStepView {
  id: string;
  stepNumber: number;
  name: string;
  status: string;
}

interface SagaStepView {
  name: string;
}

interface SagaPlanStep {
  compensation: { name: string } | null;
}

const notRetryable = (message: string, details: Record<string, unknown>) => new ConcordError(ErrorCode.EventRejected, message, details);

const planners: Record<string, Planner> = {
  workflow(context, step, { at, by }) {
    if (step === undefined) throw new DomainError(DomainCode.ValidationFailed, 'name the step to retry (its id or number)', { issues: [{ path: ['step'], message: 'required for a workflow' }] });
    const steps = (context.steps ?? []) as WorkflowStepView[];
    const s = steps.find((x) => x.id === step || String(x.stepNumber) === step);
    if (!s) throw new DomainError(DomainCode.NotFound, `workflow has no step '${step}'`, { step, steps: steps.map((x) => ({ id: x.id, stepNumber: x.stepNumber })) });
    if (s.status !== 'FAILED') {
      throw notRetryable(`step ${s.stepNumber} (${s.name}) is ${s.status}: only a FAILED step can be retried`, {
        currentStatus: s.status,
        failedSteps: steps.filter((x) => x.status === 'FAILED').map((x) => x.stepNumber),
      });
    }
    return { event: { type: 'workflow.step.retry', stepId: s.id, at, by }, step: { id: s.id, name: s.name } };
  },
  saga(context, step, { at, by }) {
    const steps = (context.steps ?? []) as SagaStepView[];
    const plan = ((context.plan as { steps?: SagaPlanStep[] } | undefined)?.steps ?? []) as SagaPlanStep[];
    const compensations = (context.compensations ?? []) as number[];
    const index = context.status === 'COMPENSATION_FAILED' ? compensations[context.compensating as number] : undefined;
    const failed = index === undefined ? undefined : steps[index];
    if (index === undefined || !failed) {
      throw notRetryable(`saga is ${String(context.status)}: only a saga in COMPENSATION_FAILED has a step to retry (its failed compensation)`, { currentStatus: context.status });
    }
    const compensation = plan[index]?.compensation?.name ?? null;
    // the operator may name the step or its compensation
    if (step !== undefined && step !== failed.name && step !== compensation) {
      throw notRetryable(`the failed step is ${compensation ?? failed.name} (compensating ${failed.name}), not ${step}`, { currentStatus: context.status, failedStep: failed.name });
    }
    return { event: { type: 'saga.retryCompensation', at, by }, step: { id: failed.name, name: compensation } };
  },
};

/** The actor types with a retry by hand. */
export const retryableTypes = (): string[] => Object.keys(planners);

/** Plans the retry of `step` of an actor of `type` in `context`; a type without one is a 400. */
export function planRetry(type: string, context: Record<string, unknown>, step: string | undefined, stamp: { at: string; by: string }): RetryPlan {
  const planner = Object.hasOwn(planners, type) ? planners[type] : undefined;
  if (!planner) {
    throw new DomainError(DomainCode.ValidationFailed, `actors of type '${type}' have no step to retry`, { issues: [{ path: ['type'], message: `one of ${retryableTypes().join(', ')}` }] });
  }
  return planner(context, step, stamp);
}
