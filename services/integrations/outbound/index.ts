import { setMaxListeners } from 'node:events';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import type { ConnectorInvoker } from '../../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../../connectors/kit/errors.js';
import type { Config } from '../../../runtime/config.js';
import type { DeadLetter } from '../../../runtime/dead-letters.js';
import type { Logger } from '../../../runtime/logger.js';
import type { ConnectionService } from '../connections.js';
import type { CredentialVault } from '../vault.js';
import { OutboundDeadLetters, OUTBOUND_ORIGIN } from './dead-letters.js';
import { OutboundDoor, type ConnectionControl } from './door.js';
import { ProviderConnectors } from './providers.js';
import type { ConnectionRef, OutboundCall, OutboundCalls, OutboundStatus } from './types.js';
import { checkHealth, type HealthChange } from './usage.js';

export type { ConnectionRef, OutboundCall, OutboundCalls, OutboundStatus } from './types.js';
export { OUTBOUND_ORIGIN } from './dead-letters.js';
export { OutboundDoor } from './door.js';

export interface OutboundServiceOptions {
  pool: pg.Pool;
  config: Config;
  vault: CredentialVault;
  connections: ConnectionControl;
  log: Logger;
  random?: () => number;
  /** How often the error-rate alert is checked (default 5 s). */
  healthCheckMs?: number;
  /** How often usage counts are written (default 1 s). */
  flushMs?: number;
  refreshTimeoutMs?: number;
  probeLeaseMs?: number;
}

/** Usage rows older than this are pruned. */
const USAGE_RETENTION_MS = 7 * 86_400_000;

/**
 * `services.outbound`: the outbound call door
 * (./door.ts) with what runs around it: usage counts written every second, the error-rate alert
 * checked every 5 seconds, replays of parked calls, the status figures and `/metrics`.
 *
 * @example
 * const out = await services.outbound.call({ tenantId, provider: 'shopify', account: shop },
 *   { operation: 'setQuantities', input, idempotencyKey: `sync:${syncId}:${sku}`, subject: { sku } });
 */
export class OutboundService implements OutboundCalls {
  readonly door: OutboundDoor;
  readonly deadLetters: OutboundDeadLetters;
  readonly #o: OutboundServiceOptions;
  #flush: NodeJS.Timeout | undefined;
  #health: NodeJS.Timeout | undefined;
  #replays = new Set<Promise<unknown>>();
  #stopping: AbortController | undefined;
  #lastPrune = 0;

  constructor(o: OutboundServiceOptions) {
    this.#o = o;
    this.deadLetters = new OutboundDeadLetters(o.pool);
    this.door = new OutboundDoor({
      pool: o.pool,
      config: o.config.outbound,
      connectors: new ProviderConnectors(o.vault, o.config),
      connections: o.connections,
      deadLetters: this.deadLetters,
      log: o.log,
      callTimeoutMs: o.config.connectorCallTimeoutMs,
      ...(o.random ? { random: o.random } : {}),
      ...(o.refreshTimeoutMs !== undefined ? { refreshTimeoutMs: o.refreshTimeoutMs } : {}),
      ...(o.probeLeaseMs !== undefined ? { probeLeaseMs: o.probeLeaseMs } : {}),
    });
  }

  call<T = unknown>(connection: ConnectionRef, call: OutboundCall, signal?: AbortSignal): Promise<T> {
    const s = this.#stopping?.signal;
    return this.door.call<T>(connection, call, signal && s ? AbortSignal.any([signal, s]) : (signal ?? s));
  }

  async status(connection: ConnectionRef): Promise<OutboundStatus> {
    const [s, deadLetters] = await Promise.all([this.door.status(connection), this.deadLetters.count(connection.tenantId, connection.provider, connection.account)]);
    return { ...s, deadLetters };
  }

