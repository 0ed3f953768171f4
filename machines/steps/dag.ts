import type { StepRun, StepStatus } from './types.js';

/** A dependency in one of these lets its dependents run. */
const FINISHED: readonly StepStatus[] = ['COMPLETED', 'SKIPPED'];

/** True when every step is COMPLETED or SKIPPED (an empty DAG is done). */
export const allStepsDone = (steps: readonly StepRun[]): boolean => steps.every((s) => FINISHED.includes(s.status));

/** True when a step FAILED and no automatic retry is pending: the run cannot finish by itself. */
export const aStepFailedForGood = (steps: readonly StepRun[]): boolean => steps.some((s) => s.status === 'FAILED' && s.retryAt === null);

/** NOT_STARTED steps whose dependencies have all finished, in array order. */
export function dueSteps<S extends StepRun>(steps: readonly S[]): S[] {
  const byNumber = new Map(steps.map((s) => [s.stepNumber, s]));
  return steps.filter((s) => s.status === 'NOT_STARTED' && s.dependencies.every((n) => FINISHED.includes(byNumber.get(n)?.status ?? 'NOT_STARTED')));
}

export interface Release<S> {
  /** True to skip the step (e.g. its condition is false): it counts as finished for its dependents. */
  skip(step: S): boolean;
  /** Told after the step became SKIPPED. */
  skipped?(step: S): void;
  /** Told after the step became READY: start it here if it starts by itself. */
  ready?(step: S): void;
  /**
   * True for a dependency that lets its dependents run although it is neither COMPLETED nor
   * SKIPPED (a playbook step that failed with `onError: continue`).
   */
  finished?(step: S): boolean;
}

/**
 * Releases every due step, READY or SKIPPED, until none is due: a skipped step can make its
 * dependents due in the same pass, so independent branches all start at once. Steps are
 * visited in array order, and each decision sees the ones made before it.
 */
export function releaseDueSteps<S extends StepRun>(steps: S[], at: string, r: Release<S>): void {
  const byNumber = new Map(steps.map((s) => [s.stepNumber, s]));
  const done = (n: number): boolean => {
    const d = byNumber.get(n);
    return d !== undefined && (FINISHED.includes(d.status) || (r.finished?.(d) ?? false));
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of steps) {
      if (s.status !== 'NOT_STARTED') continue;
      if (!s.dependencies.every(done)) continue;
      changed = true;
      if (r.skip(s)) {
        s.status = 'SKIPPED';
        s.completedAt = at;
        r.skipped?.(s);
      } else {
        s.status = 'READY';
        r.ready?.(s);
      }
    }
  }
}

/** The step to show as current: the lowest-numbered one IN_PROGRESS, else READY, else FAILED. */
export function currentStepNumber(steps: readonly StepRun[], fallback: number | null): number | null {
  const lowest = (st: StepStatus) => steps.filter((s) => s.status === st).map((s) => s.stepNumber).sort((a, b) => a - b)[0];
  return lowest('IN_PROGRESS') ?? lowest('READY') ?? lowest('FAILED') ?? fallback;
}
