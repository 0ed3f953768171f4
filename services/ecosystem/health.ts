import type pg from 'pg';
import type { EcosystemContext, EcosystemHealth, HealthStatus } from '../../machines/ecosystem/index.js';
import type { Clock } from '../../runtime/clock.js';
import type { Catalog } from './catalog.js';
import { newer } from './monitor.js';
import type { UsageMeter } from './usage.js';
import type { IntegrationView } from './views.js';

export interface Availability {
  /** Checks that answered as expected over all checks, in percent (2 decimals); null without checks. */
  percent: number | null;
  checks: number;
  ok: number;
}

/** `GET /api/v1/ecosystem/integrations/{name}/health`. */
export interface HealthReport {
  id: string;
  name: string;
  ownerId: string;
  tier: string;
  source: IntegrationView['source'];
  status: HealthStatus;
  latencyMs: number | null;
  lastCheckAt: string | null;
  lastOkAt: string | null;
  consecutiveFailures: number;
  /** When the current status began. */
  since: string | null;
  lastError: { code: string; message: string } | null;
  checkIntervalMs: number | null;
  availability: { last24h: Availability; last30d: Availability };
  /** The tier's availability target and whether the measured availability meets it; target null: no SLA. */
  sla: { target: number | null; met24h: boolean | null; met30d: boolean | null };
}

/** The runtime's `/health` summary of the registry: active integrations by health status. */
export interface HealthSummary {
  total: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  unknown: number;
  /** Enterprise integrations whose availability over 24 h is below their SLA target. */
  slaBreaches: number;
}

const pct = (ok: number, checks: number): number | null => (checks > 0 ? Math.round((ok / checks) * 10_000) / 100 : null);

/** Availability per integration over the last 24 hours and 30 days, from the hourly check counts. */
export async function availabilityOf(pool: pg.Pool, meter: UsageMeter, now: number, ids?: string[]): Promise<Map<string, { last24h: Availability; last30d: Availability }>> {
  const { rows } = await pool.query<{ id: string; c24: string; o24: string; c30: string; o30: string }>(
    `SELECT integration_id AS id,
            coalesce(sum(checks) FILTER (WHERE hour >= date_trunc('hour', $1::timestamptz - interval '23 hours', 'UTC')), 0) AS c24,
            coalesce(sum(ok) FILTER (WHERE hour >= date_trunc('hour', $1::timestamptz - interval '23 hours', 'UTC')), 0) AS o24,
            sum(checks) AS c30, sum(ok) AS o30
       FROM ecosystem_health_hourly
      WHERE hour >= date_trunc('hour', $1::timestamptz - interval '30 days', 'UTC') ${ids ? 'AND integration_id = ANY($2)' : ''}
      GROUP BY 1`,
    ids ? [new Date(now), ids] : [new Date(now)],
  );
  // the checks this process counted since its last flush count too
  const sums = new Map<string, { c24: number; o24: number; c30: number; o30: number }>();
  for (const r of rows) sums.set(r.id, { c24: Number(r.c24), o24: Number(r.o24), c30: Number(r.c30), o30: Number(r.o30) });
  for (const [id, p] of meter.pendingChecks(now - 23 * 3_600_000)) {
    if (ids && !ids.includes(id)) continue;
    const s = sums.get(id) ?? { c24: 0, o24: 0, c30: 0, o30: 0 };
    sums.set(id, { c24: s.c24 + p.c24, o24: s.o24 + p.o24, c30: s.c30 + p.c30, o30: s.o30 + p.o30 });
  }
  const out = new Map<string, { last24h: Availability; last30d: Availability }>();
  for (const [id, { c24, o24, c30, o30 }] of sums) {
    out.set(id, { last24h: { percent: pct(o24, c24), checks: c24, ok: o24 }, last30d: { percent: pct(o30, c30), checks: c30, ok: o30 } });
  }
  return out;
}

const NONE: Availability = { percent: null, checks: 0, ok: 0 };

