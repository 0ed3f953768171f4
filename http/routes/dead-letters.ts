import { z } from '@hono/zod-openapi';
import { commandOf } from '../command.js';
import { router, routes } from '../env.js';
import { operatorsOnly } from '../middleware/auth.js';
import { conflict, errors, Filter, json, jsonBody, JsonObject, Limit } from '../schemas.js';

const DeadLetter = z
  .object({
    id: z.number().int(),
    origin: z.string().openapi({ description: '`outbox` (relay) or `nats` (consumer)' }),
    reason: z.string().openapi({ description: '`rejected`, `unroutable`, `invalid` or `failed`' }),
    subject: z.string().nullable(),
    actorType: z.string().nullable(),
    actorId: z.string().nullable(),
    messageId: z.string().nullable(),
    payload: z.unknown(),
    headers: z.record(z.string(), z.string()),
    error: z.string().nullable(),
    attempts: z.number().int(),
    createdAt: z.string(),
    replayedAt: z.string().nullable(),
  })
  .openapi('DeadLetter');

const route = routes('Operators');

/** `/api/v1/dead-letters`: list what could not be applied or delivered, and replay it (operators only). */
export function deadLetterRoutes() {
  const app = router();
  app.use('*', operatorsOnly());

  app.openapi(
    route({
      method: 'get',
      path: '/',
      summary: 'Dead letters, oldest first (open ones unless includeReplayed=true)',
      request: {
        query: z.object({
          reason: Filter.max(50).optional(),
          actorType: Filter.max(63).optional(),
          actorId: Filter.max(200).optional().openapi({ description: 'Only with actorType' }),
          includeReplayed: z.enum(['true', 'false']).default('false'),
          afterId: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
          limit: Limit,
        })
          // an actor id is unique only within its type
          .refine((q) => q.actorId === undefined || q.actorType !== undefined, { path: ['actorType'], message: 'required with actorId' }),
      },
      responses: {
        200: json(z.object({ data: z.array(DeadLetter), pagination: z.object({ limit: z.number(), nextAfterId: z.number().nullable() }) }), 'A page of dead letters'),
        ...errors,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').deadLetters.list({ ...q, includeReplayed: q.includeReplayed === 'true' });
      return c.json({ data: r.data, pagination: { limit: q.limit, nextAfterId: r.nextAfterId } } as never, 200);
    },
  );

  const IdParam = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).openapi({ param: { name: 'id', in: 'path' } }) });

  app.openapi(
    route({
      method: 'get',
      path: '/{id}',
      summary: 'One dead letter, replayed or not',
      request: { params: IdParam },
      responses: { 200: json(DeadLetter, 'The dead letter'), ...errors },
    }),
    async (c) => {
      return c.json((await c.get('services').deadLetters.get(commandOf(c), c.req.valid('param').id)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{id}/replay',
      summary:
        'Replay a dead letter through the outbox (with its original message id, so nothing is applied twice), optionally with an edited payload; audited with the payloads before and after',
      request: {
        params: IdParam,
        body: jsonBody(
          z.object({
            payload: JsonObject.optional().openapi({ description: 'Send this instead of the stored payload (for an actor: an event, with its `type`); the dead letter keeps the original' }),
            reason: z.string().trim().min(1, 'required: why you act').max(1000),
          }),
        ),
      },
      responses: { 200: json(DeadLetter, 'The dead letter, marked replayed'), ...errors, ...conflict },
    }),
    async (c) => {
      const { payload, reason } = c.req.valid('json');
      return c.json((await c.get('services').deadLetters.replay({ ...commandOf(c), reason }, c.req.valid('param').id, payload)) as never, 200);
    },
  );
  return app;
}
