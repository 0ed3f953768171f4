import { z } from '@hono/zod-openapi';
import { commandOf } from '../command.js';
import { router, routes } from '../env.js';
import { operatorsOnly } from '../middleware/auth.js';
import { conflict, Cursor, errors, Filter, json, jsonBody, JsonObject, Limit, Timestamp } from '../schemas.js';

const ActorParams = z.object({
  type: z.string().openapi({ param: { name: 'type', in: 'path' }, example: 'relationship' }),
  id: z.string().openapi({ param: { name: 'id', in: 'path' } }),
});

const PauseMark = z
  .object({ at: z.string(), by: z.string(), reason: z.string().nullable() })
  .nullable()
  .openapi('PauseMark', { description: 'Who paused the actor, when and why; null while it runs. A paused actor applies nothing: HTTP commands answer 409 ACTOR_PAUSED, NATS messages and due timers wait and are applied on resume.' });

const ForkMark = z
  .object({ type: z.string(), id: z.string(), version: z.number().int() })
  .nullable()
  .openapi('ForkMark', { description: 'The journal entry this actor was forked from, if it was made by a fork' });

/** Every operator action says why: recorded in the audit log. */
const Reason = z.string().trim().min(1, 'required: why you act').max(1000);

const Event = JsonObject.and(z.object({ type: z.string().min(1).max(200).regex(/^(?!xstate\.)/, 'must not start with "xstate."') })).openapi('ActorEvent', {
  description: 'An event of the actor\'s machine: a `type` and its fields',
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
    paused: PauseMark,
    forkedFrom: ForkMark,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('ActorSnapshot');

const PauseResult = z
  .object({
    type: z.string(),
    id: z.string(),
    version: z.number().int(),
    status: z.string(),
    paused: PauseMark,
    changed: z.boolean().openapi({ description: 'False when it already was in that state: nothing changed, nothing audited' }),
  })
  .openapi('PauseResult');

const BulkFilter = z
  .object({
    type: Filter.max(63).optional(),
    status: Filter.max(100).optional(),
    state: Filter.max(500).optional().openapi({ description: 'A state path, e.g. `active.open`: that state and any state inside it' }),
    tenant: Filter.max(200).optional(),
    updatedBefore: Timestamp.optional(),
  })
  .strict()
  .openapi('BulkFilter');

const JournalEntry = z
  .object({
    version: z.number().int(),
    messageId: z.string().nullable(),
    kind: z.enum(['event', 'timer']),
    targetPath: z.string(),
    event: z.record(z.string(), z.unknown()),
    input: z.unknown(),
    value: z.unknown(),
    at: z.string(),
    traceId: z.string().nullable().openapi({ description: 'The OpenTelemetry trace id of the transition (null when tracing was off)' }),
  })
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
  app.use('*', operatorsOnly());

  app.openapi(
    route({
      method: 'get',
      path: '/',
      summary: 'Search actors by type, status and tenant',
      request: {
        query: z.object({
          type: Filter.optional(),
          status: Filter.optional(),
          tenant: Filter.optional(),
          paused: z.enum(['true', 'false']).optional().openapi({ description: 'Only paused (true) or running (false) actors' }),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: {
        200: json(
          z.object({
            data: z.array(
              z.object({
                type: z.string(),
                id: z.string(),
                tenant: z.string().nullable(),
                version: z.number(),
                machineVersion: z.number(),
                value: z.unknown(),
                status: z.string(),
                attrs: z.record(z.string(), z.unknown()),
                paused: PauseMark,
                forkedFrom: ForkMark,
                createdAt: z.string(),
                updatedAt: z.string(),
              }),
            ),
            pagination: z.object({ limit: z.number(), nextCursor: z.string().nullable() }),
          }),
          'Matching actors, most recently changed first',
        ),
        ...errors,
      },
    }),
    async (c) => {
      const { paused, ...q } = c.req.valid('query');
      const r = await c.get('services').actors.search({ ...q, paused: paused === undefined ? undefined : paused === 'true' });
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

  app.openapi(
    route({
      method: 'post',
      path: '/bulk',
      summary: 'One action over every actor a filter matches: a dry run answers the count and a sample; a real run works through them at a rate limit, one audit record per actor',
      request: {
        body: jsonBody(
          z.discriminatedUnion('action', [
            z.object({ action: z.enum(['pause', 'resume']) }),
            z.object({ action: z.literal('send'), event: Event }),
          ]).and(
            z.object({
              filter: BulkFilter,
              dryRun: z.boolean(),
              reason: Reason,
              limit: z.number().int().min(1).max(1000).default(100).openapi({ description: 'At most this many actors in this run (the rest: `remaining`)' }),
              ratePerSecond: z.number().min(0.1).max(1000).default(20).openapi({ description: 'Actors per second in a real run' }),
            }),
          ),
        ),
      },
      responses: {
        200: json(
          z.object({
            action: z.string(),
            dryRun: z.boolean(),
            matched: z.number().int(),
            sample: z.array(z.object({ type: z.string(), id: z.string() })).optional(),
            processed: z.number().int().optional(),
            done: z.number().int().optional(),
            unchanged: z.number().int().optional(),
            failed: z.array(z.object({ type: z.string(), id: z.string(), code: z.string(), reason: z.string() })).optional(),
            remaining: z.number().int().optional(),
          }),
          'The count and a sample (dry run), or the summary of the run',
        ),
        ...errors,
      },
    }),
    async (c) => {
      const { reason, ...req } = c.req.valid('json');
      return c.json((await c.get('services').bulk.run({ ...commandOf(c), reason }, req as never)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{type}/{id}/pause',
      summary: 'Pause the actor: it applies nothing until resumed (HTTP commands answer 409 ACTOR_PAUSED; NATS messages and due timers wait, in order)',
      request: { params: ActorParams, body: jsonBody(z.object({ reason: Reason })) },
      responses: { 200: json(PauseResult, 'Paused'), ...errors },
    }),
    async (c) => {
      const ref = c.req.valid('param');
      return c.json((await c.get('services').operators.pause({ ...commandOf(c), reason: c.req.valid('json').reason }, ref)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{type}/{id}/resume',
      summary: 'Resume a paused actor: the messages and due timers that waited are applied, in order',
      request: { params: ActorParams, body: jsonBody(z.object({ reason: Reason })) },
      responses: { 200: json(PauseResult, 'Running'), ...errors },
    }),
    async (c) => {
      const ref = c.req.valid('param');
      return c.json((await c.get('services').operators.resume({ ...commandOf(c), reason: c.req.valid('json').reason }, ref)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{type}/{id}/send',
      summary: 'Send an event the current state accepts (409 EVENT_REJECTED with the accepted events otherwise)',
      request: { params: ActorParams, body: jsonBody(z.object({ event: Event, reason: Reason })) },
      responses: {
        200: json(z.object({ type: z.string(), id: z.string(), version: z.number().int(), value: z.unknown(), status: z.string() }), 'Applied'),
        ...errors,
        ...conflict,
      },
    }),
    async (c) => {
      const ref = c.req.valid('param');
      const { event, reason } = c.req.valid('json');
      return c.json((await c.get('services').operators.send({ ...commandOf(c), reason }, ref, event as { type: string })) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{type}/{id}/fork',
      summary: 'Fork: a new actor (new id, same type) whose snapshot is the replay of the journal up to `version`; the original is untouched, and the timers and effects of the replay are not carried out',
      request: {
        params: ActorParams,
        body: jsonBody(
          z.object({
            version: z.number().int().min(1),
            reason: Reason,
            newId: z.string().regex(/^[A-Za-z0-9_.:@-]{1,200}$/, '1-200 of [A-Za-z0-9_.:@-]').optional().openapi({ description: 'The new actor\'s id (generated when absent)' }),
          }),
        ),
      },
      responses: {
        201: json(z.object({ type: z.string(), id: z.string(), version: z.number().int(), value: z.unknown(), status: z.string(), forkedFrom: ForkMark }), 'The fork'),
        ...errors,
      },
    }),
    async (c) => {
      const ref = c.req.valid('param');
      const { version, reason, newId } = c.req.valid('json');
      return c.json((await c.get('services').operators.fork({ ...commandOf(c), reason }, ref, version, newId)) as never, 201);
    },
  );
  app.openapi(
    route({
      method: 'post',
      path: '/{type}/{id}/retry',
      summary: "Retry a failed step where the actor's machine allows it by hand: a workflow's FAILED step (`step`: its id or number), a saga's failed compensation (COMPENSATION_FAILED; `step` optional)",
      request: {
        params: ActorParams,
        body: jsonBody(
          z.object({
            step: z.union([z.string().min(1).max(200), z.number().int().min(1)]).optional().openapi({ description: 'The step: a workflow step id or number, a saga step name' }),
            reason: Reason,
          }),
        ),
      },
      responses: {
        200: json(
          z.object({
            type: z.string(),
            id: z.string(),
            version: z.number().int(),
            value: z.unknown(),
            status: z.string(),
            step: z.object({ id: z.string(), name: z.string().nullable() }),
            event: z.string(),
          }),
          'Retried: the step runs again',
        ),
        ...errors,
        ...conflict,
      },
    }),
    async (c) => {
      const ref = c.req.valid('param');
      const { step, reason } = c.req.valid('json');
      return c.json((await c.get('services').operators.retry({ ...commandOf(c), reason }, ref, step === undefined ? undefined : String(step))) as never, 200);
    },
  );
  return app;
}
