import { z } from '@hono/zod-openapi';
import { router, routes } from '../env.js';
import { Cursor, errors, Filter, IdempotencyKeyHeader, json, jsonBody, JsonObject, Limit, Timestamp } from '../schemas.js';
import { idempotencyOf, reply } from '../idempotency.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';

const TIER = z.enum(['enterprise', 'professional', 'community']);
const PATTERN = z.enum(['api_key', 'oauth2', 'service_account', 'certificate']);
const HealthCheck = z.object({ path: z.string().min(1).max(500).startsWith('/'), expectStatus: z.number().int().min(100).max(599) }).strict();
const Config = z
  .object({ baseUrl: z.string().min(1).max(2000).openapi({ example: 'https://dbc-123.cloud.databricks.com/api/2.0' }), healthCheck: HealthCheck.optional() })
  .catchall(z.unknown())
  .openapi({ description: "For the generic connector: the service's base URL and the health check (default: the template's)" });
const Credentials = z
  .union([
    z.object({ apiKey: z.string().min(1).max(4000), in: z.enum(['header', 'query']).default('header'), name: z.string().min(1).max(100).default('x-api-key') }).strict(),
    z.object({ tokenUrl: z.string().min(1).max(2000), clientId: z.string().min(1).max(500), clientSecret: z.string().min(1).max(4000), scopes: z.array(z.string().min(1).max(200)).max(50).optional() }).strict(),
    z.object({ certPem: z.string().min(1).max(20_000), keyPem: z.string().min(1).max(20_000), caPem: z.string().min(1).max(20_000).optional() }).strict(),
  ])
  .openapi({ description: 'api_key: { apiKey, in, name }; oauth2 / service_account (client credentials): { tokenUrl, clientId, clientSecret, scopes }; certificate (mutual TLS): { certPem, keyPem, caPem }. Stored in the vault; never answered' });
const Features = z.array(z.string().min(1).max(100)).max(50);
const Name = z.string().min(1).max(100);

const RegisterBody = z
  .object({
    name: Name.openapi({ example: 'databricks-prod' }),
    platform: z.string().min(1).max(100).openapi({ example: 'databricks' }),
    template: z.string().min(1).max(100).openapi({ example: 'data-platform' }),
    tier: TIER,
    features: Features.optional(),
    authPattern: PATTERN,
    credentials: Credentials,
    config: Config,
    ownerId: z.string().min(1).max(200).optional().openapi({ description: 'The vendor or partner that owns it; operators must name it' }),
  })
  .strict()
  .openapi('EcosystemRegisterRequest');

const UpdateBody = z
  .object({ platform: z.string().min(1).max(100).optional(), tier: TIER.optional(), features: Features.optional(), config: Config.optional(), authPattern: PATTERN.optional(), credentials: Credentials.optional() })
  .strict()
  .openapi('EcosystemUpdateRequest');

const Finding = z
  .object({ integrationId: z.string(), name: z.string(), ownerId: z.string(), tier: z.string(), policy: z.string(), severity: z.enum(['warning', 'critical']), message: z.string(), fix: z.string(), details: JsonObject })
  .openapi('EcosystemFinding');

