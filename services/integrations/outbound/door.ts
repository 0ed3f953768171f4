import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { ConnectorCode, ConnectorError, isConnectorError } from '../../../connectors/kit/errors.js';
import { classify } from '../../../connectors/kit/classify.js';
import { CIRCUIT_OPEN, healthOf, pauseOf } from '../../../connectors/kit/outage.js';
import { RATE_SCOPES, type RateLimit } from '../../../connectors/kit/rate-limit.js';
import { decideRetry, type RetryPolicy } from '../../../connectors/kit/retry.js';
import { connectionId } from '../../../machines/integration/index.js';
import type { OutboundConfig } from '../../../runtime/config.js';
import type { Logger } from '../../../runtime/logger.js';
import { ProviderConnectors, type BoundConnector } from './providers.js';
import { OutboundStore, type BudgetKey, type KeyRow } from './store.js';
import type { ConnectionRef, OutboundCall, OutboundCalls, OutboundStatus } from './types.js';
import { UsageRecorder } from './usage.js';

/** What the door needs of the connection actors: the one refresh per connection, and marking a dead grant. */
export interface ConnectionControl {
  /** Asks the connection to refresh its token (one refresh however many ask, across processes). */
  /** `seenVersion`: the credential version the refused call used (a newer one means the refresh already happened). */
  requestRefresh(tenantId: string, provider: ConnectionRef['provider'], account: string, reason?: string, seenVersion?: number): Promise<void>;
  /** The connection's state now (`reauthorization_required` ends a wait for a refresh). */
  stateOf(tenantId: string, provider: ConnectionRef['provider'], account: string): Promise<string | null>;
  /** Marks the connection `reauthorization_required` (a call answered that only a person can fix it). */
  markReauthorizationRequired(tenantId: string, provider: ConnectionRef['provider'], account: string, error: { code: string; message: string }): Promise<void>;
}

/** Where a call that used up its retries is parked (`dead_letters`, origin `outbound`). */
export interface DeadLetterSink {
  park(connection: ConnectionRef, call: OutboundCall, error: ConnectorError, attempts: number): Promise<void>;
}

/** Figures of this process, for `/metrics`. */
export interface DoorObserver {
  attempt(provider: string, outcome: 'ok' | 'failed' | 'throttled', seconds: number): void;
  fastFailed(provider: string): void;
  budgetWait(provider: string, seconds: number): void;
}

/**
 * What the door consults besides its own state (set by `createServices`; the partner registry
 * answers both): a connection's share of its provider's budget (its tier's), and each attempt
 * made, for usage analytics (counted in memory: the hook must not block).
 */
export interface DoorHooks {
  /** The share, in (0, 1], of the provider budget this connection's calls may take; 1: all of it. */
  shareOf?(connection: ConnectionRef): number | Promise<number>;
  attempted?(connection: ConnectionRef, call: OutboundCall, outcome: { ok: boolean; ms: number; cost: number }): void;
}

export interface DoorOptions {
  pool: pg.Pool;
  config: OutboundConfig;
  connectors: ProviderConnectors;
  connections: ConnectionControl;
  deadLetters: DeadLetterSink;
  log: Logger;
  /** One attempt's deadline (CONNECTOR_CALL_TIMEOUT_MS): past it the attempt fails with a retryable TIMEOUT. */
  callTimeoutMs: number;
  /** In [0, 1): the jitter's random source (tests pass their own). */
  random?: () => number;
  /** Longest wait for a refreshed token after a 401 (default 30 s). */
  refreshTimeoutMs?: number;
  /** How long the one half-open probe may run before another process may probe (default 30 s). */
  probeLeaseMs?: number;
}

