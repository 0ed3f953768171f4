import { describe, expect, it } from 'vitest';
import { classifyResponse } from '../../connectors/kit/classify.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';
import { backoffMs, decideRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../connectors/kit/retry.js';

const policy: RetryPolicy = { maxAttempts: 6, initialMs: 100, factor: 2, maxMs: 1_000, jitter: 0, maxRetryAfterMs: 60_000 };
const transient = new ConnectorError(ConnectorCode.Unavailable, 'down');

describe('decideRetry', () => {
  it('backs off exponentially up to the cap, and stops after maxAttempts', () => {
    expect([1, 2, 3, 4, 5].map((n) => decideRetry(transient, n, policy))).toEqual([100, 200, 400, 800, 1_000].map((delayMs) => ({ retry: true, delayMs })));
    expect(decideRetry(transient, 6, policy)).toEqual({ retry: false });
    expect(decideRetry(transient, 7, policy)).toEqual({ retry: false });
    expect(decideRetry(transient, 1, { ...policy, maxAttempts: 1 })).toEqual({ retry: false });
  });

  it('never retries a terminal failure, whatever attempts are left', () => {
    for (const status of [400, 401, 403, 404, 409, 422]) expect(decideRetry(classifyResponse({ status }), 1, policy), String(status)).toEqual({ retry: false });
    expect(decideRetry(new ConnectorError('CARD_DECLINED', 'no', { retryable: false }), 1, policy)).toEqual({ retry: false });
  });

  it('Retry-After wins over the backoff when longer, and is capped at maxRetryAfterMs', () => {
    const throttled = classifyResponse({ status: 429, headers: { 'retry-after': '5' } }, { now: 0 });
    expect(decideRetry(throttled, 1, policy)).toEqual({ retry: true, delayMs: 5_000 });
    // shorter than the backoff: the backoff stands
    expect(decideRetry({ retryable: true, retryAfterMs: 50 }, 3, policy)).toEqual({ retry: true, delayMs: 400 });
    expect(decideRetry({ retryable: true, retryAfterMs: 86_400_000 }, 1, policy)).toEqual({ retry: true, delayMs: 60_000 });
    // Retry-After does not buy attempts
    expect(decideRetry(throttled, 6, policy)).toEqual({ retry: false });
  });

  it('takes jitter off the backoff from the injected random source, never off Retry-After', () => {
    const jittered = (r: number): RetryPolicy => ({ ...policy, jitter: 0.5, random: () => r });
    expect(decideRetry(transient, 3, jittered(0))).toEqual({ retry: true, delayMs: 400 });
    expect(decideRetry(transient, 3, jittered(0.5))).toEqual({ retry: true, delayMs: 300 });
    expect(decideRetry(transient, 3, jittered(0.999))).toEqual({ retry: true, delayMs: 200 });
    expect(decideRetry({ retryable: true, retryAfterMs: 2_000 }, 3, jittered(0.999))).toEqual({ retry: true, delayMs: 2_000 });
    const full = { ...policy, jitter: 1, random: () => 0.25 };
    expect(backoffMs(full, 4)).toBe(600);
  });

  it('stays finite for any attempt number, and the default policy is sane', () => {
    expect(backoffMs(policy, 10_000)).toBe(1_000);
    expect(backoffMs(policy, 0)).toBe(100);
    expect(decideRetry(transient, 1, DEFAULT_RETRY_POLICY)).toEqual({ retry: true, delayMs: DEFAULT_RETRY_POLICY.initialMs });
  });
});
