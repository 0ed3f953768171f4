import { createHash } from 'node:crypto';
import type { HealthStatus } from '../../machines/ecosystem/index.js';
import { iso } from '../common/sql.js';

/** A registered integration (or a marketplace connection) as the API shows it: never a secret. */
export interface IntegrationView {
  id: string;
  name: string;
  ownerId: string;
  platform: string;
  template: string;
  tier: string;
  features: string[];
  authPattern: string | null;
  /** The non-secret half of the authentication (`in`/`name`, `tokenUrl`/`scopes`, the certificate's description). */
  auth: Record<string, unknown>;
  scopes: string[];
  config: Record<string, unknown>;
  status: 'active' | 'inactive';
  /** `registry`: registered here; `marketplace`: a connection made at /api/integrations (managed there). */
  source: 'registry' | 'marketplace';
  health: HealthStatus;
  /** The credentials' version and times (never their value); `revokedAt` set once revoked. Null for marketplace connections. */
  credentials: { version: number; setAt: string; certificateExpiresAt: string | null; revokedAt: string | null } | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** What a list or read of integrations filters on. */
export interface ItemFilter {
  tenantId?: string | undefined;
  tier?: string | undefined;
  platform?: string | undefined;
  status?: string | undefined;
  feature?: string | undefined;
  source?: 'registry' | 'marketplace' | undefined;
  name?: string | undefined;
  id?: string | undefined;
  /** Keyset: only items after this (name, id). */
  after?: { name: string; id: string } | undefined;
  limit: number;
}

/** A branch of the list: its select list and the expressions its filters compare. */
interface Branch {
  source: 'registry' | 'marketplace';
  select: string;
  from: string;
  where: string[];
  col: Record<'tenant' | 'tier' | 'platform' | 'status' | 'features' | 'name' | 'id', string>;
}

const REGISTRY: Branch = {
  source: 'registry',
  select: `i.id, i.tenant_id, i.name, i.platform, i.template, i.tier, i.features, i.auth_pattern, i.auth, i.scopes, i.config, i.status,
         'registry' AS source,
         -- per row of the page (a primary-key probe), not a join that would read every registry actor
         coalesce((SELECT a.attrs->>'health' FROM actors a WHERE a.type = 'ecosystem' AND a.id = i.id), 'unknown') AS health,
         i.credentials_version, i.credentials_set_at, i.credentials_revoked_at,
         i.certificate_expires_at, i.version, i.created_at, i.updated_at`,
  from: 'ecosystem_integrations i',
  where: [],
  col: { tenant: 'i.tenant_id', tier: 'i.tier', platform: 'i.platform', status: 'i.status', features: 'i.features', name: 'i.name', id: 'i.id' },
};

const MARKETPLACE_STATUS = `CASE WHEN m.status = 'DISCONNECTED' THEN 'inactive' ELSE 'active' END`;
const MARKETPLACE_FEATURES = `ARRAY['inventory_sync', 'webhooks']::text[]`;

const marketplace = (tier: string): Branch => ({
  source: 'marketplace',
  select: `m.id, m.tenant AS tenant_id, m.attrs->>'account' AS name, m.attrs->>'provider' AS platform, 'marketplace' AS template, '${tier}' AS tier,
         ${MARKETPLACE_FEATURES} AS features, CASE WHEN m.attrs->>'provider' = 'generic' THEN NULL ELSE 'oauth2' END AS auth_pattern, '{}'::jsonb AS auth,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(m.snapshot->'context'->'scopes', '[]'::jsonb))) AS scopes, '{}'::jsonb AS config,
         ${MARKETPLACE_STATUS} AS status, 'marketplace' AS source,
         CASE m.status WHEN 'CONNECTED' THEN 'healthy' WHEN 'TOKEN_EXPIRED' THEN 'degraded' WHEN 'REAUTHORIZATION_REQUIRED' THEN 'unhealthy' ELSE 'unknown' END AS health,
         NULL::bigint AS credentials_version, NULL::timestamptz AS credentials_set_at, NULL::timestamptz AS credentials_revoked_at, NULL::timestamptz AS certificate_expires_at, m.version, m.created_at, m.updated_at`,
  from: 'actors m',
  where: [`m.type = 'integration'`, 'm.tenant IS NOT NULL', `m.attrs->>'account' IS NOT NULL`],
  col: { tenant: 'm.tenant', tier: `'${tier}'::text`, platform: `(m.attrs->>'provider')`, status: MARKETPLACE_STATUS, features: MARKETPLACE_FEATURES, name: `(m.attrs->>'account')`, id: 'm.id' },
});

/**
 * Registered integrations and marketplace connections as one list, ordered by (name, id). Each
 * side is filtered, ordered and limited on its own (the registry side by the `(name, id)` index),
 * then the two are merged: a page of 10,000 integrations reads about a page, not all of them.
 * `marketplaceTier` is a tier name from the checked tier table (one of three words).
 */
export function itemsSql(marketplaceTier: string, f: ItemFilter): { name: string; text: string; values: unknown[] } {
  const values: unknown[] = [];
  const v = (x: unknown) => {
    values.push(x);
    return `$${values.length}`;
  };
  const branches = [REGISTRY, marketplace(marketplaceTier)].filter((b) => !f.source || b.source === f.source);
  const limit = v(f.limit);
  const parts = branches.map((b) => {
    const w = [...b.where];
    if (f.tenantId !== undefined) w.push(`${b.col.tenant} = ${v(f.tenantId)}`);
    if (f.tier !== undefined) w.push(`${b.col.tier} = ${v(f.tier)}`);
    if (f.platform !== undefined) w.push(`${b.col.platform} = ${v(f.platform)}`);
    if (f.status !== undefined) w.push(`${b.col.status} = ${v(f.status)}`);
    if (f.feature !== undefined) w.push(`${b.col.features} @> ARRAY[${v(f.feature)}]::text[]`);
    if (f.name !== undefined) w.push(`${b.col.name} = ${v(f.name)}`);
    if (f.id !== undefined) w.push(`${b.col.id} = ${v(f.id)}`);
    if (f.after) w.push(`(${b.col.name}, ${b.col.id}) > (${v(f.after.name)}, ${v(f.after.id)})`);
    return `(SELECT ${b.select} FROM ${b.from} ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY ${b.col.name}, ${b.col.id} LIMIT ${limit})`;
  });
  const text = `SELECT x.* FROM (${parts.join(' UNION ALL ')}) x ORDER BY x.name, x.id LIMIT ${limit}`;
  // one prepared statement per shape of filter (a few dozen at most): planned once per connection
  return { name: `eco_items_${createHash('sha1').update(text).digest('base64url').slice(0, 16)}`, text, values };
}

export interface ItemRow {
  id: string;
  tenant_id: string;
  name: string;
  platform: string;
  template: string;
  tier: string;
  features: string[];
  auth_pattern: string | null;
  auth: Record<string, unknown>;
  scopes: string[];
  config: Record<string, unknown>;
  status: 'active' | 'inactive';
  source: 'registry' | 'marketplace';
  health: HealthStatus;
  credentials_version: string | null;
  credentials_set_at: Date | null;
  credentials_revoked_at: Date | null;
  certificate_expires_at: Date | null;
  version: number | string;
  created_at: Date;
  updated_at: Date;
}

export function viewOf(r: ItemRow): IntegrationView {
  return {
    id: r.id,
    name: r.name,
    ownerId: r.tenant_id,
    platform: r.platform,
    template: r.template,
    tier: r.tier,
    features: r.features,
    authPattern: r.auth_pattern,
    auth: r.auth,
    scopes: r.scopes,
    config: r.config,
    status: r.status,
    source: r.source,
    health: r.health,
    credentials: r.credentials_set_at ? { version: Number(r.credentials_version), setAt: iso(r.credentials_set_at)!, certificateExpiresAt: iso(r.certificate_expires_at), revokedAt: iso(r.credentials_revoked_at) } : null,
    version: Number(r.version),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}
