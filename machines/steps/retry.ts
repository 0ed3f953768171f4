import { backoffDelay, type Backoff } from '../lib/backoff.js';
import { plusMs } from '../lib/time.js';
import type { StepRun } from './types.js';

/** How often a failed step runs again, and how long it waits first. */
export interface RetryPolicy {
  /** Automatic retries after the first attempt (0: a failure is final until retried by hand). */
  maxRetries: number;
  backoff: Backoff;
}

export const hasRetriesLeft = (s: Pick<StepRun, 'retryCount'>, p: Pick<RetryPolicy, 'maxRetries'>): boolean => s.retryCount < p.maxRetries;

/**
 * Schedules the automatic retry of a step that just FAILED: ends the attempt, counts the retry
 * and stamps `retryAt`.
 * Returns the delay, which the machine turns into a durable timer (a delayed raise whose id is
 * `retryTimer(step.id)`); the timer's event makes the step READY again (`readyAgain`).
 * `random` (in [0, 1), from an event) applies the policy's jitter.
 */
export function scheduleRetry(s: StepRun, at: string, p: RetryPolicy, random?: number): number {
  s.correlationId = null;
  s.retryCount += 1;
  const delay = backoffDelay(p.backoff, s.retryCount, random);
  s.retryAt = plusMs(at, delay);
  return delay;
}

/**
 * A retry by hand of a FAILED step. Returns true when an automatic retry was pending (its timer
 * must be cancelled: this one replaces it, so the count is not raised twice).
 */
export function retryByHand(s: StepRun): boolean {
  const pending = s.retryAt !== null;
  if (!pending) s.retryCount += 1;
  return pending;
}

/** Ids of a step's durable timers: one per step, so scheduling again replaces the last one. */
export const timeoutTimer = (stepId: string): string => `timeout.${stepId}`;
export const retryTimer = (stepId: string): string => `retry.${stepId}`;