/**
 * The outbound call door (issue 17): every call to a provider passes, in order,
 *
 * 1. the circuit breaker of its budget key (open: fail fast with `CIRCUIT_OPEN`, retryable, with
 *    the time to half-open; half-open: exactly one probe call across all processes);
 * 2. the proactive budget (a token bucket per key in PostgreSQL, taken atomically per call, and
 *    Shopify's cost bucket as last reported): the call waits for its token, never over budget;
 * 3. the provider's connector with the connection's credentials from the vault;
 * 4. the outcome: a 429 / Retry-After / THROTTLED pauses and drains the key; a 401 refreshes the
 *    token once (concurrent calls share the refresh) and tries again; a retryable failure is
 *    tried again after `decideRetry`'s backoff (Retry-After wins), terminal ones are not;
 *    `REAUTHORIZATION_REQUIRED` marks the connection; a call that still fails is parked as a
 *    dead letter (unless `deadLetter: false`).
 *
 * The key is (tenant, provider, scope): scope is the account for providers budgeted per account
 * (Shopify: per store) and '' for those budgeted per tenant (MercadoLibre).
 */
export class OutboundDoor implements OutboundCalls {
  readonly store: OutboundStore;
  readonly usage: UsageRecorder;
  readonly #policy: RetryPolicy;
  readonly #refreshing = new Map<string, Promise<void>>();
  /** Breaker failures last seen per key: a success needs to report only when this is not 0. */
  readonly #lastFailures = new Map<string, number>();
  /** Keys without a budget: their row as last read (at most VIEW_MS old), so a call needs no row lock while all is well. */
  readonly #views = new Map<string, { at: number; row: Promise<KeyRow | null> }>();
  /** Per key: the last caller in line for the row (one asks at a time in this process). */
  readonly #turns = new Map<string, Promise<void>>();
  #observer: DoorObserver | undefined;
  #hooks: DoorHooks = {};

