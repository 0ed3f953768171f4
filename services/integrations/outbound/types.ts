import type { ConnectorError } from '../../../connectors/kit/index.js';
import type { Provider } from '../../../machines/integration/index.js';

/**
 * The one door every call out to a provider goes through (issue 17): the proactive rate budget
 * per (tenant, provider), the retry policy, the circuit breaker, refresh-on-401 and the dead
 * letters. Inventory sync, health checks and playbook steps call providers only through it.
 */

/** Which connection a call acts for. */
export interface ConnectionRef {
  tenantId: string;
  provider: Provider;
  /** The provider account (Shopify shop domain, MercadoLibre user id, generic account name). */
  account: string;
}

export interface OutboundCall {
  /** The connector operation, e.g. `setInventory` (a key of the connector's `calls`). */
  operation: string;
  input: unknown;
  /** Stable across retries and across restarts of the caller (sent where the provider dedupes). */
  idempotencyKey: string;
  /** Budget units the call takes (Shopify: its requested query cost; default 1). */
  cost?: number;
  /**
   * The HTTP requests the call makes to the provider (default 1): what a request budget counts.
   * MercadoLibre's stock write is 2 (the read that checks the expected stock, then the PUT).
   */
  requests?: number;
  /** What the call is about, for the dead letter and the logs (e.g. `{ sku }`). */
  subject?: Record<string, string>;
  /** When the retries are used up, park the call as a dead letter (default true). */
  deadLetter?: boolean;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BudgetStatus {
  /** e.g. `4/s:40` */
  limit: string;
  usedInWindow: number;
  throttledCalls: number;
  /** The usage window `usedInWindow` and `throttledCalls` count in (OUTBOUND_STATS_WINDOW_MS). */
  windowSeconds?: number;
  /** What the budget is counted per: `account` (Shopify: the store), `tenant`, or `app`. */
  scope?: string;
}

export interface BreakerStatus {
  state: BreakerState;
  consecutiveFailures: number;
  openedAt: string | null;
}

export interface OutboundStatus {
  budget: BudgetStatus;
  breaker: BreakerStatus;
  /** Over the last 5 minutes. */
  errorRate: number;
  averageResponseMs: number | null;
  /** Calls made over the last 5 minutes (the error rate's denominator). */
  calls?: number;
  /** `degraded` while the error rate is over the alert threshold (5%). */
  health?: 'healthy' | 'degraded';
  /** Open dead letters of this connection's calls. */
  deadLetters?: number;
}

export interface OutboundCalls {
  /**
   * Runs one call under the budget, breaker and retry policy. Resolves with the connector's
   * output; rejects with a `ConnectorError` (code `CIRCUIT_OPEN` while the breaker is open,
   * otherwise the provider's classified failure after the retries).
   */
  call<T = unknown>(connection: ConnectionRef, call: OutboundCall, signal?: AbortSignal): Promise<T>;
  status(connection: ConnectionRef): Promise<OutboundStatus>;
}

export type OutboundFailure = ConnectorError;
