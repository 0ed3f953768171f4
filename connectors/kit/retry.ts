/**
 * The one retry decision: given a classified failure, the number of the attempt that just
 * failed and a policy, whether to try again and after how long. Pure apart from the injected
 * random source, so a test (or a replay) passes its own.
 *
 * - a terminal failure (`retryable: false`) is never retried;
 * - attempts are counted from 1, and there are at most `maxAttempts` of them;
 * - the delay is exponential backoff (`initialMs * factor^(attempt-1)`, capped at `maxMs`), less
 *   up to `jitter` of it at random; a `Retry-After` the provider sent wins when it is longer
 *   (itself capped at `maxRetryAfterMs`, so a hostile header cannot park work for a year).
 *
 * @example
 * const d = decideRetry(classify(err), attempt, { ...DEFAULT_RETRY_POLICY, maxAttempts: 5 });
 * if (d.retry) scheduleIn(d.delayMs); else deadLetter(err);
 */

import { backoffDelay } from '../../machines/lib/backoff.js';

export interface RetryPolicy {
  /** Attempts in all, the first one included (1 = never retry). */
  maxAttempts: number;
  /** Delay after the first failed attempt. */
  initialMs: number;
  /** Growth per further attempt (2 = doubling). */
  factor: number;
  /** Backoff cap. */
  maxMs: number;
  /** Fraction of the backoff taken off at random: 0 = none, 1 = "full jitter". */
  jitter: number;
  /** Longest `Retry-After` honoured. */
  maxRetryAfterMs: number;
  /** In [0, 1); injected so tests and replays are deterministic. Needed only when `jitter > 0`. */
  random?: () => number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  initialMs: 1_000,
  factor: 2,
  maxMs: 60_000,
  jitter: 0,
  maxRetryAfterMs: 3_600_000,
});

/** What a retry decision reads of a failure (a `ConnectorError` is one). */
export interface RetrySignal {
  retryable: boolean;
  retryAfterMs?: number | undefined;
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false };

/** The backoff after failed attempt number `attempt` (1-based), jitter included: machines/lib's one formula. */
export function backoffMs(policy: Pick<RetryPolicy, 'initialMs' | 'factor' | 'maxMs' | 'jitter' | 'random'>, attempt: number): number {
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  const random = jitter === 0 ? undefined : (policy.random ?? Math.random)();
  return backoffDelay({ initialMs: policy.initialMs, multiplier: policy.factor, maxMs: policy.maxMs, jitter }, Math.max(1, Math.floor(attempt)), random);
}

/** Whether to try again after failed attempt number `attempt` (1-based), and when. */
export function decideRetry(failure: RetrySignal, attempt: number, policy: RetryPolicy): RetryDecision {
  if (!failure.retryable || attempt >= policy.maxAttempts) return { retry: false };
  const backoff = backoffMs(policy, attempt);
  const asked = Math.min(Math.max(0, failure.retryAfterMs ?? 0), policy.maxRetryAfterMs);
  return { retry: true, delayMs: Math.max(backoff, asked) };
}
