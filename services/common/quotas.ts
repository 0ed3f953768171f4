import { fullBucket, reserveToken, type Bucket, type RateRule } from '../../machines/lib/bucket.js';
import type { TenantQuotas } from '../../runtime/config.js';
import { DomainCode, DomainError } from './errors.js';

/** Buckets kept at most; past it, the longest-idle ones go (a full bucket is the same as none). */
const MAX_BUCKETS = 50_000;
/**
 * A request a little over its tenant's rate waits up to this long for its token instead of being
 * refused (so a client looping on its answers is slowed to its rate rather than spinning on 429s,
 * which cost the edge as much as an answer); past it, 429.
 */
export const QUOTA_MAX_WAIT_MS = 1_000;

/**
 * Per-tenant API quotas (`TENANT_QUOTAS`): one token bucket per tenant in this process, taken
 * once per request before any work. A refusal costs a map lookup and no I/O, so a tenant
 * flooding the edge spends its own quota, not the database's time that other tenants need.
 */
export class TenantQuotaService {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly quotas: TenantQuotas) {}

  /** The rule for a tenant, or null when it is unlimited. */
  ruleOf(tenantId: string): RateRule | null {
    return this.quotas.tenants.has(tenantId) ? this.quotas.tenants.get(tenantId)! : this.quotas.default;
  }

  /** Whether any tenant is limited at all (the edge skips the check when none is). */
  get enabled(): boolean {
    return this.quotas.default !== null || [...this.quotas.tenants.values()].some((r) => r !== null);
  }

  /**
   * Takes one request from the tenant's quota: answers how long it must wait for its token (0: go
   * now; at most QUOTA_MAX_WAIT_MS), or throws QUOTA_EXCEEDED with the wait a retry needs.
   */
  take(tenantId: string, now: number): number {
    const rule = this.ruleOf(tenantId);
    if (rule === null) return 0;
    const held = this.buckets.get(tenantId);
    const r = reserveToken(rule, held ?? fullBucket(rule, now), now, QUOTA_MAX_WAIT_MS);
    // re-inserting keeps the map in last-used order, so eviction takes the idlest first
    if (held) this.buckets.delete(tenantId);
    else if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(tenantId, r.bucket);
    if (r.ok) return r.waitMs;
    const retryAfter = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
    throw new DomainError(DomainCode.QuotaExceeded, `tenant ${tenantId} is over its API quota; retry in ${retryAfter} s`, { retryAfter });
  }
}
