import { z } from '@hono/zod-openapi';
import { commandOf } from '../command.js';
import { router, routes } from '../env.js';
import { operatorsOnly } from '../middleware/auth.js';
import { conflict, Cursor, errors, Filter, json, jsonBody, Limit, Timestamp } from '../schemas.js';

const PendingTimer = z
  .object({
    id: z.number().int().openapi({ description: 'Stable while the timer is pending' }),
    actorType: z.string(),
    actorId: z.string(),
    key: z.string(),
    event: z.string().openapi({ description: 'The type of the event it delivers' }),
    targetPath: z.string(),
    dueAt: z.string(),
    claimedUntil: z.string().nullable().openapi({ description: 'Set while a poller is firing it' }),
    actorPaused: z.boolean().openapi({ description: 'Its actor is paused: it waits for the resume' }),
  })
  .openapi('PendingTimer');

const TimerId = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).openapi({ param: { name: 'id', in: 'path' } }) });
const Reason = z.object({ reason: z.string().trim().min(1, 'required: why you act').max(1000) });

const route = routes('Operators');

/** `/api/v1/timers`: pending durable timers across actors; fire one now, cancel one (operators only). */
export function timerRoutes() {
  const app = router();
  app.use('*', operatorsOnly());

  app.openapi(
    route({
      method: 'get',
      path: '/',
      summary: 'Pending timers across actors, soonest first',
      request: { query: z.object({ type: Filter.max(63).optional(), dueBefore: Timestamp.optional(), limit: Limit, cursor: Cursor }) },
      responses: {
        200: json(z.object({ data: z.array(PendingTimer), pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }) }), 'A page of pending timers'),
        ...errors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').timers.list(q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{id}/fire',
      summary: 'Fire a timer now: it becomes due now and fires through the normal path, exactly once (409 ACTOR_PAUSED while its actor is paused)',
      request: { params: TimerId, body: jsonBody(Reason) },
      responses: { 202: json(PendingTimer, 'Due now: a poller fires it'), ...errors, ...conflict },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json((await c.get('services').timers.fire({ ...commandOf(c), reason: c.req.valid('json').reason }, id)) as never, 202);
    },
  );

  app.openapi(
    route({
      method: 'delete',
      path: '/{id}',
      summary: 'Cancel a pending timer: it never fires',
      request: { params: TimerId, body: jsonBody(Reason) },
      responses: { 200: json(PendingTimer, 'The cancelled timer'), ...errors },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json((await c.get('services').timers.cancel({ ...commandOf(c), reason: c.req.valid('json').reason }, id)) as never, 200);
    },
  );
  return app;
}
