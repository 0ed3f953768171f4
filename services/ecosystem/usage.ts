import type pg from 'pg';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError } from '../common/errors.js';

/** One call out through an integration, as the meter counts it. */
export interface CallRecord {
  integrationId: string;
  tenantId: string;
  /** The platform (registry) or the marketplace (`shopify`, `mercadolibre`). */
  provider: string;
  /** Epoch ms. */
  at: number;
  ok: boolean;
  latencyMs: number;
  /** Rate-budget units the call took (default 1). */
  units?: number;
  /**
   * `call` (default): a call out through a registered integration; `sync`: a call of a
   * marketplace connection's sync through the outbound door (also a call); `event`: an event
   * delivered to the integration (counted apart, not a call).
   */
  kind?: 'call' | 'sync' | 'event';
}

interface Counter {
  integrationId: string;
  hour: string;
  tenantId: string;
  provider: string;
  calls: number;
  errors: number;
  latencyMsSum: number;
  latencyMsMax: number;
  budgetUnits: number;
  syncCalls: number;
  eventsDelivered: number;
}

export type Granularity = 'hour' | 'day';
export type GroupBy = 'integration' | 'tenant' | 'provider';

/** One bucket of usage figures. */
export interface UsageBucket {
  /** Start of the hour or UTC day. */
  start: string;
  calls: number;
  errors: number;
  /** Errors over calls, 0..1. */
  errorRate: number;
  averageLatencyMs: number | null;
  maxLatencyMs: number | null;
  budgetUnits: number;
  /** Calls made by the inventory sync through the outbound door (included in `calls`). */
  syncCalls: number;
  /** Events delivered to the integration (the event delivery worker's deliveries to it). */
  eventsDelivered: number;
  /** Webhooks accepted from the provider in the bucket (marketplace connections; from `integration_webhooks`). */
  webhooks: number;
}

export interface UsageSeries {
  /** The integration id, tenant or provider, per `groupBy`. */
  key: string;
  totals: Omit<UsageBucket, 'start'>;
  buckets: UsageBucket[];
}

export interface UsageQuery {
  from: number;
  to: number;
  granularity: Granularity;
  groupBy: GroupBy;
  /** Only these integrations (a vendor's own, or one integration); undefined: all. */
  integrationIds?: string[];
  /** Only this tenant's integrations. */
  tenantId?: string;
}

const HOUR = 3_600_000;
const hourOf = (ms: number) => new Date(Math.floor(ms / HOUR) * HOUR).toISOString();
const bucketOf = (hourIso: string, g: Granularity) => (g === 'hour' ? hourIso : `${hourIso.slice(0, 10)}T00:00:00.000Z`);
/** At most this many buckets per series in one answer (31 days of hours). */
export const MAX_BUCKETS = 24 * 31;

/**
 * Usage analytics without a write on any call's hot path: a call adds to an in-memory counter
 * per (integration, hour); `flush()` (every `ECOSYSTEM_USAGE_FLUSH_MS`, and at stop) adds all
 * counters to `ecosystem_usage_hourly` in one statement. Reads add the counters not yet flushed,
 * so an answer is exact for this process at once. A crash loses at most one flush interval of
 * counts (said in the README); webhooks of marketplace connections are derived from the rows
 * `integration_webhooks` already holds, with no counting at all.
 */
