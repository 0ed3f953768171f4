import { minutesBetween } from '../lib/time.js';
import type { StepRun } from './types.js';

/**
 * A step's status transitions:
 *
 * ```
 * NOT_STARTED ─(dependencies finished)─► READY ─begin─► IN_PROGRESS ─complete─► COMPLETED
 *      └─(skipped)─► SKIPPED                 ▲               └─fail─► FAILED ─(retry)─┘
 * any unfinished step, or a FAILED one waiting for its retry ─cancel─► CANCELLED
 * ```
 */

/** READY (or FAILED, on a retry) -> IN_PROGRESS: a new attempt. Returns its number. */
export function beginStep(s: StepRun, at: string): number {
  s.status = 'IN_PROGRESS';
  s.startedAt ??= at;
  s.attempt += 1;
  s.retryAt = null;
  return s.attempt;
}

/** IN_PROGRESS -> COMPLETED with what completed it. */
export function completeStep(s: StepRun, at: string, output: unknown): void {
  s.status = 'COMPLETED';
  s.completedAt = at;
  s.actualDuration = minutesBetween(s.startedAt, at);
  s.output = output ?? null;
  s.errorMessage = null;
  s.correlationId = null;
}

/**
 * IN_PROGRESS -> FAILED. Whether it runs again is the retry policy's call: follow it with
 * `scheduleRetry` (`retry.ts`) or `giveUpStep`, either of which ends the attempt (until then
 * its correlation id still names the step).
 */
export function failStep(s: StepRun, message: string): void {
  s.status = 'FAILED';
  s.errorMessage = message;
}

/** A failure that will not be retried automatically: the attempt is over. */
export function giveUpStep(s: StepRun): void {
  s.correlationId = null;
  s.retryAt = null;
}

/** FAILED -> READY, for a retry that is due or asked for. */
export function readyAgain(s: StepRun): void {
  s.status = 'READY';
  s.retryAt = null;
}

/** True for a step that cancel stops: not yet finished, or failed with a retry pending. */
export const isCancellable = (s: StepRun): boolean =>
  s.status === 'NOT_STARTED' || s.status === 'READY' || s.status === 'IN_PROGRESS' || (s.status === 'FAILED' && s.retryAt !== null);

/** Cancels every running and remaining step; finished and finally failed ones keep their status. */
export function cancelSteps(steps: StepRun[]): void {
  for (const s of steps) {
    if (!isCancellable(s)) continue;
    s.status = 'CANCELLED';
    s.retryAt = null;
    s.correlationId = null;
  }
}

/** The current attempt of an IN_PROGRESS step (answers and timeouts of older attempts do not count). */
export const awaitsAttempt = (s: StepRun | undefined, attempt: number): boolean => s?.status === 'IN_PROGRESS' && s.attempt === attempt;

/** The retry timer of this attempt is still the one that counts. */
export const retryIsDue = (s: StepRun | undefined, attempt: number): boolean => s?.status === 'FAILED' && s.retryAt !== null && s.attempt === attempt;
