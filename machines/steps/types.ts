/**
 * The state of one step of a DAG of steps, whatever the step does: the part an integration
 * workflow (machines/workflow/) and a future playbook execution share. A machine keeps an array
 * of these (extended with what its steps do) in its context; `dag.ts` decides which are due,
 * `lifecycle.ts` moves one through its statuses, `retry.ts` decides whether and when it runs
 * again. All pure: the functions change a draft copy of the context the caller owns, and time
 * arrives as ISO strings.
 */

export const STEP_STATUSES = ['NOT_STARTED', 'READY', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export interface StepRun {
  id: string;
  /** 1-based; `dependencies` name the numbers of steps that must finish first. */
  stepNumber: number;
  dependencies: number[];
  status: StepStatus;
  startedAt: string | null;
  completedAt: string | null;
  /** Minutes from the first start to completion. */
  actualDuration: number | null;
  errorMessage: string | null;
  /** Retries used (automatic and by hand). */
  retryCount: number;
  /** What completed the step. */
  output: unknown;
  /** Attempts started; an answer or timer of an older attempt is ignored. */
  attempt: number;
  /** The id an answer to the current attempt carries, when the step waits for one. */
  correlationId: string | null;
  /** When a failed step with retries left becomes READY again. */
  retryAt: string | null;
}

/** A fresh step: nothing run yet. */
export function notStarted<S extends { id: string; stepNumber: number; dependencies: number[] }>(init: S): S & StepRun {
  return {
    ...init,
    status: 'NOT_STARTED',
    actualDuration: null,
    startedAt: null,
    completedAt: null,
    errorMessage: null,
    retryCount: 0,
    output: null,
    attempt: 0,
    correlationId: null,
    retryAt: null,
  };
}
