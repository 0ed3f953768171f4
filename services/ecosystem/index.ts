import type pg from 'pg';
import { ecosystemType } from '../../machines/ecosystem/index.js';
import type { ConnectorInvoker } from '../../connectors/kit/contract.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import type { Config } from '../../runtime/config.js';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { Principal } from '../common/principal.js';
import type { CredentialVault } from '../integrations/vault.js';
import { listRegistryAudit, type AuditFilter, type RegistryAuditEntry } from './audit.js';
import { IntegrationCalls } from './calls.js';
import { Catalog, type Tier, type TierName } from './catalog.js';
import { Compliance, type Finding, type Policy } from './compliance.js';
import { HealthReports, type HealthReport, type HealthSummary } from './health.js';
import { HealthMonitor } from './monitor.js';
import { RegistryService, tenantScope } from './registry.js';
import { UsageMeter, type Granularity, type GroupBy, type UsageSeries } from './usage.js';

export type { Finding, HealthReport, HealthSummary, RegistryAuditEntry, UsageSeries };

/** How long a connection's budget share is reused before the registry is read again. */
export const SHARE_TTL_MS = 30_000;
/** How long the set of registered integration ids (for counting event deliveries) is reused. */
const KNOWN_TTL_MS = 30_000;

export interface UsageRequest {
  from: number;
  to: number;
  granularity: Granularity;
  groupBy?: GroupBy;
  ownerId?: string;
}

/**
 * The partner registry (issue 18): registration, templates and tiers, health monitoring on the
 * registry actors' durable timers, usage analytics, governance (audit, policies) and role-based
 * access. Built by `createServices`; `start()`/`stop()` own the usage meter's flushing.
 */
export class EcosystemService {
  readonly catalog: Catalog;
  readonly meter: UsageMeter;
  readonly calls: IntegrationCalls;
  readonly registry: RegistryService;
  readonly health: HealthReports;
  readonly compliance: Compliance;
  readonly monitor: HealthMonitor;

  /** `owns`: whether this process runs the health checks of an integration (it owns its actor's partition). */
  constructor(o: { host: ActorHost; pool: pg.Pool; vault: CredentialVault; config: Config; clock: Clock; log: Logger; owns?: (id: string) => boolean }) {
    const { pool, config, clock, log } = o;
    this.catalog = new Catalog({ tiersFile: config.ecosystem.tiersFile, templatesDir: config.ecosystem.templatesDir });
    this.meter = new UsageMeter(pool, config.ecosystem.usageFlushMs, log);
    this.calls = new IntegrationCalls(pool, o.vault, this.meter, clock, config.connectorCallTimeoutMs);
    this.registry = new RegistryService(pool, o.host.actor(ecosystemType), o.vault, this.calls, this.catalog, config, clock, log);
    this.monitor = new HealthMonitor({
      pool,
      actors: o.host.actor(ecosystemType),
      calls: this.calls,
      clock,
      log,
      settingsOf: (tier) => this.registry.settingsOf(tier),
      flushMs: config.ecosystem.usageFlushMs,
      callTimeoutMs: config.connectorCallTimeoutMs,
      ...(o.owns ? { owns: o.owns } : {}),
    });
    this.registry.useMonitor(this.monitor);
    this.health = new HealthReports(pool, this.catalog, clock, this.meter, (id) => this.monitor.healthOf(id));
    this.compliance = new Compliance(pool, this.catalog, clock, config.ecosystem.rotationDays, this.meter);
    this.pool = pool;
    this.clock = clock;
    this.log = log;
  }

  private readonly pool: pg.Pool;
  private readonly clock: Clock;
  private readonly log: Logger;

  /** The `ecosystem` connector (the registry actors' health checks, and requests through an integration). */
  invoker(): ConnectorInvoker {
    return this.calls.invoker();
  }

