import { sql, type SelectQueryBuilder } from 'kysely';
import type pg from 'pg';
import { queryBuilder, type Db, type Schema } from '../../common/schema.js';
import { StepError, type StepRunContext, type StepRunner } from './types.js';

/**
 * The `query` step: reads Concord's own data, tenant-scoped, through a whitelist. A playbook
 * names a `resource` and equality `filter`s on that resource's declared fields; nothing else
 * reaches SQL (no raw SQL, no column names from the playbook: every field maps to a fixed
 * expression here, values are bound parameters).
 *
 * ```yaml
 * query: { resource: integrations, filter: { health: unhealthy, provider: shopify }, limit: 50 }
 * ```
 *
 * Tenancy: `ctx.tenantId` is the playbook's owner. A vendor or partner tenant sees the
 * relationships and workflows it is party to (vendor or partner), its own integrations and its
 * own executions. {@link PLATFORM_TENANT} (an operator's playbook) sees every tenant's, and is the
 * only one that may read sagas and cross-integration events, which are platform records.
 *
 * Extension point: a new resource is one entry of {@link RESOURCES} (its filter fields and a
 * function from the filter to a kysely query). `inventory` reads `inventory_items` (issue 17's
 * stock per SKU; `stockBelow` finds low stock) and `partners` the partner registry
 * (`ecosystem_integrations` of issue 18: tier, platform, status; never its auth or config).
 */

/** The tenant id of an operator's (platform) playbook. */
export const PLATFORM_TENANT = '';

export const QueryCode = {
  Invalid: 'QUERY_INVALID',
  Forbidden: 'QUERY_FORBIDDEN',
} as const;

export const QUERY_LIMITS = Object.freeze({ defaultLimit: 100, maxLimit: 1000 });

type Filter = Record<string, string | number | boolean>;
type Row = Record<string, unknown>;

interface Resource {
  /** Filter fields and the values each accepts (`null`: any string). */
  fields: Record<string, readonly string[] | null>;
  platformOnly?: boolean;
  run(db: Db, tenant: string, filter: Filter, limit: number): Promise<Row[]>;
}

/** Integration connection states by health: what `filter: { health: unhealthy }` selects. */
export const INTEGRATION_HEALTH: Record<'healthy' | 'unhealthy' | 'inactive', readonly string[]> = {
  healthy: ['connected'],
  unhealthy: ['token_expired', 'reauthorization_required', 'paused'],
  inactive: ['connecting', 'disconnected'],
};

const healthOf = (state: string): string =>
  (Object.entries(INTEGRATION_HEALTH).find(([, states]) => states.includes(state))?.[0] as string | undefined) ?? 'unknown';

type ActorsQuery = SelectQueryBuilder<Schema, 'actors', { id: string; tenant: string | null; status: string; state_value: unknown; attrs: Record<string, unknown>; snapshot: unknown; created_at: Date; updated_at: Date }>;

function actors(db: Db, type: string, limit: number): ActorsQuery {
  return db
    .selectFrom('actors')
    .select(['id', 'tenant', 'status', 'state_value', 'attrs', 'snapshot', 'created_at', 'updated_at'])
    .where('type', '=', type)
    .orderBy('updated_at', 'desc')
    .orderBy('id')
    .limit(limit);
}

const attr = (name: string) => sql<string>`attrs->>${name}`;

/** Vendor-or-partner scoping of relationships and workflows (the vendor is the tenant column, the partner an attribute). */
function party(q: ActorsQuery, tenant: string): ActorsQuery {
  if (tenant === PLATFORM_TENANT) return q;
  return q.where((eb) => eb.or([eb('tenant', '=', tenant), eb(attr('partnerId'), '=', tenant)]));
}

function byAttrs(q: ActorsQuery, filter: Filter, names: string[]): ActorsQuery {
  for (const n of names) if (filter[n] !== undefined) q = q.where(attr(n), '=', String(filter[n]));
  return q;
}

const contextOf = (snapshot: unknown) => ((snapshot as { context?: Record<string, unknown> } | null)?.context ?? {});
const iso = (d: Date) => d.toISOString();