export class UsageMeter {
  #pending = new Map<string, Counter>();
  /** Health checks per (integration, hour) not yet added to `ecosystem_health_hourly`. */
  #checks = new Map<string, { integrationId: string; hour: string; checks: number; ok: number; latencyMsSum: number }>();
  /** The counters a flush is writing: still counted by reads until the statement committed (else a read meanwhile misses them). */
  #writing: { usage: Counter[]; checks: Array<{ integrationId: string; hour: string; checks: number; ok: number }> } = { usage: [], checks: [] };
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly flushMs: number,
    private readonly log: Logger,
  ) {}

  record(c: CallRecord): void {
    const hour = hourOf(c.at);
    const key = `${c.integrationId}\u0000${hour}`;
    let k = this.#pending.get(key);
    if (!k) {
      k = { integrationId: c.integrationId, hour, tenantId: c.tenantId, provider: c.provider, calls: 0, errors: 0, latencyMsSum: 0, latencyMsMax: 0, budgetUnits: 0, syncCalls: 0, eventsDelivered: 0 };
      this.#pending.set(key, k);
    }
    if (c.kind === 'event') {
      k.eventsDelivered += 1;
      return;
    }
    if (c.kind === 'sync') k.syncCalls += 1;
    k.calls += 1;
    if (!c.ok) k.errors += 1;
    const latency = Math.max(0, Math.round(c.latencyMs));
    k.latencyMsSum += latency;
    k.latencyMsMax = Math.max(k.latencyMsMax, latency);
    k.budgetUnits += c.units ?? 1;
  }

  /** One health check's outcome, for availability (flushed with the usage counters). */
  recordCheck(integrationId: string, at: number, ok: boolean, latencyMs: number): void {
    const hour = hourOf(at);
    const key = `${integrationId}\u0000${hour}`;
    let k = this.#checks.get(key);
    if (!k) this.#checks.set(key, (k = { integrationId, hour, checks: 0, ok: 0, latencyMsSum: 0 }));
    k.checks += 1;
    if (ok) k.ok += 1;
    k.latencyMsSum += Math.max(0, Math.round(latencyMs));
  }

  /** Checks not yet flushed, per integration: since `sinceMs` (24 h) and in all (30 d). */
  pendingChecks(sinceMs: number): Map<string, { c24: number; o24: number; c30: number; o30: number }> {
    const out = new Map<string, { c24: number; o24: number; c30: number; o30: number }>();
    const since = hourOf(sinceMs);
    for (const k of [...this.#checks.values(), ...this.#writing.checks]) {
      const v = out.get(k.integrationId) ?? { c24: 0, o24: 0, c30: 0, o30: 0 };
      v.c30 += k.checks;
      v.o30 += k.ok;
      if (k.hour >= since) {
        v.c24 += k.checks;
        v.o24 += k.ok;
      }
      out.set(k.integrationId, v);
    }
    return out;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.flushMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /** Adds the pending counters to the table (one statement); on failure they are kept for the next flush. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      await this.#flushChecks();
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending = new Map();
      this.#writing.usage = batch;
      try {
        await this.pool.query(
          `INSERT INTO ecosystem_usage_hourly AS u (integration_id, hour, tenant_id, provider, calls, errors, latency_ms_sum, latency_ms_max, budget_units, sync_calls, events_delivered)
           SELECT r."integrationId", r.hour, r."tenantId", r.provider, r.calls, r.errors, r."latencyMsSum", r."latencyMsMax", r."budgetUnits", r."syncCalls", r."eventsDelivered"
             FROM jsonb_to_recordset($1::jsonb) AS r("integrationId" text, hour timestamptz, "tenantId" text, provider text, calls bigint, errors bigint, "latencyMsSum" bigint, "latencyMsMax" int, "budgetUnits" bigint, "syncCalls" bigint, "eventsDelivered" bigint)
           ON CONFLICT (integration_id, hour) DO UPDATE SET calls = u.calls + excluded.calls, errors = u.errors + excluded.errors,
             latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum, latency_ms_max = greatest(u.latency_ms_max, excluded.latency_ms_max),
             budget_units = u.budget_units + excluded.budget_units, sync_calls = u.sync_calls + excluded.sync_calls, events_delivered = u.events_delivered + excluded.events_delivered`,
          [JSON.stringify(batch)],
        );
      } catch (err) {
        for (const c of batch) this.#merge(c);
        this.log.warn({ err, counters: batch.length }, 'flushing usage counters failed; kept for the next flush');
      } finally {
        this.#writing.usage = [];
      }
    });
    return this.#flushing;
  }

  async #flushChecks(): Promise<void> {
    if (this.#checks.size === 0) return;
    const batch = [...this.#checks.values()];
    this.#checks = new Map();
    this.#writing.checks = batch;
    try {
      await this.pool.query(
        `INSERT INTO ecosystem_health_hourly AS h (integration_id, hour, checks, ok, latency_ms_sum)
         SELECT r."integrationId", r.hour, r.checks, r.ok, r."latencyMsSum" FROM jsonb_to_recordset($1::jsonb) AS r("integrationId" text, hour timestamptz, checks int, ok int, "latencyMsSum" bigint)
         ON CONFLICT (integration_id, hour) DO UPDATE SET checks = h.checks + excluded.checks, ok = h.ok + excluded.ok, latency_ms_sum = h.latency_ms_sum + excluded.latency_ms_sum`,
        [JSON.stringify(batch)],
      );
    } catch (err) {
      for (const c of batch) {
        const key = `${c.integrationId}\u0000${c.hour}`;
        const k = this.#checks.get(key);
        if (!k) this.#checks.set(key, c);
        else {
          k.checks += c.checks;
          k.ok += c.ok;
          k.latencyMsSum += c.latencyMsSum;
        }
      }
      this.log.warn({ err, counters: batch.length }, 'flushing health-check counters failed; kept for the next flush');
    } finally {
      this.#writing.checks = [];
    }
  }

  #merge(c: Counter): void {
    const key = `${c.integrationId}\u0000${c.hour}`;
    const k = this.#pending.get(key);
    if (!k) {
      this.#pending.set(key, c);
      return;
    }
    k.calls += c.calls;
    k.errors += c.errors;
    k.latencyMsSum += c.latencyMsSum;
    k.latencyMsMax = Math.max(k.latencyMsMax, c.latencyMsMax);
    k.budgetUnits += c.budgetUnits;
    k.syncCalls += c.syncCalls;
    k.eventsDelivered += c.eventsDelivered;
  }

  /** Usage per group and bucket over [from, to): flushed rows, plus this process's pending counters, plus webhooks of marketplace connections. */
  async query(q: UsageQuery): Promise<UsageSeries[]> {
    if (!(q.to > q.from)) throw new DomainError(DomainCode.ValidationFailed, 'to must be after from', { field: 'to' });
    const span = q.granularity === 'hour' ? HOUR : 24 * HOUR;
    if ((q.to - q.from) / span > MAX_BUCKETS) throw new DomainError(DomainCode.ValidationFailed, `at most ${MAX_BUCKETS} ${q.granularity}s in one answer`, { field: 'from' });
    const groupCol = { integration: 'integration_id', tenant: 'tenant_id', provider: 'provider' }[q.groupBy];
    const params: unknown[] = [q.granularity, new Date(q.from), new Date(q.to)];
    const cond: string[] = ['hour >= date_trunc(\'hour\', $2::timestamptz)', 'hour < $3'];
    if (q.integrationIds) {
      params.push(q.integrationIds);
      cond.push(`integration_id = ANY($${params.length})`);
    }
    if (q.tenantId) {
      params.push(q.tenantId);
      cond.push(`tenant_id = $${params.length}`);
    }
    const { rows } = await this.pool.query<{ k: string; b: Date; calls: string; errors: string; lsum: string; lmax: number; units: string; syncs: string; events: string }>(
      `SELECT ${groupCol} AS k, date_trunc($1, hour, 'UTC') AS b, sum(calls) AS calls, sum(errors) AS errors, sum(latency_ms_sum) AS lsum, max(latency_ms_max) AS lmax, sum(budget_units) AS units,
              sum(sync_calls) AS syncs, sum(events_delivered) AS events
         FROM ecosystem_usage_hourly WHERE ${cond.join(' AND ')} GROUP BY 1, 2`,
      params,
    );
    const acc = new Map<string, Map<string, Sums>>();
    const add = (key: string, start: string, v: Sums) => {
      let g = acc.get(key);
      if (!g) acc.set(key, (g = new Map()));
      const b = g.get(start);
      if (!b) g.set(start, { ...v });
      else {
        b.calls += v.calls;
        b.errors += v.errors;
        b.lsum += v.lsum;
        b.lmax = Math.max(b.lmax, v.lmax);
        b.units += v.units;
        b.syncs += v.syncs;
        b.events += v.events;
        b.webhooks += v.webhooks;
      }
    };
    for (const r of rows) add(r.k, r.b.toISOString(), { calls: Number(r.calls), errors: Number(r.errors), lsum: Number(r.lsum), lmax: r.lmax, units: Number(r.units), syncs: Number(r.syncs), events: Number(r.events), webhooks: 0 });
    const fromHour = hourOf(q.from);
    for (const c of [...this.#pending.values(), ...this.#writing.usage]) {
      if (c.hour < fromHour || Date.parse(c.hour) >= q.to) continue;
      if (q.integrationIds && !q.integrationIds.includes(c.integrationId)) continue;
      if (q.tenantId && c.tenantId !== q.tenantId) continue;
      const key = q.groupBy === 'integration' ? c.integrationId : q.groupBy === 'tenant' ? c.tenantId : c.provider;
      add(key, bucketOf(c.hour, q.granularity), { calls: c.calls, errors: c.errors, lsum: c.latencyMsSum, lmax: c.latencyMsMax, units: c.budgetUnits, syncs: c.syncCalls, events: c.eventsDelivered, webhooks: 0 });
    }
    await this.#webhooks(q, add);
    return [...acc.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, g]) => {
        const buckets = [...g.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([start, v]) => figures(start, v));
        const t = buckets.reduce(
          (s, b) => ({ calls: s.calls + b.calls, errors: s.errors + b.errors, lsum: s.lsum + (b.averageLatencyMs ?? 0) * b.calls, lmax: Math.max(s.lmax, b.maxLatencyMs ?? 0), units: s.units + b.budgetUnits, syncs: s.syncs + b.syncCalls, events: s.events + b.eventsDelivered, webhooks: s.webhooks + b.webhooks }),
          { calls: 0, errors: 0, lsum: 0, lmax: 0, units: 0, syncs: 0, events: 0, webhooks: 0 },
        );
        const { start: _start, ...totals } = figures('', t);
        return { key, totals, buckets };
      });
  }

  /** Webhooks accepted for marketplace connections, from the rows the intake already writes (ids `<tenant>:<service>:<connection>`). */
  async #webhooks(q: UsageQuery, add: (key: string, start: string, v: Sums) => void): Promise<void> {
    const params: unknown[] = [q.granularity, new Date(q.from), new Date(q.to)];
    const cond = ['received_at >= $2', 'received_at < $3'];
    if (q.integrationIds) {
      params.push(q.integrationIds);
      cond.push(`tenant_id || ':' || service || ':' || connection_id = ANY($${params.length})`);
    }
    if (q.tenantId) {
      params.push(q.tenantId);
      cond.push(`tenant_id = $${params.length}`);
    }
    const key = { integration: `tenant_id || ':' || service || ':' || connection_id`, tenant: 'tenant_id', provider: 'service' }[q.groupBy];
    const { rows } = await this.pool.query<{ k: string; b: Date; n: string }>(
      `SELECT ${key} AS k, date_trunc($1, received_at, 'UTC') AS b, count(*) AS n FROM integration_webhooks WHERE ${cond.join(' AND ')} AND status <> 'stale' GROUP BY 1, 2`,
      params,
    );
    for (const r of rows) add(r.k, r.b.toISOString(), { calls: 0, errors: 0, lsum: 0, lmax: 0, units: 0, syncs: 0, events: 0, webhooks: Number(r.n) });
  }
}

interface Sums {
  calls: number;
  errors: number;
  lsum: number;
  lmax: number;
  units: number;
  syncs: number;
  events: number;
  webhooks: number;
}

function figures(start: string, v: Sums): UsageBucket {
  return {
    start,
    calls: v.calls,
    errors: v.errors,
    errorRate: v.calls > 0 ? Math.round((v.errors / v.calls) * 10_000) / 10_000 : 0,
    averageLatencyMs: v.calls > 0 ? Math.round((v.lsum / v.calls) * 10) / 10 : null,
    maxLatencyMs: v.calls > 0 ? v.lmax : null,
    budgetUnits: v.units,
    syncCalls: v.syncs,
    eventsDelivered: v.events,
    webhooks: v.webhooks,
  };
}
