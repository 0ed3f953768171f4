import type { RetryPolicy } from '../steps/retry.js';
import type { StepAction, StepInit } from './types.js';

/** What a step's `configuration` asks for: its action, condition, timeout and retry policy. */

const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 3_600_000;

/** The automated action of a step; null for a manual step. */
export const actionOf = (s: Pick<StepInit, 'configuration'>): StepAction | null => {
  const a = s.configuration?.action as StepAction | undefined;
  return a && typeof a === 'object' && (a.type === 'publish' || a.type === 'connector') ? a : null;
};

/** The condition that skips the step when false; null for none. */
export const conditionOf = (s: StepInit): string | null => (typeof s.configuration?.condition === 'string' ? s.configuration.condition : null);

const numberConf = (s: StepInit, key: string, def: number): number => {
  const v = s.configuration?.[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : def;
};

/** How long one attempt of an automated step may wait for its answer. */
export const timeoutOf = (s: StepInit): number => numberConf(s, 'timeoutMs', DEFAULT_TIMEOUT_MS);

/** Retries allowed: the step's maxRetries, else 3 for automated steps and 0 for manual ones. */
export const retriesOf = (s: StepInit): number => s.maxRetries ?? (actionOf(s) ? 3 : 0);

/** The step's retry policy: `retryBackoffMs` (30 s by default) doubling per retry, at most an hour. */
export const retryPolicyOf = (s: StepInit): RetryPolicy => ({
  maxRetries: retriesOf(s),
  backoff: { initialMs: numberConf(s, 'retryBackoffMs', DEFAULT_BACKOFF_MS), multiplier: 2, maxMs: MAX_BACKOFF_MS },
});