export const RESOURCES: Record<string, Resource> = {
  relationships: {
    fields: { status: null, vendorId: null, partnerId: null, relationshipType: null },
    async run(db, tenant, f, limit) {
      let q = party(actors(db, 'relationship', limit), tenant);
      if (f.status !== undefined) q = q.where('status', '=', String(f.status).toUpperCase());
      const rows = await byAttrs(q, f, ['vendorId', 'partnerId', 'relationshipType']).execute();
      return rows.map((r) => {
        const c = contextOf(r.snapshot);
        return { id: r.id, status: r.status, vendorId: c.vendorId, partnerId: c.partnerId, relationshipType: c.relationshipType, startDate: c.startDate ?? null, endDate: c.endDate ?? null, updatedAt: iso(r.updated_at) };
      });
    },
  },
  workflows: {
    fields: { status: null, vendorId: null, partnerId: null, workflowType: null, integrationId: null },
    async run(db, tenant, f, limit) {
      let q = party(actors(db, 'workflow', limit), tenant);
      if (f.status !== undefined) q = q.where('status', '=', String(f.status).toUpperCase());
      const rows = await byAttrs(q, f, ['vendorId', 'partnerId', 'workflowType', 'integrationId']).execute();
      return rows.map((r) => {
        const c = contextOf(r.snapshot);
        return { id: r.id, status: r.status, name: c.name ?? null, workflowType: c.workflowType ?? null, vendorId: c.vendorId ?? null, partnerId: c.partnerId ?? null, updatedAt: iso(r.updated_at) };
      });
    },
  },
  sagas: {
    fields: { status: null, workflowType: null, correlationId: null },
    platformOnly: true,
    async run(db, _tenant, f, limit) {
      let q = actors(db, 'saga', limit);
      if (f.status !== undefined) q = q.where('status', '=', String(f.status).toUpperCase());
      const rows = await byAttrs(q, f, ['workflowType', 'correlationId']).execute();
      return rows.map((r) => ({ id: r.id, status: r.status, ...r.attrs, updatedAt: iso(r.updated_at) }));
    },
  },
  events: {
    fields: { status: ['pending', 'processed', 'failed'], eventName: null, eventCategory: null, sourceIntegrationId: null, priority: ['low', 'medium', 'high', 'critical'] },
    platformOnly: true,
    async run(db, _tenant, f, limit) {
      let q = db
        .selectFrom('cross_integration_events')
        .select(['id', 'event_name', 'source_integration_id', 'target_integration_ids', 'event_category', 'priority', 'status', 'error_message', 'created_at'])
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit);
      if (f.status !== undefined) q = q.where('status', '=', String(f.status) as 'pending');
      if (f.eventName !== undefined) q = q.where('event_name', '=', String(f.eventName));
      if (f.eventCategory !== undefined) q = q.where('event_category', '=', String(f.eventCategory));
      if (f.sourceIntegrationId !== undefined) q = q.where('source_integration_id', '=', String(f.sourceIntegrationId));
      if (f.priority !== undefined) q = q.where('priority', '=', String(f.priority) as 'low');
      const rows = await q.execute();
      return rows.map((r) => ({
        id: r.id, eventName: r.event_name, sourceIntegrationId: r.source_integration_id, targetIntegrationIds: r.target_integration_ids,
        eventCategory: r.event_category, priority: r.priority, status: r.status, errorMessage: r.error_message, createdAt: iso(r.created_at),
      }));
    },
  },
  integrations: {
    fields: { health: Object.keys(INTEGRATION_HEALTH), state: ['connecting', 'connected', 'token_expired', 'reauthorization_required', 'paused', 'disconnected'], provider: null, account: null },
    async run(db, tenant, f, limit) {
      let q = actors(db, 'integration', limit);
      if (tenant !== PLATFORM_TENANT) q = q.where('tenant', '=', tenant);
      if (f.state !== undefined) q = q.where('status', '=', String(f.state).toUpperCase());
      if (f.health !== undefined) q = q.where('status', 'in', INTEGRATION_HEALTH[f.health as 'healthy']!.map((s) => s.toUpperCase()));
      const rows = await byAttrs(q, f, ['provider', 'account']).execute();
      return rows.map((r) => {
        const c = contextOf(r.snapshot);
        const state = r.status.toLowerCase();
        return {
          id: r.id, tenantId: r.tenant, provider: c.provider ?? null, account: c.account ?? null, state, health: healthOf(state),
          lastError: (c.lastError as { code?: string; message?: string } | null) ? { code: (c.lastError as { code: string }).code, message: (c.lastError as { message: string }).message } : null,
          tokenExpiresAt: c.tokenExpiresAt ?? null, lastWebhook: c.lastWebhook ?? null, updatedAt: iso(r.updated_at),
        };
      });
    },
  },
  inventory: {
    fields: { sku: null, source: null, stockBelow: null },
    async run(db, tenant, f, limit) {
      const below = f.stockBelow === undefined ? null : Number(f.stockBelow);
      if (below !== null && !Number.isInteger(below)) throw new StepError(QueryCode.Invalid, 'query.filter.stockBelow must be an integer', false);
      const { rows } = await sql<{ tenant_id: string; sku: string; stock: number; source: string; changed_at: Date }>`
        SELECT tenant_id, sku, stock, source, changed_at FROM inventory_items
        WHERE (${tenant} = '' OR tenant_id = ${tenant})
          AND (${f.sku === undefined ? null : String(f.sku)}::text IS NULL OR sku = ${f.sku === undefined ? null : String(f.sku)})
          AND (${f.source === undefined ? null : String(f.source)}::text IS NULL OR source = ${f.source === undefined ? null : String(f.source)})
          AND (${below}::int IS NULL OR stock < ${below})
        ORDER BY changed_at DESC, sku LIMIT ${limit}`.execute(db);
      return rows.map((r) => ({ tenantId: r.tenant_id, sku: r.sku, stock: r.stock, source: r.source, changedAt: iso(r.changed_at) }));
    },
  },
  partners: {
    fields: { platform: null, tier: null, status: ['active', 'inactive'], name: null },
    async run(db, tenant, f, limit) {
      const v = (k: string) => (f[k] === undefined ? null : String(f[k]));
      const { rows } = await sql<{ id: string; tenant_id: string; name: string; platform: string; template: string; tier: string; features: string[]; status: string; credentials_revoked_at: Date | null; certificate_expires_at: Date | null; updated_at: Date }>`
        SELECT id, tenant_id, name, platform, template, tier, features, status, credentials_revoked_at, certificate_expires_at, updated_at FROM ecosystem_integrations
        WHERE (${tenant} = '' OR tenant_id = ${tenant})
          AND (${v('platform')}::text IS NULL OR platform = ${v('platform')})
          AND (${v('tier')}::text IS NULL OR tier = ${v('tier')})
          AND (${v('status')}::text IS NULL OR status = ${v('status')})
          AND (${v('name')}::text IS NULL OR name = ${v('name')})
        ORDER BY updated_at DESC, id LIMIT ${limit}`.execute(db);
      return rows.map((r) => ({
        id: r.id, tenantId: r.tenant_id, name: r.name, platform: r.platform, template: r.template, tier: r.tier, features: r.features, status: r.status,
        credentialsRevokedAt: r.credentials_revoked_at ? iso(r.credentials_revoked_at) : null, certificateExpiresAt: r.certificate_expires_at ? iso(r.certificate_expires_at) : null, updatedAt: iso(r.updated_at),
      }));
    },
  },
  executions: {
    fields: { status: null, playbookId: null, trigger: null },
    async run(db, tenant, f, limit) {
      let q = actors(db, 'playbook-execution', limit);
      if (tenant !== PLATFORM_TENANT) q = q.where('tenant', '=', tenant);
      if (f.status !== undefined) q = q.where(sql<string>`lower(status)`, '=', String(f.status).toLowerCase());
      const rows = await byAttrs(q, f, ['playbookId', 'trigger']).execute();
      return rows.map((r) => ({ id: r.id, status: r.status.toLowerCase(), ...r.attrs, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) }));
    },
  },
};