const Integration = z
  .object({
    id: z.string(),
    name: z.string(),
    ownerId: z.string(),
    platform: z.string(),
    template: z.string(),
    tier: z.string(),
    features: z.array(z.string()),
    authPattern: z.string().nullable(),
    auth: JsonObject,
    scopes: z.array(z.string()),
    config: JsonObject,
    status: z.enum(['active', 'inactive']),
    source: z.enum(['registry', 'marketplace']),
    health: z.enum(['healthy', 'degraded', 'unhealthy', 'unknown']),
    credentials: z.object({ version: z.number(), setAt: z.string(), certificateExpiresAt: z.string().nullable(), revokedAt: z.string().nullable() }).nullable(),
    version: z.number(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('EcosystemIntegration');
const IntegrationWithFindings = Integration.extend({ compliance: z.array(Finding) }).openapi('EcosystemIntegrationChecked');

const Availability = z.object({ percent: z.number().nullable(), checks: z.number(), ok: z.number() });
const Health = z
  .object({
    id: z.string(),
    name: z.string(),
    ownerId: z.string(),
    tier: z.string(),
    source: z.string(),
    status: z.enum(['healthy', 'degraded', 'unhealthy', 'unknown']),
    latencyMs: z.number().nullable(),
    lastCheckAt: z.string().nullable(),
    lastOkAt: z.string().nullable(),
    consecutiveFailures: z.number(),
    since: z.string().nullable(),
    lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
    checkIntervalMs: z.number().nullable(),
    availability: z.object({ last24h: Availability, last30d: Availability }),
    sla: z.object({ target: z.number().nullable(), met24h: z.boolean().nullable(), met30d: z.boolean().nullable() }),
  })
  .openapi('EcosystemHealth');

const Bucket = z.object({ start: z.string(), calls: z.number(), errors: z.number(), errorRate: z.number(), averageLatencyMs: z.number().nullable(), maxLatencyMs: z.number().nullable(), budgetUnits: z.number(), webhooks: z.number() });
const Totals = Bucket.omit({ start: true });
const Series = z.object({ key: z.string(), totals: Totals, buckets: z.array(Bucket) });

const Owner = z.object({ ownerId: Filter.max(200).optional().openapi({ description: 'Operators: the owner, when two owners registered the same name' }) });
const NameParam = z.object({ name: Name });
const Range = z.object({
  from: Timestamp.optional().openapi({ description: 'Default: 24 hours before `to`' }),
  to: Timestamp.optional().openapi({ description: 'Default: now' }),
  granularity: z.enum(['hour', 'day']).default('hour'),
});

const route = routes('Ecosystem');

const range = (q: { from?: string; to?: string }, now: number) => {
  const to = q.to ? Date.parse(q.to) : now;
  const from = q.from ? Date.parse(q.from) : to - 86_400_000;
  if (!(to > from)) throw new DomainError(DomainCode.ValidationFailed, 'to must be after from', { field: 'to' });
  return { from, to };
};

/**
 * `/api/v1/ecosystem`: the partner registry. Integrations by name (credentials write-only),
 * templates and tiers, health, usage, audit and compliance. A vendor or partner sees and manages
 * only its own integrations (another's answer 404); operators everything.
 */
export function ecosystemRoutes() {
  const app = router();

  app.openapi(route({ method: 'get', path: '/templates', summary: 'The integration templates (data files): required config, auth patterns allowed, health check, default features', responses: { 200: json(z.object({ data: z.array(JsonObject) }), 'The templates'), ...errors } }), (c) =>
    c.json({ data: c.get('services').ecosystem.catalog.templates() }, 200),
  );

  app.openapi(route({ method: 'get', path: '/tiers', summary: 'The tier table (configuration): SLA target, rate-budget share, health-check interval', responses: { 200: json(JsonObject, 'The tier table'), ...errors } }), (c) =>
    c.json(c.get('services').ecosystem.catalog.tiers, 200),
  );

  app.openapi(
    route({
      method: 'post',
      path: '/integrations',
      summary: 'Register an integration: validated against its template, its credentials checked once against the service and stored in the vault (never answered); the answer carries its compliance findings',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(RegisterBody) },
      responses: { 201: json(IntegrationWithFindings, 'Registered'), ...errors, 409: json(z.unknown(), 'The name is taken') },
    }),
    async (c) => {
      const s = c.get('services');
      const body = c.req.valid('json');
      // a retry with the same Idempotency-Key answers the first registration (the stored answer holds no secret)
      const out = await s.idempotency.call(idempotencyOf(c, body), async () => {
        const v = await s.ecosystem.registry.register(c.get('principal'), body, c.get('requestId'));
        return { status: 201, body: { ...v, compliance: await s.ecosystem.findingsOf(v.id) } };
      });
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/integrations',
      summary: 'Registered integrations and marketplace connections the caller may see, by name',
      request: {
        query: z.object({
          tier: TIER.optional(),
          platform: Filter.max(100).optional(),
          status: z.enum(['active', 'inactive']).optional(),
          feature: Filter.max(100).optional(),
          source: z.enum(['registry', 'marketplace']).optional(),
          ownerId: Filter.max(200).optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(z.object({ data: z.array(Integration), pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }) }), 'A page'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').ecosystem.registry.list(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } }, 200);
    },
  );

  app.openapi(
    route({ method: 'get', path: '/integrations/{name}', summary: 'One integration (never its credentials)', request: { params: NameParam, query: Owner }, responses: { 200: json(Integration, 'The integration'), ...errors } }),
    async (c) => c.json(await c.get('services').ecosystem.registry.require(c.get('principal'), c.req.valid('param').name, c.req.valid('query').ownerId), 200),
  );

  for (const method of ['patch', 'put'] as const) {
    app.openapi(
      route({
        method,
        path: '/integrations/{name}',
        summary: 'Update tier, platform, features, config; credentials given are checked and replace the stored ones (rotation). Audited with before and after',
        request: { params: NameParam, query: Owner, body: jsonBody(UpdateBody) },
        responses: { 200: json(IntegrationWithFindings, 'Updated'), ...errors, 409: json(z.unknown(), 'Changed meanwhile') },
      }),
      async (c) => {
        const eco = c.get('services').ecosystem;
        const v = await eco.registry.update(c.get('principal'), c.req.valid('param').name, c.req.valid('json'), c.req.valid('query').ownerId, c.get('requestId'));
        return c.json({ ...v, compliance: await eco.findingsOf(v.id) }, 200);
      },
    );
  }

  for (const action of ['deactivate', 'activate'] as const) {
    app.openapi(
      route({
        method: 'post',
        path: `/integrations/{name}/${action}`,
        summary: action === 'deactivate' ? 'Deactivate: its health checks stop' : 'Activate: checked at once, then on its schedule',
        request: { params: NameParam, query: Owner },
        responses: { 200: json(Integration, 'The integration'), ...errors },
      }),
      async (c) => c.json(await c.get('services').ecosystem.registry.setActive(c.get('principal'), c.req.valid('param').name, action === 'activate', c.req.valid('query').ownerId, c.get('requestId')), 200),
    );
  }

  app.openapi(
    route({
      method: 'post',
      path: '/integrations/{name}/credentials/revoke',
      summary: 'Revoke the credentials: forgotten from the vault, the integration inactive until new credentials are PATCHed and it is activated',
      request: { params: NameParam, query: Owner },
      responses: { 200: json(Integration, 'The integration'), ...errors },
    }),
    async (c) => c.json(await c.get('services').ecosystem.registry.revokeCredentials(c.get('principal'), c.req.valid('param').name, c.req.valid('query').ownerId, c.get('requestId')), 200),
  );

  app.openapi(
    route({ method: 'delete', path: '/integrations/{name}', summary: 'Delete the registration and revoke (forget) its credentials; usage and audit history stay', request: { params: NameParam, query: Owner }, responses: { 200: json(Integration, 'The deleted integration'), ...errors } }),
    async (c) => c.json(await c.get('services').ecosystem.registry.delete(c.get('principal'), c.req.valid('param').name, c.req.valid('query').ownerId, c.get('requestId')), 200),
  );

  app.openapi(
    route({
      method: 'get',
      path: '/integrations/{name}/health',
      summary: 'Health: status, latency, last check, consecutive failures, availability over 24 h and 30 d against its SLA',
      request: { params: NameParam, query: Owner },
      responses: { 200: json(Health, 'Its health'), ...errors },
    }),
    async (c) => c.json(await c.get('services').ecosystem.healthOf(c.get('principal'), c.req.valid('param').name, c.req.valid('query').ownerId), 200),
  );

  app.openapi(
    route({ method: 'post', path: '/integrations/{name}/health/check', summary: 'Check now instead of at the next scheduled check (the result arrives in the health answer)', request: { params: NameParam, query: Owner }, responses: { 202: json(z.object({ accepted: z.boolean() }), 'Asked'), ...errors } }),
    async (c) => {
      await c.get('services').ecosystem.registry.checkNow(c.get('principal'), c.req.valid('param').name, c.req.valid('query').ownerId);
      return c.json({ accepted: true }, 202);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/integrations/{name}/usage',
      summary: 'Usage of one integration by hour or day: calls, errors, latency, budget units, webhooks',
      request: { params: NameParam, query: Range.extend(Owner.shape) },
      responses: { 200: json(z.object({ integrationId: z.string(), granularity: z.string(), from: z.string(), to: z.string(), totals: Totals, buckets: z.array(Bucket) }), 'Its usage'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const s = c.get('services');
      return c.json(await s.ecosystem.usageOf(c.get('principal'), c.req.valid('param').name, { ...range(q, s.clock.now()), granularity: q.granularity, ...(q.ownerId ? { ownerId: q.ownerId } : {}) }), 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/usage',
      summary: 'Usage across the integrations the caller may see, per integration, tenant or provider, by hour or day',
      request: { query: Range.extend({ groupBy: z.enum(['integration', 'tenant', 'provider']).default('integration'), ownerId: Filter.max(200).optional() }) },
      responses: { 200: json(z.object({ groupBy: z.string(), granularity: z.string(), from: z.string(), to: z.string(), data: z.array(Series) }), 'The roll-up'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const s = c.get('services');
      return c.json(await s.ecosystem.usage(c.get('principal'), { ...range(q, s.clock.now()), granularity: q.granularity, groupBy: q.groupBy, ...(q.ownerId ? { ownerId: q.ownerId } : {}) }), 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/audit',
      summary: 'The audit trail of registry changes (who, when, what, before and after; never a secret), newest first',
      request: {
        query: z.object({
          name: Filter.max(100).optional(),
          ownerId: Filter.max(200).optional(),
          action: Filter.max(100).optional(),
          actor: Filter.max(200).optional().openapi({ description: "Who: the token's subject" }),
          from: Timestamp.optional(),
          to: Timestamp.optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(z.object({ data: z.array(JsonObject), pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }) }), 'A page'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').ecosystem.audit(c.get('principal'), {
        ...(q.name ? { name: q.name } : {}),
        ...(q.ownerId ? { ownerId: q.ownerId } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.from ? { from: Date.parse(q.from) } : {}),
        ...(q.to ? { to: Date.parse(q.to) } : {}),
        limit: q.limit,
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
      return c.json({ data: r.data as unknown as Record<string, unknown>[], pagination: { limit: q.limit, nextCursor: r.nextCursor } }, 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/compliance',
      summary: 'Policy findings: credentials past the rotation period, community tier with production scopes, availability below the SLA, certificates expiring within 30 days; each names the integration and the fix',
      request: { query: z.object({ name: Filter.max(100).optional(), ownerId: Filter.max(200).optional(), policy: z.enum(['credentials_rotation', 'community_production_scopes', 'sla_breach', 'certificate_expiry']).optional() }) },
      responses: { 200: json(z.object({ checkedAt: z.string(), findings: z.array(Finding) }), 'The findings'), ...errors },
    }),
    async (c) => c.json(await c.get('services').ecosystem.complianceReport(c.get('principal'), c.req.valid('query')), 200),
  );

  return app;
}