/** Health reports and the `/health` summary. */
export class HealthReports {
  #summary: { at: number; value: Promise<HealthSummary> } | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly catalog: Catalog,
    private readonly clock: Clock,
    private readonly meter: UsageMeter,
    /** The health monitor's record of an integration (newer than the stored ones between flushes). */
    private readonly monitored: (id: string) => EcosystemHealth | null = () => null,
  ) {}

  async report(v: IntegrationView): Promise<HealthReport> {
    const target = this.catalog.tier(v.tier)?.slaTarget ?? null;
    const base = { id: v.id, name: v.name, ownerId: v.ownerId, tier: v.tier, source: v.source };
    if (v.source === 'marketplace') {
      return { ...base, status: v.health, latencyMs: null, lastCheckAt: null, lastOkAt: null, consecutiveFailures: 0, since: null, lastError: null, checkIntervalMs: null, availability: { last24h: NONE, last30d: NONE }, sla: { target, met24h: null, met30d: null } };
    }
    const [{ rows }, avail] = await Promise.all([
      this.pool.query<{ context: EcosystemContext; latest: EcosystemHealth | null }>(
        `SELECT a.snapshot->'context' AS context, (SELECT l.health FROM ecosystem_health_latest l WHERE l.integration_id = a.id) AS latest FROM actors a WHERE a.type = 'ecosystem' AND a.id = $1`,
        [v.id],
      ),
      availabilityOf(this.pool, this.meter, this.clock.now(), [v.id]),
    ]);
    const c = rows[0]?.context;
    const a = avail.get(v.id) ?? { last24h: NONE, last30d: NONE };
    // the actor holds the health as of its last change of status; the monitor's record (written in bulk, and this process's own) is newer
    const h = newer(newer(c?.health, rows[0]?.latest), this.monitored(v.id));
    const met = (x: Availability) => (target === null || x.percent === null ? null : x.percent >= target);
    return {
      ...base,
      status: h?.status ?? 'unknown',
      latencyMs: h?.latencyMs ?? null,
      lastCheckAt: h?.lastCheckAt ?? null,
      lastOkAt: h?.lastOkAt ?? null,
      consecutiveFailures: h?.consecutiveFailures ?? 0,
      since: h?.since ?? null,
      lastError: h?.lastError ?? null,
      checkIntervalMs: v.status === 'active' ? (c?.intervalMs ?? null) : null,
      availability: a,
      sla: { target, met24h: met(a.last24h), met30d: met(a.last30d) },
    };
  }

  /** Active registry integrations by status (cached for 2 s: load balancers poll /health often). */
  summary(): Promise<HealthSummary> {
    const now = this.clock.now();
    if (this.#summary && now - this.#summary.at < 2_000) return this.#summary.value;
    const value = this.#compute();
    this.#summary = { at: now, value };
    value.catch(() => (this.#summary = undefined));
    return value;
  }

  async #compute(): Promise<HealthSummary> {
    const [{ rows }, avail] = await Promise.all([
      this.pool.query<{ health: string; tier: string; id: string }>(`SELECT id, attrs->>'health' AS health, attrs->>'tier' AS tier FROM actors WHERE type = 'ecosystem' AND status = 'ACTIVE'`),
      availabilityOf(this.pool, this.meter, this.clock.now()),
    ]);
    const s: HealthSummary = { total: rows.length, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0, slaBreaches: 0 };
    for (const r of rows) {
      const k = (['healthy', 'degraded', 'unhealthy'].includes(r.health) ? r.health : 'unknown') as 'healthy' | 'degraded' | 'unhealthy' | 'unknown';
      s[k] += 1;
      const target = this.catalog.tier(r.tier)?.slaTarget ?? null;
      const p = avail.get(r.id)?.last24h.percent ?? null;
      if (target !== null && p !== null && p < target) s.slaBreaches += 1;
    }
    return s;
  }
}
