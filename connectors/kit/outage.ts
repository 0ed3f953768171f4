/**
 * What one attempt's outcome says about the provider, for a circuit breaker: `down` (it did not
 * answer usefully: 5xx, timeout, network, an unrecognised failure) counts toward opening the
 * breaker; any answer that shows the provider up (success, a refusal, a throttle, a 401) resets
 * the count. Pure.
 */
import { ConnectorCode, type ConnectorError } from './errors.js';

/** The code a call fails fast with while its breaker is open (retryable, `retryAfterMs` = time to half-open). */
export const CIRCUIT_OPEN = 'CIRCUIT_OPEN';

const DOWN = new Set<string>([ConnectorCode.Unavailable, ConnectorCode.Timeout, ConnectorCode.Network, ConnectorCode.Unknown]);

export type Health = 'up' | 'down';

/** Whether a failure counts against the provider's availability. */
export function healthOf(failure: Pick<ConnectorError, 'code'> | null): Health {
  return failure !== null && DOWN.has(failure.code) ? 'down' : 'up';
}

/** How long a throttled answer asks the key to stop (a 429, Retry-After, Shopify's THROTTLED): 0 when it is not one. */
export function pauseOf(failure: Pick<ConnectorError, 'code' | 'retryAfterMs'> | null): number {
  if (failure === null || failure.code !== ConnectorCode.RateLimited) return 0;
  return Math.max(1, failure.retryAfterMs ?? 1_000);
}