  /**
   * Replays a parked call (a dead letter of origin `outbound`): marks it replayed and runs it
   * through the door again in the background, with its idempotency key; if it fails again, it
   * is parked again as a new dead letter. Answers null for a letter that is not an open
   * outbound one.
   */
  async replay(id: number): Promise<DeadLetter | null> {
    const claimed = await this.deadLetters.claim(id);
    if (!claimed) return null;
    const { connection, call } = claimed.parked;
    const run = this.call(connection, call)
      .then(() => this.#o.log.info({ deadLetter: id, provider: connection.provider, tenantId: connection.tenantId }, 'replayed outbound call succeeded'))
      .catch((err: unknown) => this.#o.log.warn({ deadLetter: id, provider: connection.provider, tenantId: connection.tenantId, code: (err as { code?: string }).code }, 'replayed outbound call failed'))
      .finally(() => this.#replays.delete(run));
    this.#replays.add(run);
    return claimed.letter;
  }

  /**
   * The door as the runtime's `outbound` connector, for machines: an effect
   * `callConnector('outbound', '<operation>', { connection, input, cost?, subject?, deadLetter? })`
   * runs `<operation>` of the connection's provider through the door, with the effect's
   * idempotency key and deadline; the outcome returns to the actor as `outbound.<operation>.done`
   * or `.failed` (a `CIRCUIT_OPEN` failure carries `retryAfterMs`).
   */
  invoker(): ConnectorInvoker {
    return async (operation, raw, ctx) => {
      const x = (raw ?? {}) as { connection?: ConnectionRef; input?: unknown; cost?: number; subject?: Record<string, string>; deadLetter?: boolean };
      const c = x.connection;
      if (!c || typeof c.tenantId !== 'string' || typeof c.account !== 'string' || !['shopify', 'mercadolibre', 'generic'].includes(c.provider)) {
        throw new ConnectorError(ConnectorCode.Validation, "outbound: the input needs { connection: { tenantId, provider, account }, input }");
      }
      return this.call(c, { operation, input: x.input ?? {}, idempotencyKey: ctx.idempotencyKey, ...(x.cost !== undefined ? { cost: x.cost } : {}), ...(x.subject ? { subject: x.subject } : {}), ...(x.deadLetter !== undefined ? { deadLetter: x.deadLetter } : {}) }, ctx.signal);
    };
  }

  /** Whether a dead letter is one of the door's (replayed by `replay`). */
  owns(letter: { origin: string }): boolean {
    return letter.origin === OUTBOUND_ORIGIN;
  }

  /** Writes usage counts now (tests and shutdown). */
  flush(): Promise<void> {
    return this.door.usage.flush();
  }

  /** Checks the error-rate alert now (tests); answers the keys whose health changed. */
  async checkHealth(): Promise<HealthChange[]> {
    await this.flush();
    const c = this.#o.config;
    return checkHealth(this.#o.pool, { errorRate: c.outbound.alertErrorRate, windowMs: c.outbound.alertWindowMs, minCalls: c.outbound.alertMinCalls, eventsRoot: `${c.nats.prefix}.events`, partitions: c.partitions }, this.#o.log);
  }

  start(): void {
    this.#stopping = new AbortController();
    setMaxListeners(0, this.#stopping.signal); // every call in flight listens for the stop
    const { log } = this.#o;
    this.#flush = setInterval(() => {
      this.flush().catch((err: unknown) => log.warn({ err }, 'writing outbound usage failed'));
      if (Date.now() - this.#lastPrune > 3_600_000) {
        this.#lastPrune = Date.now();
        this.#o.pool
          .query('DELETE FROM integration_rate_limits WHERE window_start < $1', [new Date(Date.now() - USAGE_RETENTION_MS)])
          .catch((err: unknown) => log.warn({ err }, 'pruning outbound usage failed'));
      }
    }, this.#o.flushMs ?? 1_000);
    this.#flush.unref();
    this.#health = setInterval(() => {
      this.checkHealth().catch((err: unknown) => log.warn({ err }, 'checking integration health failed'));
    }, this.#o.healthCheckMs ?? 5_000);
    this.#health.unref();
  }

  /** Stops the loops, aborts calls still waiting (their budget wait or backoff), waits for replays, writes the last counts. */
  async stop(): Promise<void> {
    clearInterval(this.#flush);
    clearInterval(this.#health);
    this.#stopping?.abort(new Error('shutting down'));
    await Promise.allSettled([...this.#replays]);
    await this.flush().catch((err: unknown) => this.#o.log.warn({ err }, 'writing outbound usage failed'));
  }

  /** The door's figures in Prometheus: labelled by provider only (tenants are unbounded). */
  registerMetrics(registry: MetricsRegistry): void {
    const pool = this.#o.pool;
    const calls = new Counter({ name: 'concord_outbound_calls_total', help: 'Calls to providers by outcome (this process): ok, failed, throttled, circuit_open', labelNames: ['provider', 'outcome'] as const, registers: [registry] });
    const duration = new Histogram({
      name: 'concord_outbound_call_duration_seconds',
      help: 'Response time of calls to providers (this process)',
      labelNames: ['provider'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    });
    const waits = new Counter({ name: 'concord_outbound_budget_wait_seconds_total', help: 'Time calls waited for their rate budget (this process)', labelNames: ['provider'] as const, registers: [registry] });
    this.door.observe({
      attempt: (provider, outcome, seconds) => {
        calls.inc({ provider, outcome });
        duration.observe({ provider }, seconds);
      },
      fastFailed: (provider) => calls.inc({ provider, outcome: 'circuit_open' }),
      budgetWait: (provider, seconds) => waits.inc({ provider }, seconds),
    });
    let shared: { at: number; rows: Promise<Array<{ provider: string; breaker_state: string; health: string; n: number }>> } | undefined;
    const keys = () => {
      if (!shared || Date.now() - shared.at > 500) {
        shared = {
          at: Date.now(),
          rows: pool
            .query<{ provider: string; breaker_state: string; health: string; n: number }>('SELECT provider, breaker_state, health, count(*)::int AS n FROM integration_outbound GROUP BY 1, 2, 3')
            .then((r) => r.rows),
        };
      }
      return shared.rows;
    };
    new Gauge({
      name: 'concord_outbound_breakers',
      help: 'Budget keys (tenant, provider[, account]) by circuit breaker state, all processes',
      labelNames: ['provider', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await keys()) this.inc({ provider: r.provider, state: r.breaker_state }, r.n);
      },
    });
    new Gauge({
      name: 'concord_outbound_degraded',
      help: 'Budget keys whose error rate is over the alert threshold, all processes',
      labelNames: ['provider'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const r of await keys()) if (r.health === 'degraded') this.inc({ provider: r.provider }, r.n);
      },
    });
    const windowMs = this.#o.config.outbound.alertWindowMs;
    new Gauge({
      name: 'concord_outbound_error_rate',
      help: 'Failed calls / calls over the alert window (5 minutes), all processes',
      labelNames: ['provider'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const { rows } = await pool.query<{ provider: string; calls: number; errors: number }>(
          'SELECT provider, sum(calls)::int AS calls, sum(errors)::int AS errors FROM integration_rate_limits WHERE window_start > now() - make_interval(secs => $1 / 1000.0) GROUP BY 1',
          [windowMs],
        );
        for (const r of rows) this.set({ provider: r.provider }, r.calls > 0 ? r.errors / r.calls : 0);
      },
    });
    new Gauge({
      name: 'concord_outbound_dead_letters',
      help: 'Parked outbound calls not replayed, all processes',
      labelNames: ['provider'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const { rows } = await pool.query<{ provider: string; n: number }>(
          `SELECT headers->>'Concord-Provider' AS provider, count(*)::int AS n FROM dead_letters WHERE origin = $1 AND replayed_at IS NULL GROUP BY 1`,
          [OUTBOUND_ORIGIN],
        );
        for (const r of rows) this.set({ provider: r.provider ?? 'unknown' }, r.n);
      },
    });
  }
}

/** The connection actors as the door needs them. */
export function connectionControl(integrations: ConnectionService): ConnectionControl {
  return {
    requestRefresh: (t, p, a, reason, seen) => integrations.requestRefresh(t, p, a, reason, seen),
    stateOf: (t, p, a) => integrations.stateOf(t, p, a),
    markReauthorizationRequired: (t, p, a, e) => integrations.markReauthorizationRequired(t, p, a, e),
  };
}
