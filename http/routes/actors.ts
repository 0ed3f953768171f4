import { z } from '@hono/zod-openapi';
import { router, routes } from '../env.js';
import { requireRole } from '../middleware/auth.js';
import { Cursor, errors, Filter, json, Limit } from '../schemas.js';

const ActorParams = z.object({
  type: z.string().openapi({ param: { name: 'type', in: 'path' }, example: 'relationship' }),
  id: z.string().openapi({ param: { name: 'id', in: 'path' } }),
});

const ActorView = z
  .object({
    type: z.string(),
    id: z.string(),
    tenant: z.string().nullable(),
    version: z.number().int(),
    machineVersion: z.number().int(),
    value: z.unknown(),
    status: z.string(),
    context: z.record(z.string(), z.unknown()),
    attrs: z.record(z.string(), z.unknown()),
    timers: z.array(z.object({ key: z.string(), event: z.string(), dueAt: z.string(), targetPath: z.string() })),
    accepts: z.array(z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('ActorSnapshot');

const JournalEntry = z
  .object({ version: z.number().int(), messageId: z.string().nullable(), kind: z.enum(['event', 'timer']), targetPath: z.string(), event: z.record(z.string(), z.unknown()), input: z.unknown(), value: z.unknown(), at: z.string() })
  .openapi('JournalEntry');

// one level typed; nested states repeat the same shape (a recursive schema would not render)
const ChartNode = z
  .object({
    id: z.string(),
    key: z.string(),
    type: z.string(),
    initial: z.string().nullable(),
    current: z.boolean(),
    transitions: z.array(z.object({ event: z.string(), target: z.string(), guard: z.string().nullable(), actions: z.array(z.string()), reenter: z.boolean() })),
    states: z.array(z.record(z.string(), z.unknown())).openapi({ description: 'Child states, each a ChartNode' }),
  })
  .openapi('ChartNode');

const route = routes('Operators');

/** `/api/v1/actors`: inspect any actor (operators only). */
export function actorRoutes() {
  const app = router();
  app.use('*', requireRole('operator'));

  app.openapi(
    route({
      method: 'get',
      path: '/',
      summary: 'Search actors by type, status and tenant',
      request: { query: z.object({ type: Filter.optional(), status: Filter.optional(), tenant: Filter.optional(), limit: Limit, cursor: Cursor }) },
      responses: {
        200: json(
          z.object({
            data: z.array(
              z.object({ type: z.string(), id: z.string(), tenant: z.string().nullable(), version: z.number(), machineVersion: z.number(), value: z.unknown(), status: z.string(), attrs: z.record(z.string(), z.unknown()), createdAt: z.string(), updatedAt: z.string() }),
            ),
            pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }),
          }),
          'Matching actors, most recently changed first',
        ),
        ...errors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').actors.search(q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{type}/{id}',
      summary: 'Snapshot: state value, context, status, version, pending timers, accepted events',
      request: { params: ActorParams },
      responses: { 200: json(ActorView, 'The actor'), ...errors },
    }),
    async (c) => {
      const { type, id } = c.req.valid('param');
      const v = await c.get('services').actors.view(type, id);
      const { ref: _ref, ...rest } = v;
      return c.json(rest as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{type}/{id}/history',
      summary: 'The journal of applied events, oldest first',
      request: { params: ActorParams, query: z.object({ afterVersion: z.coerce.number().int().min(0).default(0), limit: Limit }) },
      responses: {
        200: json(z.object({ data: z.array(JournalEntry), pagination: z.object({ limit: z.number(), nextAfterVersion: z.number().nullable() }) }), 'A page of the journal'),
        ...errors,
      },
    }),
    async (c) => {
      const { type, id } = c.req.valid('param');
      const q = c.req.valid('query');
      const r = await c.get('services').actors.history(type, id, q.afterVersion, q.limit);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextAfterVersion: r.nextAfterVersion } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{type}/{id}/chart',
      summary: 'The statechart (states and transitions) with the current state marked',
      request: { params: ActorParams },
      responses: {
        200: json(z.object({ type: z.string(), id: z.string(), machineId: z.string(), machineVersion: z.number(), value: z.unknown(), status: z.string(), chart: ChartNode }), 'The chart'),
        ...errors,
      },
    }),
    async (c) => {
      const { type, id } = c.req.valid('param');
      return c.json((await c.get('services').actors.chart(type, id)) as never, 200);
    },
  );
  return app;
}
