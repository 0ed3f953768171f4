import { z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { DELIVERY_STATUSES, EVENT_PRIORITIES, EVENT_STATUSES } from '../../services/events/model.js';
import { router, routes, type Env } from '../env.js';
import { requireRole } from '../middleware/auth.js';
import { commandOf } from '../command.js';
import { reply } from '../idempotency.js';
import { Cursor, errors, Filter, IdempotencyKeyHeader, JsonObject, json, jsonBody, Limit, page, Timestamp } from '../schemas.js';

const IntegrationId = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ -');
const Name = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@/-]*$/, 'letters, digits and _ . : @ / -');

const Delivery = z
  .object({
    targetIntegrationId: z.string(),
    status: z.enum(DELIVERY_STATUSES).openapi({ description: 'failed: retrying after a failed attempt; dead: attempts exhausted or not retryable (republish to retry)' }),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    lastStatusCode: z.number().int().nullable(),
    channels: z.array(z.string()).openapi({ description: 'Where it was delivered: messaging (NATS concord.deliver.<target>), webhook' }),
    webhookId: z.string().openapi({ description: 'The webhook-id header receivers dedupe on' }),
    nextAttemptAt: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    deliveredAt: z.string().nullable(),
    deadAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('EventDelivery');

export const CrossIntegrationEvent = z
  .object({
    id: z.string(),
    eventName: z.string(),
    sourceIntegrationId: z.string(),
    targetIntegrationIds: z.array(z.string()),
    payload: z.unknown(),
    eventCategory: z.string(),
    priority: z.enum(EVENT_PRIORITIES),
    status: z.enum(EVENT_STATUSES),
    processedAt: z.string().nullable(),
    errorMessage: z.string().nullable(),
    metadata: JsonObject.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deliveries: z.array(Delivery).optional(),
    filteredTargetIds: z.array(z.string()).optional().openapi({ description: "Targets whose endpoint filters exclude this event's name or category" }),
  })
  .openapi('CrossIntegrationEvent');

const PublishEvent = z
  .strictObject({
    eventName: Name,
    sourceIntegrationId: IntegrationId,
    targetIntegrationIds: z.array(IntegrationId).min(1).max(100),
    payload: z.unknown().refine((v) => v !== undefined, 'payload is required'),
    eventCategory: Name,
    priority: z.enum(EVENT_PRIORITIES).optional().openapi({ description: 'medium by default' }),
    metadata: JsonObject.nullable().optional(),
    status: z.literal('pending').optional().openapi({ description: 'Only the initial status may be given' }),
  })
  .openapi('PublishCrossIntegrationEvent', {
    example: {
      eventName: 'customer.updated',
      sourceIntegrationId: 'integration-a',
      targetIntegrationIds: ['integration-b', 'integration-c'],
      payload: { customerId: 'cust-123', changes: { email: 'new@example.com' } },
      eventCategory: 'data_sync',
      priority: 'high',
    },
  });

const Republish = z.strictObject({ onlyFailed: z.boolean().optional().openapi({ description: 'Only the failed and dead deliveries' }) }).openapi('RepublishEvent');

const Endpoint = z
  .object({
    integrationId: z.string(),
    url: z.string(),
    eventNames: z.array(z.string()).nullable(),
    eventCategories: z.array(z.string()).nullable(),
    secret: z.string().openapi({ description: 'Standard Webhooks signing secret (whsec_…)' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('IntegrationEndpoint');

const PutEndpoint = z
  .strictObject({
    url: z.string().min(1).max(2000),
    eventNames: z.array(Name).max(100).nullable().optional().openapi({ description: 'Only these event names (all when absent)' }),
    eventCategories: z.array(Name).max(100).nullable().optional().openapi({ description: 'Only these categories (all when absent)' }),
    rotateSecret: z.boolean().optional(),
  })
  .openapi('PutIntegrationEndpoint', { example: { url: 'https://hooks.example.com/concord', eventCategories: ['data_sync'] } });

const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
const IntegrationParam = z.object({ integrationId: IntegrationId.openapi({ param: { name: 'integrationId', in: 'path' }, example: 'integration-b' }) });
const route = routes('Cross-integration events');


/**
 * `/events` and `/integrations/:integrationId/endpoint`: platform functions (operator and
 * service tokens). Vendors and partners get 403: integrations have no owner recorded yet, so
 * there is no way to show a party only the events it is party to, and payloads carry customer data.
 */
export function eventRoutes() {
  const app = router();
  const platform: MiddlewareHandler<Env> = requireRole('operator', 'service');
  app.use('/events', platform);
  app.use('/events/*', platform);
  app.use('/integrations/:integrationId/endpoint', platform);

  app.openapi(
    route({
      method: 'post',
      path: '/events',
      summary: 'Publish a cross-integration event (202: accepted with its deliveries; delivered asynchronously, in order per source and target)',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(PublishEvent) },
      responses: { 202: json(CrossIntegrationEvent, 'Accepted'), ...errors },
    }),
    async (c) => {
      const { status: _initial, ...body } = c.req.valid('json');
      const out = await c.get('services').events.accept(commandOf(c, body), body);
      c.header('location', `${c.req.path}/${out.body.id}`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/events',
      summary: 'List events, newest first (operator, service)',
      request: {
        query: z.object({
          sourceIntegrationId: Filter.optional(),
          targetIntegrationId: Filter.optional(),
          status: z.enum(EVENT_STATUSES).optional(),
          eventCategory: Filter.optional(),
          priority: z.enum(EVENT_PRIORITIES).optional(),
          eventName: Filter.optional(),
          from: Timestamp.optional().openapi({ description: 'created at or after' }),
          to: Timestamp.optional().openapi({ description: 'created before' }),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(page(CrossIntegrationEvent, 'CrossIntegrationEventPage'), 'A page of events'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      const q = c.req.valid('query');
      const r = await s.events.list(q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  // registered before /events/{id} so the static segment wins
  app.openapi(
    route({
      method: 'get',
      path: '/events/dead-letters',
      summary: 'Dead-lettered deliveries, oldest first (the dead-letter queue)',
      request: { query: z.object({ targetIntegrationId: Filter.optional(), sourceIntegrationId: Filter.optional(), limit: Limit, cursor: Cursor }) },
      responses: {
        200: json(page(Delivery.extend({ eventId: z.string(), eventName: z.string(), sourceIntegrationId: z.string() }).openapi('DeadLetteredDelivery'), 'DeadLetterPage'), 'A page of dead deliveries'),
        ...errors,
      },
    }),
    async (c) => {
      const s = c.get('services');
      const q = c.req.valid('query');
      const r = await s.events.deadLetters(q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/events/dead-letters/republish',
      summary: "Requeue every dead delivery to a target (optionally from one source), in their original order",
      request: {
        headers: IdempotencyKeyHeader,
        body: jsonBody(z.strictObject({ targetIntegrationId: IntegrationId, sourceIntegrationId: IntegrationId.optional() }).openapi('RepublishDeadLetters')),
      },
      responses: { 202: json(z.object({ requeued: z.number().int() }), 'Requeued'), ...errors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      return reply(c, await c.get('services').events.republishDead(commandOf(c, body), body));
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/events/{id}',
      summary: 'An event with its per-target deliveries',
      request: { params: IdParam },
      responses: { 200: json(CrossIntegrationEvent, 'The event'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      return c.json((await s.events.get(c.req.valid('param').id)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/events/{id}/republish',
      summary: 'Deliver again: every target, or with onlyFailed the failed and dead ones',
      request: { params: IdParam, headers: IdempotencyKeyHeader, body: jsonBody(Republish, false) },
      responses: { 202: json(CrossIntegrationEvent, 'Requeued'), ...errors },
    }),
    async (c) => {
      const body = c.req.header('content-type') ? c.req.valid('json') : {};
      return reply(c, await c.get('services').events.republish(commandOf(c, body), c.req.valid('param').id, body.onlyFailed ?? false));
    },
  );

  app.openapi(
    route({
      method: 'put',
      path: '/integrations/{integrationId}/endpoint',
      summary: "Register the integration's webhook endpoint (answers with its signing secret)",
      request: { params: IntegrationParam, body: jsonBody(PutEndpoint) },
      responses: { 200: json(Endpoint, 'Updated'), 201: json(Endpoint, 'Registered'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      const r = await s.events.putEndpoint(c.get('principal'), c.req.valid('param').integrationId, c.req.valid('json'), c.get('requestId'));
      return c.json(r.endpoint as never, r.created ? 201 : 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/integrations/{integrationId}/endpoint',
      summary: "The integration's webhook endpoint and secret (operator, service)",
      request: { params: IntegrationParam },
      responses: { 200: json(Endpoint, 'The endpoint'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      return c.json((await s.events.getEndpoint(c.get('principal'), c.req.valid('param').integrationId)) as never, 200);
    },
  );



  return app;
}
