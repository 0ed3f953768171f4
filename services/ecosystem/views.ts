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
  credentials: { version: number; setAt: string; certificateExpiresAt: string | null } | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The columns every list and read selects (a registry row and its actor's health, or a marketplace connection actor). */
export const ITEMS = (marketplaceTier: string) => `
  SELECT i.id, i.tenant_id, i.name, i.platform, i.template, i.tier, i.features, i.auth_pattern, i.auth, i.scopes, i.config, i.status,
         'registry' AS source, coalesce(a.attrs->>'health', 'unknown') AS health, i.credentials_version, i.credentials_set_at,
         i.certificate_expires_at, i.version, i.created_at, i.updated_at
    FROM ecosystem_integrations i LEFT JOIN actors a ON a.type = 'ecosystem' AND a.id = i.id
  UNION ALL
  SELECT m.id, m.tenant, m.attrs->>'account', m.attrs->>'provider', 'marketplace', '${marketplaceTier}', ARRAY['inventory_sync', 'webhooks']::text[],
         CASE WHEN m.attrs->>'provider' = 'generic' THEN NULL ELSE 'oauth2' END, '{}'::jsonb,
         ARRAY(SELECT jsonb_array_elements_text(coalesce(m.snapshot->'context'->'scopes', '[]'::jsonb))), '{}'::jsonb,
         CASE WHEN m.status = 'DISCONNECTED' THEN 'inactive' ELSE 'active' END, 'marketplace',
         CASE m.status WHEN 'CONNECTED' THEN 'healthy' WHEN 'TOKEN_EXPIRED' THEN 'degraded' WHEN 'REAUTHORIZATION_REQUIRED' THEN 'unhealthy' ELSE 'unknown' END,
         NULL, NULL, NULL, m.version, m.created_at, m.updated_at
    FROM actors m WHERE m.type = 'integration' AND m.tenant IS NOT NULL AND m.attrs->>'account' IS NOT NULL`;

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
    credentials: r.credentials_set_at ? { version: Number(r.credentials_version), setAt: iso(r.credentials_set_at)!, certificateExpiresAt: iso(r.certificate_expires_at) } : null,
    version: Number(r.version),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}