export interface QuerySpec {
  resource: string;
  filter: Filter;
  limit: number;
}

/** Checks a `query` spec against the whitelist; throws `QUERY_INVALID` naming the field. */
export function parseQuery(spec: unknown): QuerySpec {
  const s = spec as { resource?: unknown; filter?: unknown; limit?: unknown } | null;
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new StepError(QueryCode.Invalid, 'query must be an object: { resource, filter?, limit? }', false);
  for (const k of Object.keys(s)) if (!['resource', 'filter', 'limit'].includes(k)) throw new StepError(QueryCode.Invalid, `query has no field '${k}' (resource, filter, limit)`, false);
  if (typeof s.resource !== 'string' || !Object.hasOwn(RESOURCES, s.resource)) {
    throw new StepError(QueryCode.Invalid, `query.resource must be one of ${Object.keys(RESOURCES).join(', ')}`, false);
  }
  const resource = RESOURCES[s.resource]!;
  const filter: Filter = {};
  if (s.filter !== undefined) {
    if (!s.filter || typeof s.filter !== 'object' || Array.isArray(s.filter)) throw new StepError(QueryCode.Invalid, 'query.filter must be an object of field: value', false);
    for (const [k, v] of Object.entries(s.filter)) {
      if (!Object.hasOwn(resource.fields, k)) throw new StepError(QueryCode.Invalid, `query.filter.${k}: ${s.resource} can be filtered by ${Object.keys(resource.fields).join(', ')}`, false);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new StepError(QueryCode.Invalid, `query.filter.${k} must be a string, number or boolean`, false);
      const allowed = resource.fields[k];
      if (allowed && !allowed.includes(String(v))) throw new StepError(QueryCode.Invalid, `query.filter.${k} must be one of ${allowed.join(', ')}`, false);
      filter[k] = v;
    }
  }
  const limit = s.limit === undefined ? QUERY_LIMITS.defaultLimit : s.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > QUERY_LIMITS.maxLimit) {
    throw new StepError(QueryCode.Invalid, `query.limit must be an integer from 1 to ${QUERY_LIMITS.maxLimit}`, false);
  }
  return { resource: s.resource, filter, limit };
}

/** The `query` runner: the matching records, newest first, as JSON. */
export function queryRunner(pool: pg.Pool): StepRunner {
  const db = queryBuilder(pool);
  return async (spec: unknown, _scope, ctx: StepRunContext) => {
    const q = parseQuery(spec);
    const resource = RESOURCES[q.resource]!;
    if (resource.platformOnly && ctx.tenantId !== PLATFORM_TENANT) {
      throw new StepError(QueryCode.Forbidden, `${q.resource} are platform records: only an operator's playbook can query them`, false);
    }
    const rows = await resource.run(db, ctx.tenantId, q.filter, q.limit);
    ctx.log(`query ${q.resource}: ${rows.length} record(s)`, { resource: q.resource, filter: q.filter, count: rows.length });
    return rows;
  };
}
