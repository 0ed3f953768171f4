import { describe, expect, it } from 'vitest';
import {
  allStepsDone,
  aStepFailedForGood,
  awaitsAttempt,
  beginStep,
  cancelSteps,
  completeStep,
  currentStepNumber,
  dueSteps,
  failStep,
  giveUpStep,
  hasRetriesLeft,
  notStarted,
  readyAgain,
  releaseDueSteps,
  retryByHand,
  retryIsDue,
  scheduleRetry,
  type RetryPolicy,
  type StepRun,
} from '../../machines/steps/index.js';

/** A step of some other machine (a playbook's): the step module knows nothing of what it does. */
interface PlayStep extends StepRun {
  run: string;
}
const T0 = '2026-03-01T00:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();
const dag = (...defs: Array<[number, number[]]>): PlayStep[] =>
  // through JSON, as a persisted context is
  JSON.parse(JSON.stringify(defs.map(([n, deps]) => notStarted({ id: `p${n}`, stepNumber: n, dependencies: deps, run: `task-${n}` })))) as PlayStep[];
const policy: RetryPolicy = { maxRetries: 2, backoff: { initialMs: 1000, multiplier: 3, maxMs: 5000 } };

describe('step DAG', () => {
  it('releases roots at once, dependents when their dependencies finish, and skipped steps count as finished', () => {
    const steps = dag([1, []], [2, [1]], [3, [1]], [4, [2, 3]], [5, []]);
    const seen: string[] = [];
    const release = () =>
      releaseDueSteps(steps, T0, { skip: (s) => s.run === 'task-3', skipped: (s) => seen.push(`skip ${s.stepNumber}`), ready: (s) => seen.push(`ready ${s.stepNumber}`) });
    release();
    expect(seen).toEqual(['ready 1', 'ready 5']);
    expect(dueSteps(steps)).toEqual([]);
    beginStep(steps[0]!, at(0));
    completeStep(steps[0]!, at(120_000), { ok: true });
    expect(dueSteps(steps).map((s) => s.stepNumber)).toEqual([2, 3]);
    release();
    // 3 is skipped, so 4 still waits for 2 only
    expect(seen.slice(2)).toEqual(['ready 2', 'skip 3']);
    expect(steps[2]).toMatchObject({ status: 'SKIPPED', completedAt: T0 });
    expect(steps[0]).toMatchObject({ status: 'COMPLETED', actualDuration: 2, output: { ok: true } });
    expect(currentStepNumber(steps, null)).toBe(2);
    for (const n of [1, 4]) {
      beginStep(steps[n]!, at(1));
      completeStep(steps[n]!, at(2), null);
    }
    release();
    expect(seen.at(-1)).toBe('ready 4');
    beginStep(steps[3]!, at(3));
    completeStep(steps[3]!, at(4), null);
    expect(allStepsDone(steps)).toBe(true);
  });

  it('skips chains in one pass: a skipped step makes its dependents due at once', () => {
    const steps = dag([1, []], [2, [1]], [3, [2]]);
    releaseDueSteps(steps, T0, { skip: () => true });
    expect(steps.map((s) => s.status)).toEqual(['SKIPPED', 'SKIPPED', 'SKIPPED']);
  });
});

describe('step retries', () => {
  it('schedules retries with capped exponential backoff, ignores stale attempts, then gives up', () => {
    const [s] = dag([1, []]);
    const step = s!;
    step.status = 'READY';
    expect(beginStep(step, at(0))).toBe(1);
    step.correlationId = 'c1';
    expect(awaitsAttempt(step, 1)).toBe(true);
    expect(hasRetriesLeft(step, policy)).toBe(true);
    failStep(step, 'boom');
    expect(step.correlationId).toBe('c1'); // the attempt ends with the policy's decision
    expect(scheduleRetry(step, at(10), policy)).toBe(1000);
    expect(step).toMatchObject({ status: 'FAILED', retryCount: 1, retryAt: at(1010), correlationId: null, errorMessage: 'boom' });
    expect(aStepFailedForGood([step])).toBe(false);
    expect(retryIsDue(step, 1)).toBe(true);
    expect(retryIsDue(step, 0)).toBe(false);
    readyAgain(step);
    expect(beginStep(step, at(1010))).toBe(2);
    expect(awaitsAttempt(step, 1)).toBe(false);
    failStep(step, 'again');
    expect(scheduleRetry(step, at(2000), policy)).toBe(3000);
    readyAgain(step);
    beginStep(step, at(5000));
    failStep(step, 'third');
    expect(hasRetriesLeft(step, policy)).toBe(false);
    giveUpStep(step);
    expect(step).toMatchObject({ status: 'FAILED', retryCount: 2, retryAt: null, attempt: 3, startedAt: at(0) });
    expect(aStepFailedForGood([step])).toBe(true);
    // by hand: counts a retry when none was pending
    expect(retryByHand(step)).toBe(false);
    expect(step.retryCount).toBe(3);
  });

  it('a retry by hand replaces a pending automatic retry instead of counting another', () => {
    const [step] = dag([1, []]);
    step!.status = 'READY';
    beginStep(step!, T0);
    failStep(step!, 'x');
    scheduleRetry(step!, T0, policy);
    expect(retryByHand(step!)).toBe(true);
    expect(step!.retryCount).toBe(1);
  });

  it('applies jitter only from the random value it is given', () => {
    const jittered: RetryPolicy = { maxRetries: 5, backoff: { initialMs: 1000, maxMs: 60_000, jitter: 0.5 } };
    const a = dag([1, []])[0]!;
    const b = dag([1, []])[0]!;
    expect(scheduleRetry(a, T0, jittered)).toBe(1000);
    expect(scheduleRetry(b, T0, jittered, 0.5)).toBe(750);
    expect(b.retryAt).toBe(at(750));
  });
});

describe('cancel', () => {
  it('cancels running, remaining and retry-pending steps; finished and finally failed ones keep their status', () => {
    const steps = dag([1, []], [2, []], [3, []], [4, []], [5, []], [6, [1]]);
    const [done, running, waitingRetry, failed, ready] = steps;
    done!.status = 'COMPLETED';
    running!.status = 'IN_PROGRESS';
    running!.correlationId = 'c';
    waitingRetry!.status = 'FAILED';
    waitingRetry!.retryAt = T0;
    failed!.status = 'FAILED';
    ready!.status = 'READY';
    cancelSteps(steps);
    expect(steps.map((s) => s.status)).toEqual(['COMPLETED', 'CANCELLED', 'CANCELLED', 'FAILED', 'CANCELLED', 'CANCELLED']);
    expect(steps.every((s) => s.correlationId === null && (s.status !== 'CANCELLED' || s.retryAt === null))).toBe(true);
  });
});
