import { z } from '@hono/zod-openapi';
import { DEPENDENCY_TYPES, INTEGRATION_STATUSES } from '../../services/coordination/dependencies.js';
import { router, routes } from '../env.js';
import { requireRole } from '../middleware/auth.js';
import { commandOf } from '../command.js';
import { reply } from '../idempotency.js';
import { conflict, errors, IdempotencyKeyHeader, json, jsonBody } from '../schemas.js';

const IntegrationId = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ -');

export const Dependency = z
  .object({
    id: z.string(),
    integrationId: z.string(),
    dependsOnIntegrationId: z.string(),
    dependencyType: z.enum(DEPENDENCY_TYPES),
    condition: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('IntegrationDependency');

const CreateDependency = z
  .strictObject({
    integrationId: IntegrationId,
    dependsOnIntegrationId: IntegrationId,
    dependencyType: z.enum(DEPENDENCY_TYPES),
    condition: z.string().max(2000).nullable().optional(),
  })
  .openapi('CreateDependency', {
    example: { integrationId: 'integration-a', dependsOnIntegrationId: 'integration-b', dependencyType: 'REQUIRES', condition: 'when integration-b is active' },
  });

const Risk = z.enum(['low', 'medium', 'high', 'critical']);
const IntStatus = z.enum([...INTEGRATION_STATUSES, 'unknown']);
const Analysis = z
  .object({
    integrationId: z.string(),
    status: IntStatus,
    riskLevel: Risk,
    issues: z.array(z.object({ severity: Risk, kind: z.string(), message: z.string(), integrationIds: z.array(z.string()) })),
    recommendations: z.array(z.string()),
    requirements: z.array(
      z.object({ integrationId: z.string(), dependencyType: z.enum(DEPENDENCY_TYPES), depth: z.number().int(), path: z.array(z.string()), status: IntStatus }),
    ),
    cycles: z.array(z.array(z.string())),
    conflicts: z.array(z.object({ integrationId: z.string(), status: IntStatus, dependencyId: z.string() })),
    missingRequirements: z.array(z.string()),
    inactiveRequirements: z.array(z.string()),
    impact: z.array(z.object({ integrationId: z.string(), dependencyType: z.enum(DEPENDENCY_TYPES), depth: z.number().int(), effect: z.enum(['breaks', 'degrades']) })),
    analyzedAt: z.string(),
  })
  .openapi('DependencyAnalysis');

const IntegrationParam = z.object({ integrationId: z.string().openapi({ param: { name: 'integrationId', in: 'path' }, example: 'integration-a' }) });
const route = routes('Integration dependencies');

/** The dependency graph: readable by every role; writes are platform functions (operator, service). */
export function dependencyRoutes() {
  const app = router();
  const list = (which: 'dependencies' | 'dependents', summary: string) =>
    app.openapi(
      route({
        method: 'get',
        path: `/integrations/{integrationId}/${which}`,
        summary,
        request: { params: IntegrationParam },
        responses: { 200: json(z.object({ integrationId: z.string(), data: z.array(Dependency) }), summary), ...errors },
      }),
      async (c) => {
        const { integrationId } = c.req.valid('param');
        const data = await c.get('services').dependencies[which](integrationId);
        return c.json({ integrationId, data } as never, 200);
      },
    );
  list('dependencies', 'What this integration depends on (direct edges)');
  list('dependents', 'What depends on this integration (direct edges)');

  app.openapi(
    route({
      method: 'get',
      path: '/integrations/{integrationId}/analyze',
      summary: 'Transitive requirements, cycles, conflicts, missing or inactive requirements, risk level, recommendations and impact set',
      request: { params: IntegrationParam },
      responses: { 200: json(Analysis, 'The analysis'), ...errors },
    }),
    async (c) => c.json((await c.get('services').dependencies.analyze(c.req.valid('param').integrationId)) as never, 200),
  );

  app.use('/integrations/:integrationId/status', requireRole('operator', 'service'));
  app.openapi(
    route({
      method: 'put',
      path: '/integrations/{integrationId}/status',
      summary: 'Report an integration\'s operational status (used by analyze when no integration actor exists)',
      request: { params: IntegrationParam, body: jsonBody(z.strictObject({ status: z.enum(INTEGRATION_STATUSES) }).openapi('IntegrationStatusReport')) },
      responses: { 200: json(z.object({ integrationId: z.string(), status: z.enum(INTEGRATION_STATUSES), updatedAt: z.string(), updatedBy: z.string() }), 'Recorded'), ...errors },
    }),
    async (c) => {
      const out = await c.get('services').dependencies.setStatus(commandOf(c), c.req.valid('param').integrationId, c.req.valid('json').status);
      return c.json(out, 200);
    },
  );

  app.use('/dependencies', requireRole('operator', 'service'));
  app.use('/dependencies/*', requireRole('operator', 'service'));
  app.openapi(
    route({
      method: 'post',
      path: '/dependencies',
      summary: 'Create a dependency (operator, service); an edge that closes a REQUIRES/DEPENDS_ON_DATA cycle is 409 with the cycle',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(CreateDependency) },
      responses: { 201: json(Dependency, 'Created'), ...errors, ...conflict },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const out = await c.get('services').dependencies.create(commandOf(c, body), body);
      c.header('location', `${c.req.path}/${out.body.id}`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'delete',
      path: '/dependencies/{id}',
      summary: 'Delete a dependency (operator, service)',
      request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) }) },
      responses: { 200: json(Dependency, 'The deleted dependency'), ...errors },
    }),
    async (c) => {
      const out = await c.get('services').dependencies.delete(commandOf(c), c.req.valid('param').id);
      return c.json(out, 200);
    },
  );
  return app;
}
