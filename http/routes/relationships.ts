import { z } from '@hono/zod-openapi';
import type { HonoRequest } from 'hono';
import { RELATIONSHIP_STATUSES, RELATIONSHIP_TYPES } from '../../machines/relationship.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import { derivedId } from '../../services/common/idempotency.js';
import type { LifecycleAction } from '../../services/coordination/relationships.js';
import { router, routes } from '../env.js';
import { idempotencyOf, reply } from '../idempotency.js';
import { conflict, Cursor, errors, Filter, IdempotencyKeyHeader, JsonObject, json, jsonBody, Limit, page, Timestamp } from '../schemas.js';

const PartyId = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ -');

export const Relationship = z
  .object({
    id: z.string(),
    vendorId: z.string(),
    partnerId: z.string(),
    relationshipType: z.enum(RELATIONSHIP_TYPES),
    status: z.enum(RELATIONSHIP_STATUSES),
    startDate: z.string(),
    endDate: z.string().nullable(),
    agreementDetails: JsonObject.nullable(),
    configuration: JsonObject.nullable(),
    metadata: JsonObject.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    version: z.number().int().openapi({ description: 'Actor version: increases by one per change' }),
    allowedActions: z.array(z.string()).openapi({ example: ['update', 'activate', 'terminate'] }),
    activatedAt: z.string().nullable(),
    suspendedAt: z.string().nullable(),
    terminatedAt: z.string().nullable(),
    statusReason: z.string().nullable(),
  })
  .openapi('VendorPartnerRelationship');

const CreateRelationship = z
  .strictObject({
    vendorId: PartyId,
    partnerId: PartyId,
    relationshipType: z.enum(RELATIONSHIP_TYPES),
    status: z.literal('PENDING').optional().openapi({ description: 'Only the initial status may be given' }),
    startDate: Timestamp.optional(),
    endDate: Timestamp.nullable().optional().openapi({ description: 'When it passes, the relationship terminates by itself' }),
    agreementDetails: JsonObject.nullable().optional(),
    configuration: JsonObject.nullable().optional(),
    metadata: JsonObject.nullable().optional(),
  })
  .openapi('CreateRelationship', {
    example: {
      vendorId: 'vendor-123',
      partnerId: 'partner-456',
      relationshipType: 'INTEGRATION',
      agreementDetails: { commissionRate: 0.15, revenueSharePercentage: 15, slaRequirements: { uptime: 99.9, responseTime: 200 } },
    },
  });

const UpdateRelationship = z
  .strictObject({
    agreementDetails: JsonObject.nullable().optional(),
    configuration: JsonObject.nullable().optional(),
    metadata: JsonObject.nullable().optional(),
    endDate: Timestamp.nullable().optional(),
  })
  .refine((o) => Object.keys(o).length > 0, { message: 'give at least one of agreementDetails, configuration, metadata, endDate' })
  .openapi('UpdateRelationship');

const LifecycleBody = z.strictObject({ reason: z.string().max(1000).optional() }).openapi('LifecycleRequest');
const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: '6f1d2c3e-8a4b-4c5d-9e6f-0a1b2c3d4e5f' }) });

const route = routes('Relationships');

const toIso = (v: string | null | undefined) => (v == null ? v : new Date(v).toISOString());

function checkDates(startDate: string | undefined, endDate: string | null | undefined, now: number): void {
  const start = startDate ? Date.parse(startDate) : now;
  if (endDate != null && Date.parse(endDate) <= Math.max(start, now)) {
    throw new DomainError(DomainCode.ValidationFailed, 'endDate must be in the future and after startDate', {
      issues: [{ path: ['endDate'], message: 'must be after startDate and now' }],
    });
  }
}