  /**
   * The tier an integration or provider of a tenant runs under, with its rate-budget share and
   * SLA: what the outbound call door (issue 17) reads to split a provider's budget. A tenant's
   * marketplace connection, or a name not registered, gets the table's `marketplaceTier`.
   */
  async tierOf(tenantId: string, nameOrProvider: string): Promise<Tier & { name: TierName }> {
    const { rows } = await this.pool.query<{ tier: TierName }>(
      `SELECT tier FROM ecosystem_integrations WHERE tenant_id = $1 AND (name = $2 OR platform = $2) AND status = 'active' ORDER BY (name = $2) DESC, name LIMIT 1`,
      [tenantId, nameOrProvider],
    );
    const name = rows[0]?.tier ?? this.catalog.tiers.marketplaceTier;
    return { name, ...this.catalog.tier(name) };
  }

  /**
   * The share of its provider's budget a connection's calls through the outbound door may take
   * (the door's `shareOf` hook): its tier's `rateBudgetShare` when a registered integration of the
   * tenant is that account (by name) or that provider (by platform); 1 otherwise (a marketplace
   * connection not registered keeps the whole budget). Cached per connection for SHARE_TTL_MS:
   * a call costs no query.
   */
  shareOf(c: { tenantId: string; provider: string; account: string }): number | Promise<number> {
    const key = `${c.tenantId}\u0000${c.provider}\u0000${c.account}`;
    const now = this.clock.now();
    const hit = this.#shares.get(key);
    if (hit && hit.until > now) return hit.share;
    const share = this.pool
      .query<{ tier: TierName }>(
        `SELECT tier FROM ecosystem_integrations WHERE tenant_id = $1 AND (name = $2 OR platform = $3) AND status = 'active' ORDER BY (name = $2) DESC, name LIMIT 1`,
        [c.tenantId, c.account, c.provider],
      )
      .then(({ rows }) => {
        const s = rows[0] ? this.catalog.tier(rows[0].tier).rateBudgetShare : 1;
        if (this.#shares.size >= 10_000) this.#shares.clear();
        this.#shares.set(key, { until: this.clock.now() + SHARE_TTL_MS, share: s });
        return s;
      })
      .catch((err: unknown) => {
        // the registry unreadable: the call keeps the provider's budget (which still holds it) rather than failing
        this.log.warn({ err, tenantId: c.tenantId, provider: c.provider }, 'reading the tier share failed; the whole budget applies');
        return 1;
      });
    return share;
  }

  readonly #shares = new Map<string, { until: number; share: number }>();
  /** Registry integration ids with their tenant and platform (events delivered are counted only to these). */
  #known: { at: number; ids: Promise<Map<string, { tenantId: string; platform: string }>> } | undefined;

  /** The outbound door's `attempted` hook: a sync call of a marketplace connection, counted in memory. */
  countSyncCall(c: { tenantId: string; provider: string; account: string }, outcome: { ok: boolean; ms: number; cost: number }): void {
    this.meter.record({ integrationId: `${c.tenantId}:${c.provider}:${c.account}`, tenantId: c.tenantId, provider: c.provider, at: this.clock.now(), ok: outcome.ok, latencyMs: outcome.ms, units: outcome.cost, kind: 'sync' });
  }

  /**
   * The event delivery worker's hook: events delivered, counted per registered integration in
   * memory. A target that is not a registered integration's id is not counted (target ids are
   * free-form: only a registry row says whose an id is).
   */
  countDeliveries(targets: string[], at: number): void {
    const now = this.clock.now();
    if (!this.#known || now - this.#known.at > KNOWN_TTL_MS) {
      const ids = this.pool.query<{ id: string; tenant_id: string; platform: string }>(`SELECT id, tenant_id, platform FROM ecosystem_integrations`).then(({ rows }) => new Map(rows.map((r) => [r.id, { tenantId: r.tenant_id, platform: r.platform }])));
      ids.catch(() => (this.#known = undefined));
      this.#known = { at: now, ids };
    }
    void this.#known.ids
      .then((known) => {
        for (const t of targets) {
          const k = known.get(t);
          if (k) this.meter.record({ integrationId: t, tenantId: k.tenantId, provider: k.platform, at, ok: true, latencyMs: 0, units: 0, kind: 'event' });
        }
      })
      .catch((err: unknown) => this.log.warn({ err }, 'counting event deliveries failed'));
  }

  async healthOf(principal: Principal, name: string, ownerId?: string): Promise<HealthReport> {
    return this.health.report(await this.registry.require(principal, name, ownerId));
  }

  /** Usage of one integration the caller may see. */
  async usageOf(principal: Principal, name: string, q: UsageRequest): Promise<{ integrationId: string; granularity: Granularity; from: string; to: string } & Omit<UsageSeries, 'key'>> {
    const v = await this.registry.require(principal, name, q.ownerId);
    const series = await this.meter.query({ from: q.from, to: q.to, granularity: q.granularity, groupBy: 'integration', integrationIds: [v.id] });
    const s = series[0] ?? { key: v.id, totals: { calls: 0, errors: 0, errorRate: 0, averageLatencyMs: null, maxLatencyMs: null, budgetUnits: 0, syncCalls: 0, eventsDelivered: 0, webhooks: 0 }, buckets: [] };
    return { integrationId: v.id, granularity: q.granularity, from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(), totals: s.totals, buckets: s.buckets };
  }

  /** The roll-up across the integrations the caller may see, grouped by integration, tenant or provider. */
  async usage(principal: Principal, q: UsageRequest): Promise<{ groupBy: GroupBy; granularity: Granularity; from: string; to: string; data: UsageSeries[] }> {
    const scope = tenantScope(principal);
    const groupBy = q.groupBy ?? 'integration';
    const tenantId = scope ?? q.ownerId;
    const data = await this.meter.query({ from: q.from, to: q.to, granularity: q.granularity, groupBy, ...(tenantId ? { tenantId } : {}) });
    return { groupBy, granularity: q.granularity, from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(), data };
  }

  async complianceReport(principal: Principal, q: { name?: string; ownerId?: string; policy?: Policy }): Promise<{ checkedAt: string; findings: Finding[] }> {
    const scope = tenantScope(principal);
    let integrationId: string | undefined;
    if (q.name) integrationId = (await this.registry.require(principal, q.name, q.ownerId)).id;
    const findings = await this.compliance.findings({ tenantId: scope ?? q.ownerId ?? null, ...(integrationId ? { integrationId } : {}), ...(q.policy ? { policy: q.policy } : {}) });
    return { checkedAt: new Date(this.clock.now()).toISOString(), findings };
  }

  /** The findings of one integration (what registration and update answer with). */
  findingsOf(integrationId: string): Promise<Finding[]> {
    return this.compliance.findings({ tenantId: null, integrationId });
  }

  async audit(principal: Principal, f: Omit<AuditFilter, 'tenantId'>): Promise<{ data: RegistryAuditEntry[]; nextCursor: string | null }> {
    const scope = tenantScope(principal);
    if (scope && f.ownerId && f.ownerId !== scope) return { data: [], nextCursor: null };
    if (f.from !== undefined && f.to !== undefined && f.to <= f.from) throw new DomainError(DomainCode.ValidationFailed, 'to must be after from', { field: 'to' });
    return listRegistryAudit(this.pool, { ...f, tenantId: scope });
  }

  /**
   * Starts the usage meter's flushing and the health monitor; with `reconcile`, first aligns the
   * registry actors with their rows (see `RegistryService.reconcile`).
   */
  async start(o: { reconcile?: boolean } = {}): Promise<void> {
    this.meter.start();
    if (o.reconcile) await this.registry.reconcile();
    await this.monitor.start();
  }

  async stop(): Promise<void> {
    await this.monitor.stop();
    await this.meter.stop();
  }
}
