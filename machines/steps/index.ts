/**
 * Steps of a DAG, generic over what a step does: readiness from dependencies, status
 * transitions, retry with backoff, cancel. Integration workflows use it today; playbook
 * executions will.
 */
export { aStepFailedForGood, allStepsDone, currentStepNumber, dueSteps, releaseDueSteps, type Release } from './dag.js';
export { awaitsAttempt, beginStep, cancelSteps, completeStep, failStep, giveUpStep, isCancellable, readyAgain, retryIsDue } from './lifecycle.js';
export { hasRetriesLeft, retryByHand, retryTimer, scheduleRetry, timeoutTimer, type RetryPolicy } from './retry.js';
export { notStarted, STEP_STATUSES, type StepRun, type StepStatus } from './types.js';