/** `/relationships`: each relationship is a `relationship` actor; routes only translate. */
export function relationshipRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'get',
      path: '/relationships',
      summary: 'List relationships (filters hit indexed columns)',
      request: {
        query: z.object({
          vendorId: Filter.optional(),
          partnerId: Filter.optional(),
          relationshipType: z.enum(RELATIONSHIP_TYPES).optional(),
          status: z.enum(RELATIONSHIP_STATUSES).optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(page(Relationship, 'RelationshipPage'), 'A page of relationships, newest first'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').relationships.list(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/relationships',
      summary: 'Create a relationship (status PENDING)',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(CreateRelationship) },
      responses: { 201: json(Relationship, 'Created'), ...errors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const s = c.get('services');
      checkDates(body.startDate, body.endDate, s.clock.now());
      const idem = idempotencyOf(c, body);
      const { status: _initial, ...input } = body;
      const id = idem ? derivedId(idem) : crypto.randomUUID();
      const out = await s.idempotency.command(idem, 201, (key) =>
        s.relationships.create({ principal: c.get('principal'), requestId: c.get('requestId'), key }, id, {
          ...input,
          startDate: toIso(input.startDate) ?? undefined,
          endDate: toIso(input.endDate),
        }),
      );
      c.header('location', `${c.req.path}/${(out.body as { id: string }).id}`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/relationships/{id}',
      summary: 'Get a relationship',
      request: { params: IdParam },
      responses: { 200: json(Relationship, 'The relationship'), ...errors },
    }),
    async (c) => c.json((await c.get('services').relationships.get(c.get('principal'), c.req.valid('param').id)) as never, 200),
  );

  app.openapi(
    route({
      method: 'put',
      path: '/relationships/{id}',
      summary: 'Update agreementDetails, configuration, metadata or endDate',
      request: { params: IdParam, body: jsonBody(UpdateRelationship) },
      responses: { 200: json(Relationship, 'Updated'), ...errors, ...conflict },
    }),
    async (c) => {
      const s = c.get('services');
      const patch = c.req.valid('json');
      if (patch.endDate != null) checkDates(undefined, patch.endDate, s.clock.now());
      const updated = await s.relationships.update(
        { principal: c.get('principal'), requestId: c.get('requestId') },
        c.req.valid('param').id,
        'endDate' in patch ? { ...patch, endDate: toIso(patch.endDate) } : patch,
      );
      return c.json(updated as never, 200);
    },
  );

  for (const action of ['activate', 'suspend', 'terminate'] as const satisfies readonly LifecycleAction[]) {
    app.openapi(
      route({
        method: 'post',
        path: `/relationships/{id}/${action}`,
        summary: `${action[0]!.toUpperCase()}${action.slice(1)} a relationship (409 with the allowed actions when the lifecycle forbids it)`,
        // the body is optional (an empty body with a JSON content type included), so it is parsed here
        request: { params: IdParam, headers: IdempotencyKeyHeader, body: { required: false, content: { 'application/json': { schema: { $ref: '#/components/schemas/LifecycleRequest' } } } } },
        responses: { 200: json(Relationship, 'The relationship after the transition'), ...errors, ...conflict },
      }),
      async (c) => {
        const s = c.get('services');
        const id = c.req.valid('param').id;
        const body = await optionalBody(c.req);
        const idem = idempotencyOf(c, body);
        const out = await s.idempotency.command(idem, 200, (key) =>
          s.relationships.transition({ principal: c.get('principal'), requestId: c.get('requestId'), key }, id, action, body.reason),
        );
        return reply(c, out);
      },
    );
  }

  app.openAPIRegistry.register('LifecycleRequest', LifecycleBody);
  return app;
}

/** An optional lifecycle body: absent or empty is `{}`; otherwise JSON matching LifecycleBody. */
async function optionalBody(req: HonoRequest): Promise<{ reason?: string }> {
  const length = req.header('content-length');
  if ((length === undefined || length === '0') && req.header('transfer-encoding') === undefined) return {};
  const text = await req.text();
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new DomainError(DomainCode.MalformedJson, 'the request body is not valid JSON');
  }
  const parsed = LifecycleBody.safeParse(raw);
  if (!parsed.success) {
    throw new DomainError(DomainCode.ValidationFailed, 'invalid json', {
      target: 'json',
      issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message })),
    });
  }
  return parsed.data;
}
