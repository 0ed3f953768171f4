import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import type { Catalog } from './catalog.js';
import { availabilityOf } from './health.js';
import type { UsageMeter } from './usage.js';

export const POLICIES = ['credentials_rotation', 'community_production_scopes', 'sla_breach', 'certificate_expiry'] as const;
export type Policy = (typeof POLICIES)[number];

/** One policy an integration does not meet, with what to do about it. */
export interface Finding {
  integrationId: string;
  name: string;
  ownerId: string;
  tier: string;
  policy: Policy;
  severity: 'warning' | 'critical';
  message: string;
  fix: string;
  details: Record<string, unknown>;
}

/** Certificates expiring within this many days are a finding. */
export const CERTIFICATE_WARNING_DAYS = 30;
const DAY = 86_400_000;

interface Row {
  id: string;
  tenant_id: string;
  name: string;
  tier: string;
  scopes: string[];
  credentials_set_at: Date;
  certificate_expires_at: Date | null;
}

/**
 * The governance policies, evaluated over the registry: credentials older than the rotation
 * period, a community-tier integration holding production scopes, an integration whose measured
 * availability is below its tier's SLA target, a certificate expiring within 30 days. Checked at
 * registration and update (the answer carries the integration's findings) and reported by
 * `GET /api/v1/ecosystem/compliance`.
 */
export class Compliance {
  constructor(
    private readonly pool: pg.Pool,
    private readonly catalog: Catalog,
    private readonly clock: Clock,
    private readonly rotationDays: number,
    private readonly meter: UsageMeter,
  ) {}

  /** Findings over the integrations of `tenantId` (all when null), or of one integration. */
  async findings(o: { tenantId: string | null; integrationId?: string; policy?: Policy }): Promise<Finding[]> {
    const params: unknown[] = [];
    const cond: string[] = [];
    if (o.tenantId) {
      params.push(o.tenantId);
      cond.push(`tenant_id = $${params.length}`);
    }
    if (o.integrationId) {
      params.push(o.integrationId);
      cond.push(`id = $${params.length}`);
    }
    const { rows } = await this.pool.query<Row>(
      `SELECT id, tenant_id, name, tier, scopes, credentials_set_at, certificate_expires_at FROM ecosystem_integrations
        WHERE status = 'active' ${cond.length ? `AND ${cond.join(' AND ')}` : ''} ORDER BY name, id`,
      params,
    );
    const now = this.clock.now();
    const avail = await availabilityOf(this.pool, this.meter, now, o.integrationId ? [o.integrationId] : undefined);
    const out: Finding[] = [];
    for (const r of rows) {
      const tier = this.catalog.tier(r.tier);
      const base = { integrationId: r.id, name: r.name, ownerId: r.tenant_id, tier: r.tier };
      const ageDays = Math.floor((now - r.credentials_set_at.getTime()) / DAY);
      if (ageDays >= this.rotationDays) {
        out.push({
          ...base,
          policy: 'credentials_rotation',
          severity: ageDays >= this.rotationDays * 2 ? 'critical' : 'warning',
          message: `credentials are ${ageDays} days old; the rotation period is ${this.rotationDays} days`,
          fix: `rotate the credentials: issue new ones at the service and PATCH /api/v1/ecosystem/integrations/${r.name} with { "credentials": ... }`,
          details: { credentialsSetAt: r.credentials_set_at.toISOString(), ageDays, rotationDays: this.rotationDays },
        });
      }
      if (tier && !tier.productionScopesAllowed) {
        const prod = this.catalog.productionScopes(r.scopes);
        if (prod.length > 0) {
          out.push({
            ...base,
            policy: 'community_production_scopes',
            severity: 'critical',
            message: `a ${r.tier}-tier integration holds production scopes: ${prod.join(', ')}`,
            fix: `move it to the professional or enterprise tier (PATCH { "tier": ... }), or rotate to credentials without ${prod.join(', ')}`,
            details: { scopes: prod },
          });
        }
      }
      const a = avail.get(r.id);
      if (tier?.slaTarget != null && a) {
        for (const [window, x] of [['24h', a.last24h], ['30d', a.last30d]] as const) {
          if (x.percent !== null && x.percent < tier.slaTarget) {
            out.push({
              ...base,
              policy: 'sla_breach',
              severity: 'critical',
              message: `availability over ${window} is ${x.percent}% (${x.ok} of ${x.checks} checks), below the ${r.tier} SLA of ${tier.slaTarget}%`,
              fix: `see GET /api/v1/ecosystem/integrations/${r.name}/health for the failing checks; restore the service or its health check, or agree a tier whose SLA it can meet`,
              details: { window, availability: x.percent, target: tier.slaTarget, checks: x.checks },
            });
            break;
          }
        }
      }
      if (r.certificate_expires_at) {
        const daysLeft = Math.floor((r.certificate_expires_at.getTime() - now) / DAY);
        if (daysLeft < CERTIFICATE_WARNING_DAYS) {
          out.push({
            ...base,
            policy: 'certificate_expiry',
            severity: daysLeft < 7 ? 'critical' : 'warning',
            message: daysLeft < 0 ? `the client certificate expired on ${r.certificate_expires_at.toISOString()}` : `the client certificate expires in ${daysLeft} days (${r.certificate_expires_at.toISOString()})`,
            fix: `issue a renewed client certificate and PATCH /api/v1/ecosystem/integrations/${r.name} with { "credentials": { "certPem", "keyPem" } }`,
            details: { expiresAt: r.certificate_expires_at.toISOString(), daysLeft },
          });
        }
      }
    }
    return o.policy ? out.filter((f) => f.policy === o.policy) : out;
  }
}
