import type pg from 'pg';
import type { RateLimit } from '../../../connectors/kit/rate-limit.js';
import type { BreakerState } from './types.js';

/**
 * The door's shared state in PostgreSQL (migrations/0011_integration_rate_limits.sql): one row of
 * `integration_outbound` per budget key, read and written only through the two functions there,
 * each one statement under the row's lock, so every Concord process sees one bucket and one
 * breaker per key.
 */

/** A budget key: (tenant, provider, scope), scope '' for per-tenant budgets. */
export interface BudgetKey {
  tenantId: string;
  provider: string;
  scope: string;
}

export interface Admission {
  outcome: 'go' | 'probe' | 'wait' | 'open';
  /** For `wait` and `open`: how long (ms). */
  waitMs: number;
  breaker: BreakerState;
  failures: number;
  /** For `go` and `probe` on a key with a budget: the call's lease, ended by `done` (the bucket is spent then). */
  callId: string | null;
}

export interface Report {
  /** `up`: the provider answered (success, or a refusal); `down`: it did not. */
  health: 'up' | 'down';
  probe: boolean;
  threshold: number;
  cooldownMs: number;
  /** Stop the key this long (429, Retry-After, THROTTLED); 0: no pause. */
  pauseMs: number;
  /** Shopify's cost bucket as just reported. */
  points?: { available: number; maximum: number; restorePerSecond: number } | undefined;
}

export interface ReportOutcome {
  breaker: BreakerState;
  failures: number;
  openedAt: string | null;
  changed: boolean;
}

export interface KeyRow {
  breaker: BreakerState;
  failures: number;
  openedAt: string | null;
  halfOpenAt: string | null;
  health: 'healthy' | 'degraded';
  tokens: number;
  pausedUntil: string | null;
  /** Shopify's cost bucket as last reported: points then, their maximum, restored per second, when (epoch ms). */
  points: { available: number; maximum: number; restorePerSecond: number; at: number } | null;
}

export class OutboundStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * One call's way through the key: go, probe (the one half-open call), wait (ms), or open (ms to
   * half-open). A call that may go on a key with a budget holds a lease until `done` (or, if its
   * process dies, until `leaseMs` has passed): the bucket is spent when the call ends, so the
   * provider, counting arrivals, never sees more than the bucket allows (migrations/0017).
   */
  async take(key: BudgetKey, limit: RateLimit | null, cost: number, probeMs: number, leaseMs: number, requests = 1): Promise<Admission> {
    const { rows } = await this.pool.query<{ outcome: Admission['outcome']; wait_ms: number; breaker: BreakerState; failures: number; call_id: string | null }>({
      name: 'concord_outbound_take_units',
      text: 'SELECT outcome, wait_ms, breaker, failures, call_id FROM integration_outbound_take($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      values: [key.tenantId, key.provider, key.scope, limit?.capacity ?? null, limit?.refillPerSecond ?? null, cost, probeMs, Math.ceil(leaseMs), requests],
    });
    const r = rows[0]!;
    return { outcome: r.outcome, waitMs: r.wait_ms, breaker: r.breaker, failures: r.failures, callId: r.call_id };
  }

  /** Ends a call's lease (answered, failed or given up: it can no longer reach the provider). */
  async done(key: BudgetKey, callId: string): Promise<void> {
    await this.pool.query({
      name: 'concord_outbound_done',
      text: 'SELECT integration_outbound_done($1, $2, $3, $4)',
      values: [key.tenantId, key.provider, key.scope, callId],
    });
  }

  /** Records one attempt's outcome on the key's breaker, pause and cost bucket. */
  async report(key: BudgetKey, r: Report): Promise<ReportOutcome | null> {
    const { rows } = await this.pool.query<{ breaker: BreakerState; failures: number; opened_at: Date | null; changed: boolean }>({
      name: 'concord_outbound_report',
      text: 'SELECT breaker, failures, opened_at, changed FROM integration_outbound_report($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      values: [
        key.tenantId,
        key.provider,
        key.scope,
        r.health === 'up' ? 'ok' : 'failed',
        r.probe,
        r.threshold,
        r.cooldownMs,
        Math.ceil(r.pauseMs),
        r.points?.available ?? null,
        r.points?.maximum ?? null,
        r.points?.restorePerSecond ?? null,
      ],
    });
    const x = rows[0];
    return x ? { breaker: x.breaker, failures: x.failures, openedAt: x.opened_at?.toISOString() ?? null, changed: x.changed } : null;
  }

  async row(key: BudgetKey): Promise<KeyRow | null> {
    const { rows } = await this.pool.query<{
      breaker_state: BreakerState;
      consecutive_failures: number;
      opened_at: Date | null;
      half_open_at: Date | null;
      health: 'healthy' | 'degraded';
      tokens: number;
      paused_until: Date | null;
      points: number | null;
      points_max: number | null;
      points_restore: number | null;
      points_at: Date | null;
    }>(
      `SELECT breaker_state, consecutive_failures, opened_at, half_open_at, health, tokens, paused_until, points, points_max, points_restore, points_at
         FROM integration_outbound WHERE tenant_id = $1 AND provider = $2 AND scope = $3`,
      [key.tenantId, key.provider, key.scope],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      breaker: r.breaker_state,
      failures: r.consecutive_failures,
      openedAt: r.opened_at?.toISOString() ?? null,
      halfOpenAt: r.half_open_at?.toISOString() ?? null,
      health: r.health,
      tokens: r.tokens,
      pausedUntil: r.paused_until?.toISOString() ?? null,
      points: r.points !== null && r.points_at ? { available: r.points, maximum: r.points_max ?? r.points, restorePerSecond: r.points_restore ?? 0, at: r.points_at.getTime() } : null,
    };
  }

  /** Usage of a key since `sinceMs` (epoch ms), from `integration_rate_limits`. */
  async usage(key: BudgetKey, sinceMs: number): Promise<{ calls: number; errors: number; throttled: number; responseMsTotal: number }> {
    const { rows } = await this.pool.query<{ calls: number; errors: number; throttled: number; ms: number }>(
      `SELECT coalesce(sum(calls), 0)::int AS calls, coalesce(sum(errors), 0)::int AS errors, coalesce(sum(throttled), 0)::int AS throttled,
              coalesce(sum(response_ms_total), 0)::float8 AS ms
         FROM integration_rate_limits WHERE tenant_id = $1 AND provider = $2 AND scope = $3 AND window_start >= $4`,
      [key.tenantId, key.provider, key.scope, new Date(sinceMs)],
    );
    const r = rows[0]!;
    return { calls: r.calls, errors: r.errors, throttled: r.throttled, responseMsTotal: r.ms };
  }
}