  constructor(private readonly o: DoorOptions) {
    this.store = new OutboundStore(o.pool);
    this.usage = new UsageRecorder(o.pool, o.config.statsWindowMs);
    this.#policy = {
      maxAttempts: o.config.maxAttempts,
      initialMs: o.config.retryInitialMs,
      factor: 2,
      maxMs: o.config.retryMaxMs,
      jitter: o.config.retryJitter,
      maxRetryAfterMs: 15 * 60_000,
      random: o.random ?? Math.random,
    };
  }

  observe(observer: DoorObserver): void {
    this.#observer = observer;
  }

  hooks(hooks: DoorHooks): void {
    this.#hooks = hooks;
  }

  /** The budget of a provider (null: none). */
  limitOf(provider: string): RateLimit | null {
    return this.o.config.rateLimits[provider] ?? null;
  }

  /** The budget key a connection's calls count against. */
  keyOf(c: ConnectionRef): BudgetKey {
    const scope = this.limitOf(c.provider)?.scope ?? RATE_SCOPES[c.provider] ?? 'account';
    return { tenantId: c.tenantId, provider: c.provider, scope: scope === 'account' ? c.account : scope === 'app' ? '*' : '' };
  }

  async call<T = unknown>(connection: ConnectionRef, call: OutboundCall, signal?: AbortSignal): Promise<T> {
    const key = this.keyOf(connection);
    const limit = this.limitOf(connection.provider);
    let attempt = 0;
    let refreshed = false;
    let reached = false;
    let last: ConnectorError | undefined;
    for (;;) {
      signal?.throwIfAborted();
      // credentials first: the token is taken as late as possible, so the provider sees calls
      // spaced as the bucket granted them (a slow vault read after the grant would bunch them)
      let bound: BoundConnector;
      try {
        bound = await this.o.connectors.bind(connection);
      } catch (err) {
        throw isConnectorError(err) ? err : classify(err); // the vault unreachable: the caller retries
      }
      if (!bound.operations.has(call.operation)) {
        throw new ConnectorError(ConnectorCode.Validation, `${connection.provider} has no operation '${call.operation}'`);
      }
      let admitted: { probe: boolean; callId: string | null };
      let endShare: (() => Promise<void>) | null;
      try {
        ({ admitted, endShare } = await this.#enter(connection, key, limit, call.cost ?? 1, call.requests ?? 1, signal));
      } catch (err) {
        // the breaker opened: nothing more reaches the provider; a call that never got through is the caller's to retry
        if (reached && last && isConnectorError(err, CIRCUIT_OPEN)) await this.#park(connection, call, last, attempt);
        throw err;
      }
      attempt++;
      reached = true;
      const started = performance.now();
      let failure: ConnectorError | null = null;
      let output: unknown;
      try {
        const deadline = AbortSignal.timeout(this.o.callTimeoutMs);
        output = await bound.invoke(call.operation, call.input, { signal: signal ? AbortSignal.any([signal, deadline]) : deadline, idempotencyKey: call.idempotencyKey });
      } catch (err) {
        failure = isConnectorError(err) ? err : classify(err);
      }
      const ms = performance.now() - started;
      this.#hooks.attempted?.(connection, call, { ok: failure === null, ms, cost: call.cost ?? 1 });
      await endShare?.();
      await this.#settle(key, limit, connection.provider, admitted, failure, ms, bound);
      if (failure === null) return output as T;
      last = failure;
      if (signal?.aborted) throw failure;
      if (failure.code === ConnectorCode.Unauthorized && !refreshed) {
        refreshed = true;
        attempt--; // the refresh's retry is not one of the policy's attempts
        this.o.connectors.forget(connection);
        try {
          await this.#refresh(connection, bound.version);
        } catch (err) {
          last = isConnectorError(err) ? err : classify(err);
          break;
        }
        continue;
      }
      if (failure.code === ConnectorCode.ReauthorizationRequired) {
        await this.o.connections
          .markReauthorizationRequired(connection.tenantId, connection.provider, connection.account, { code: failure.code, message: failure.message })
          .catch((err: unknown) => this.o.log.warn({ err, connection: connectionId(connection.tenantId, connection.provider, connection.account) }, 'marking the connection failed'));
        break;
      }
      // a second 401 after a refresh: the new token is refused too; trying again will not help
      const retryable = failure.code === ConnectorCode.Unauthorized ? false : failure.retryable;
      const d = decideRetry({ retryable, retryAfterMs: failure.retryAfterMs }, attempt, this.#policy);
      if (!d.retry) break;
      await sleep(d.delayMs, undefined, signal ? { signal } : undefined);
    }
    const failure = last!;
    if (reached) await this.#park(connection, call, failure, attempt);
    throw failure;
  }

  /**
   * Runs `work` (a provider request made outside the connector contract: a connection's webhook
   * subscriptions, a revocation) under the connection's budget, share and breaker, once: no retry,
   * no refresh, no dead letter. What the provider sees from us all goes through one bucket, so
   * the calls made while a connection is set up count against the sync that follows.
   */
  async budgeted<T>(connection: ConnectionRef, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const key = this.keyOf(connection);
    const limit = this.limitOf(connection.provider);
    const { admitted, endShare } = await this.#enter(connection, key, limit, 1, 1, signal);
    const started = performance.now();
    let failure: ConnectorError | null = null;
    try {
      const deadline = AbortSignal.timeout(this.o.callTimeoutMs);
      return await work(signal ? AbortSignal.any([signal, deadline]) : deadline);
    } catch (err) {
      failure = isConnectorError(err) ? err : classify(err);
      throw failure;
    } finally {
      await endShare?.();
      await this.#settle(key, limit, connection.provider, admitted, failure, performance.now() - started, undefined);
    }
  }

  /** The connection's share (when its tier sets one), then the provider's bucket; a failure ends the share's lease it took. */
  async #enter(connection: ConnectionRef, key: BudgetKey, limit: RateLimit | null, cost: number, requests: number, signal: AbortSignal | undefined) {
    const endShare = await this.#admitShare(connection, key, limit, cost, requests, signal);
    try {
      return { admitted: await this.#admit(key, limit, cost, requests, signal), endShare };
    } catch (err) {
      await endShare?.();
      throw err;
    }
  }

  async status(connection: ConnectionRef): Promise<OutboundStatus> {
    const key = this.keyOf(connection);
    const limit = this.limitOf(connection.provider);
    const now = Date.now();
    const windowStart = this.usage.windowOf(now);
    const alertSince = now - this.o.config.alertWindowMs;
    const [row, current, recent] = await Promise.all([this.store.row(key), this.store.usage(key, windowStart), this.store.usage(key, alertSince)]);
    const localNow = this.usage.unflushed(key, windowStart);
    const localRecent = this.usage.unflushed(key, alertSince);
    const calls = recent.calls + localRecent.calls;
    const errors = recent.errors + localRecent.errors;
    const ms = recent.responseMsTotal + localRecent.responseMs;
    // a breaker past its cooldown is half-open: the next call is its probe
    const breaker = row?.breaker === 'open' && row.halfOpenAt && Date.parse(row.halfOpenAt) <= now ? 'half_open' : (row?.breaker ?? 'closed');
    return {
      budget: {
        limit: limit?.spec ?? 'none',
        usedInWindow: current.calls + localNow.calls,
        throttledCalls: current.throttled + localNow.throttled,
        windowSeconds: Math.round(this.o.config.statsWindowMs / 1000),
        scope: limit?.scope ?? RATE_SCOPES[connection.provider] ?? 'account',
      },
      breaker: { state: breaker, consecutiveFailures: row?.failures ?? 0, openedAt: row?.openedAt ?? null },
      errorRate: calls > 0 ? errors / calls : 0,
      averageResponseMs: calls > 0 ? Math.round((ms / calls) * 10) / 10 : null,
      calls,
      health: row?.health ?? 'healthy',
    };
  }

  /**
   * Waits for the key's budget; answers whether this call is the breaker's one probe, and its
   * lease (a key with a budget: ended by `#settle`, when the bucket is spent). A key with
   * a budget takes its token under the row's lock on every call (exact across processes). A key
   * without one (budget lifted) reads its row at most every VIEW_MS and goes straight through
   * while the breaker is closed and Shopify's points suffice: a breaker opened by another
   * process is seen within VIEW_MS; anything else takes the locked path.
   */
  async #admit(key: BudgetKey, limit: RateLimit | null, cost: number, requests: number, signal: AbortSignal | undefined): Promise<{ probe: boolean; callId: string | null }> {
    if (limit === null) {
      const row = await this.#view(key);
      if (row === null || (row.breaker === 'closed' && row.failures === 0 && (row.pausedUntil === null || Date.parse(row.pausedUntil) <= Date.now()) && pointsSuffice(row, cost))) return { probe: false, callId: null };
    }
    // one caller per key and process asks the row at a time, the others queue here: a crowd of
    // waiters polling one locked row would slow the ends of the calls that free it
    const id = idOf(key);
    const before = this.#turns.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const turn = before.then(() => mine);
    this.#turns.set(id, turn);
    try {
      await (signal ? Promise.race([before, abortedOf(signal)]) : before);
      return await this.#take(key, limit, cost, requests, signal);
    } finally {
      release();
      if (this.#turns.get(id) === turn) this.#turns.delete(id);
    }
  }

  async #take(key: BudgetKey, limit: RateLimit | null, cost: number, requests: number, signal: AbortSignal | undefined): Promise<{ probe: boolean; callId: string | null }> {
    let waited = 0;
    for (;;) {
      const a = await this.store.take(key, limit, cost, this.o.probeLeaseMs ?? 30_000, leaseMsOf(this.o.callTimeoutMs), requests);
      this.#lastFailures.set(idOf(key), a.failures);
      if (a.outcome === 'go' || a.outcome === 'probe') {
        if (waited > 0) {
          this.usage.record(key, limit?.spec ?? null, { called: false, failed: false, throttled: true, responseMs: 0 });
          this.#observer?.budgetWait(key.provider, waited / 1000);
        }
        return { probe: a.outcome === 'probe', callId: a.callId };
      }
      if (a.outcome === 'open') {
        this.#observer?.fastFailed(key.provider);
        throw new ConnectorError(CIRCUIT_OPEN, `${key.provider}: the circuit breaker is ${a.breaker === 'half_open' ? 'half-open and its probe is running' : 'open'}`, {
          retryable: true,
          retryAfterMs: a.waitMs,
        });
      }
      const ms = Math.min(a.waitMs, 5_000);
      waited += ms;
      await sleep(ms, undefined, signal ? { signal } : undefined);
    }
  }

  /**
   * A connection limited to a share of its provider's budget (the registry's tier) first takes a
   * token from its own bucket: the provider's bucket scaled by the share, kept in PostgreSQL like
   * the provider's (key scope `share:<account>`, exact across processes). Then the provider's.
   * Answers what ends the share's lease once the call is over (null: no share applies).
   */
  async #admitShare(connection: ConnectionRef, key: BudgetKey, limit: RateLimit | null, cost: number, requests: number, signal: AbortSignal | undefined): Promise<(() => Promise<void>) | null> {
    if (limit === null || !this.#hooks.shareOf) return null;
    const share = await this.#hooks.shareOf(connection);
    if (!(share > 0 && share < 1)) return null;
    const scaled: RateLimit = { ...limit, capacity: Math.max(1, Math.floor(limit.capacity * share)), refillPerSecond: limit.refillPerSecond * share };
    const own: BudgetKey = { ...key, scope: `share:${connection.account}` };
    let waited = 0;
    for (;;) {
      const a = await this.store.take(own, scaled, cost, this.o.probeLeaseMs ?? 30_000, leaseMsOf(this.o.callTimeoutMs), requests);
      if (a.outcome !== 'wait') {
        if (waited > 0) this.#observer?.budgetWait(key.provider, waited / 1000);
        // the share's bucket is spent when the call ends, as the provider's is (its lease)
        const callId = a.callId;
        return callId === null
          ? null
          : () => this.store.done(own, callId).catch((err: unknown) => this.o.log.warn({ err, provider: key.provider }, 'ending an outbound share lease failed'));
      }
      const ms = Math.min(a.waitMs, 5_000);
      waited += ms;
      await sleep(ms, undefined, signal ? { signal } : undefined);
    }
  }

  #view(key: BudgetKey): Promise<KeyRow | null> {
    const id = idOf(key);
    const v = this.#views.get(id);
    if (v && Date.now() - v.at < VIEW_MS) return v.row;
    const row = this.store.row(key);
    this.#views.set(id, { at: Date.now(), row });
    row.catch(() => this.#views.delete(id));
    return row;
  }

  async #settle(
    key: BudgetKey,
    limit: RateLimit | null,
    provider: string,
    { probe, callId }: { probe: boolean; callId: string | null },
    failure: ConnectorError | null,
    ms: number,
    bound: BoundConnector | undefined,
  ): Promise<void> {
    // the call is over: its lease ends and the bucket is spent now (a failure here leaves the
    // lease to expire, which only holds the budget back a little longer)
    if (callId !== null) await this.store.done(key, callId).catch((err: unknown) => this.o.log.warn({ err, provider }, 'ending an outbound lease failed'));
    const pauseMs = pauseOf(failure);
    const health = healthOf(failure);
    const reported = bound?.lastCost ?? (failure as { cost?: BoundConnector['lastCost'] } | null)?.cost;
    // Shopify's points matter only when short: a stored estimate that is low heals by the restore rate
    const cost = reported && reported.throttleStatus.currentlyAvailable < Math.max(2 * reported.requestedQueryCost, reported.throttleStatus.maximumAvailable / 2) ? reported : undefined;
    const known = this.#lastFailures.get(idOf(key)) ?? 0;
    this.usage.record(key, limit?.spec ?? null, { called: true, failed: failure !== null, throttled: pauseMs > 0, responseMs: ms });
    this.#observer?.attempt(provider, failure === null ? 'ok' : pauseMs > 0 ? 'throttled' : 'failed', ms / 1000);
    if (!probe && health === 'up' && known === 0 && pauseMs === 0 && cost === undefined) return;
    this.#views.delete(idOf(key));
    const r = await this.store.report(key, {
      health,
      probe,
      threshold: this.o.config.breakerThreshold,
      cooldownMs: this.o.config.breakerCooldownMs,
      pauseMs,
      points: cost ? { available: cost.throttleStatus.currentlyAvailable, maximum: cost.throttleStatus.maximumAvailable, restorePerSecond: cost.throttleStatus.restoreRate } : undefined,
    });
    if (!r) return;
    this.#lastFailures.set(idOf(key), r.failures);
    if (r.changed) this.o.log.warn({ tenantId: key.tenantId, provider: key.provider, breaker: r.breaker, consecutiveFailures: r.failures }, 'circuit breaker changed');
  }

  /** One refresh per connection in this process; the connection actor makes it one across processes. */
  #refresh(c: ConnectionRef, usedVersion: number): Promise<void> {
    const id = connectionId(c.tenantId, c.provider, c.account);
    let p = this.#refreshing.get(id);
    if (!p) {
      p = this.#awaitRefresh(c, usedVersion).finally(() => this.#refreshing.delete(id));
      this.#refreshing.set(id, p);
    }
    return p;
  }

  async #awaitRefresh(c: ConnectionRef, usedVersion: number): Promise<void> {
    const vault = { tenantId: c.tenantId, service: c.provider, connectionId: c.account };
    const newer = async () => ((await this.o.connectors.describe(vault))?.version ?? 0) > usedVersion;
    if (await newer()) return;
    await this.o.connections.requestRefresh(c.tenantId, c.provider, c.account, 'unauthorized', usedVersion);
    const deadline = Date.now() + (this.o.refreshTimeoutMs ?? 30_000);
    let pause = 25;
    while (Date.now() < deadline) {
      if (await newer()) return;
      const state = await this.o.connections.stateOf(c.tenantId, c.provider, c.account);
      if (state === 'reauthorization_required' || state === 'disconnected' || state === null) {
        throw new ConnectorError(ConnectorCode.ReauthorizationRequired, `${c.provider}: the token was refused and could not be refreshed (the connection is ${state ?? 'gone'})`);
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 500);
    }
    throw new ConnectorError(ConnectorCode.Unauthorized, `${c.provider}: the token was refused and no refreshed token arrived in time`, { retryable: true });
  }

  async #park(connection: ConnectionRef, call: OutboundCall, failure: ConnectorError, attempts: number): Promise<void> {
    if (call.deadLetter === false) return;
    try {
      await this.o.deadLetters.park(connection, call, failure, attempts);
    } catch (err) {
      this.o.log.error({ err, provider: connection.provider, tenantId: connection.tenantId, operation: call.operation }, 'parking a failed call as a dead letter failed');
    }
  }
}

/**
 * How long a call's lease lasts if its process never ends it (it died): the attempt's deadline
 * aborts the request well before, so a lease cannot expire while its request may still arrive.
 */
export const leaseMsOf = (callTimeoutMs: number): number => 2 * callTimeoutMs + 10_000;

/** How stale a key's row may be when it has no budget (the breaker is seen across processes within this). */
const VIEW_MS = 250;

function pointsSuffice(row: KeyRow, cost: number): boolean {
  const p = row.points;
  if (p === null || cost <= 0) return true;
  return Math.min(p.maximum, p.available + ((Date.now() - p.at) / 1000) * p.restorePerSecond) >= cost;
}

/** Rejects when the signal aborts (never resolves otherwise). */
function abortedOf(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

const idOf = (k: BudgetKey): string => `${k.tenantId}\u0000${k.provider}\u0000${k.scope}`;
