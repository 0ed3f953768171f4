import { setTimeout as sleep } from 'node:timers/promises';
import { isConnectorError, type ConnectorError } from '../../../connectors/kit/errors.js';
import { CIRCUIT_OPEN, healthOf, pauseOf } from '../../../connectors/kit/outage.js';
import { parseRateLimit, type RateLimit } from '../../../connectors/kit/rate-limit.js';
import type { OutboundStore } from '../../integrations/outbound/store.js';
import { StepError } from './types.js';

/**
 * Budgets and breakers for `communicate`, on the outbound door's shared state
 * (`integration_outbound`, services/integrations/outbound/store.ts): one key per (tenant,
 * provider, account), so every Concord process sees one token bucket, one pause after a 429 and
 * one circuit breaker per connection, as for the marketplace connectors. The door itself binds
 * only the integration machine's providers; the messaging providers use its store directly.
 *
 * Before a call: take from the key (a short wait is slept, a long one or an open breaker fails
 * the attempt as retryable with the wait, so the engine's retry policy waits on a durable timer).
 * After: report the outcome (a 5xx, timeout or network failure counts toward the breaker; a 429
 * pauses the key for its Retry-After).
 */

/** Proactive budgets where the provider documents one (override with `RATE_LIMITS`, e.g. `slack=1/s:3`). */
export const MESSAGING_RATE_LIMITS: Readonly<Record<string, string>> = Object.freeze({
  teams: '4/s:4', // Teams incoming webhooks: more than 4 requests a second are throttled
  slack: '1/s:5', // chat.postMessage: about one message a second per channel, short bursts allowed
});

export interface GuardOptions {
  store: OutboundStore;
  breakerThreshold: number;
  breakerCooldownMs: number;
  /** `config.outbound.rateLimits` (RATE_LIMITS); a provider not named there uses MESSAGING_RATE_LIMITS. */
  rateLimits?: Readonly<Record<string, RateLimit | null>>;
  /** Waits up to this long for the budget inside the attempt (default 2 s); longer fails it as retryable. */
  maxWaitMs?: number;
  probeLeaseMs?: number;
  /** How long a call's budget lease lasts if its process dies before ending it (default 2 min; longer than the step's deadline). */
  leaseMs?: number;
}

export type Guard = <T>(key: { tenantId: string; provider: string; account: string }, work: () => Promise<T>, signal: AbortSignal) => Promise<T>;

export function createGuard(o: GuardOptions): Guard {
  const limits = new Map<string, RateLimit | null>();
  const limitOf = (provider: string): RateLimit | null => {
    if (o.rateLimits && Object.hasOwn(o.rateLimits, provider)) return o.rateLimits[provider] ?? null;
    if (!limits.has(provider)) limits.set(provider, MESSAGING_RATE_LIMITS[provider] ? parseRateLimit(MESSAGING_RATE_LIMITS[provider]!, 'account') : null);
    return limits.get(provider)!;
  };
  const maxWait = o.maxWaitMs ?? 2_000;
  return async (k, work, signal) => {
    const key = { tenantId: k.tenantId, provider: k.provider, scope: k.account };
    const limit = limitOf(k.provider);
    let probe: boolean;
    let callId: string | null;
    for (let waited = 0; ; ) {
      const a = await o.store.take(key, limit, 1, o.probeLeaseMs ?? 30_000, o.leaseMs ?? 120_000);
      if (a.outcome === 'go' || a.outcome === 'probe') {
        probe = a.outcome === 'probe';
        callId = a.callId;
        break;
      }
      if (a.outcome === 'open') {
        throw new StepError(CIRCUIT_OPEN, `${k.provider}: the circuit breaker is ${a.breaker === 'half_open' ? 'half-open and its probe is running' : 'open'} after ${a.failures} consecutive failures`, true, a.waitMs);
      }
      if (waited + a.waitMs > maxWait) throw new StepError('RATE_LIMITED', `${k.provider}: the connection's budget is spent for ${a.waitMs} ms`, true, a.waitMs);
      waited += a.waitMs;
      await sleep(a.waitMs, undefined, { signal });
    }
    let failure: ConnectorError | null = null;
    try {
      return await work();
    } catch (err) {
      if (isConnectorError(err)) failure = err;
      throw err;
    } finally {
      // the call is over: its lease ends (the bucket is spent now, as the door does)
      if (callId !== null) await o.store.done(key, callId).catch(() => undefined);
      // every outcome: an answer (even a refusal) ends a run of failures, a 5xx or timeout extends it
      await o.store
        .report(key, { health: healthOf(failure), probe, threshold: o.breakerThreshold, cooldownMs: o.breakerCooldownMs, pauseMs: pauseOf(failure) })
        .catch(() => undefined);
    }
  };
}
