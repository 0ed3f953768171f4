import { z } from '@hono/zod-openapi';
import { router, routes } from '../env.js';
import { requireRole } from '../middleware/auth.js';
import { Cursor, errors, Filter, json, Limit } from '../schemas.js';

const Component = z.object({ status: z.enum(['up', 'degraded', 'down']), details: z.record(z.string(), z.unknown()) });
const Health = z
  .object({
    status: z.enum(['up', 'degraded', 'down']),
    timestamp: z.string(),
    components: z.object({
      workflowEngine: Component,
      dependencyResolution: Component,
      resourceSharing: Component,
      eventCoordination: Component,
      database: Component,
      messaging: Component,
    }),
  })
  .openapi('CoordinationHealth');

const Metrics = z
  .object({
    timestamp: z.string(),
    relationships: z.object({ total: z.number(), active: z.number(), pending: z.number(), suspended: z.number(), terminated: z.number(), new: z.number(), newWindowDays: z.number() }),
    workflows: z.object({ total: z.number(), completed: z.number(), failed: z.number(), inProgress: z.number(), averageCompletionTime: z.number().nullable() }),
    resources: z.object({ total: z.number(), active: z.number(), shared: z.number(), averageUtilization: z.number() }),
    events: z.object({ total: z.number(), processed: z.number(), failed: z.number(), averageProcessingTime: z.number().nullable(), available: z.boolean() }).passthrough(),
    dependencies: z.object({ total: z.number(), critical: z.number(), resolved: z.number(), blocked: z.number() }),
  })
  .openapi('CoordinationMetrics');

const AuditEntry = z
  .object({
    id: z.number().int(),
    at: z.string(),
    who: z.object({ sub: z.string(), role: z.string(), tenantId: z.string().nullable() }),
    action: z.string(),
    objectType: z.string(),
    objectId: z.string(),
    before: z.unknown(),
    after: z.unknown(),
    requestId: z.string().nullable(),
    reason: z.string().nullable().openapi({ description: 'Why: the reason an operator gave (operator actions)' }),
  })
  .openapi('AuditEntry');

const publicHealth = routes('Health & metrics', { public: true });
const health = routes('Health & metrics');
const audit = routes('Audit');

/** Health, metrics and the audit trail of the coordination layer. */
export function coordinationRoutes() {
  const app = router();
  app.openapi(
    publicHealth({
      method: 'get',
      path: '/health',
      summary: 'Public. Workflow engine, dependency resolution, resource sharing, event coordination, database, messaging (503 when down)',
      responses: { 200: json(Health, 'Up or degraded'), 503: json(Health, 'Down') },
    }),
    async (c) => {
      const h = await c.get('services').monitor.health();
      return c.json(h as never, h.status === 'down' ? 503 : 200);
    },
  );
  app.openapi(
    health({
      method: 'get',
      path: '/metrics',
      summary: 'Counts of relationships, workflows, resources, events and dependencies',
      responses: { 200: json(Metrics, 'The metrics'), ...errors },
    }),
    async (c) => c.json((await c.get('services').monitor.metrics()) as never, 200),
  );

  app.use('/audit', requireRole('operator'));
  app.openapi(
    audit({
      method: 'get',
      path: '/audit',
      summary: 'The audit log, newest first (operators)',
      request: {
        query: z.object({ objectType: Filter.optional(), objectId: Filter.optional(), action: Filter.optional(), limit: Limit, cursor: Cursor }),
      },
      responses: {
        200: json(z.object({ data: z.array(AuditEntry), pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }) }), 'A page of audit entries'),
        ...errors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').audit.list(q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );
  return app;
}
