import { z } from '@hono/zod-openapi';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import { ACCESS_LEVELS, OWNER_TYPES, RESOURCE_TYPES } from '../../services/coordination/resources.js';
import { router, routes } from '../env.js';
import { commandOf } from '../command.js';
import { reply } from '../idempotency.js';
import { conflict, Cursor, errors, Filter, IdempotencyKeyHeader, JsonObject, json, jsonBody, Limit, page, Timestamp } from '../schemas.js';

const PartyId = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ -');

export const Grant = z
  .object({
    id: z.string(),
    resourceId: z.string(),
    grantedToId: z.string(),
    grantedToType: z.enum(OWNER_TYPES),
    accessLevel: z.enum(ACCESS_LEVELS),
    grantedBy: z.string(),
    grantedAt: z.string(),
    expiresAt: z.string().nullable(),
    isActive: z.boolean(),
    conditions: JsonObject.nullable(),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('ResourceAccessGrant');

export const Resource = z
  .object({
    id: z.string(),
    resourceId: z.string(),
    resourceType: z.enum(RESOURCE_TYPES),
    ownerId: z.string(),
    ownerType: z.enum(OWNER_TYPES),
    name: z.string(),
    description: z.string().nullable(),
    configuration: JsonObject.nullable(),
    accessControl: JsonObject.nullable(),
    isActive: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
    accessGrants: z.array(Grant),
  })
  .openapi('SharedResource');

const CreateResource = z
  .strictObject({
    resourceId: z.string().min(1).max(500),
    resourceType: z.enum(RESOURCE_TYPES),
    name: z.string().min(1).max(200),
    description: z.string().max(2000).nullable().optional(),
    configuration: JsonObject.nullable().optional(),
    accessControl: JsonObject.nullable().optional(),
    isActive: z.literal(true).optional().openapi({ description: 'Only the initial value may be given' }),
    ownerId: PartyId.optional().openapi({ description: 'Operator and service tokens only; vendors and partners own what they create' }),
    ownerType: z.enum(OWNER_TYPES).optional(),
  })
  .openapi('CreateSharedResource', {
    example: {
      resourceId: 'api-endpoint-789',
      resourceType: 'API_ENDPOINT',
      name: 'Customer Data API',
      description: 'API endpoint for customer data access',
      accessControl: { allowedPartners: ['partner-456', 'partner-789'], accessLevel: 'read' },
    },
  });

const CreateGrant = z
  .strictObject({
    resourceId: z.string().optional().openapi({ description: 'May repeat the path\'s resource id; any other value is refused' }),
    grantedToId: PartyId,
    grantedToType: z.enum(OWNER_TYPES),
    accessLevel: z.enum(ACCESS_LEVELS),
    expiresAt: Timestamp.nullable().optional().openapi({ description: 'Honoured to the second' }),
    conditions: JsonObject.nullable().optional(),
  })
  .openapi('CreateResourceAccessGrant', { example: { grantedToId: 'partner-456', grantedToType: 'partner', accessLevel: 'read', expiresAt: '2026-12-31T00:00:00.000Z' } });

const Access = z
  .object({
    resourceId: z.string(),
    partyId: z.string(),
    partyType: z.enum(OWNER_TYPES),
    level: z.enum(ACCESS_LEVELS),
    allowed: z.boolean(),
    effectiveLevel: z.enum(ACCESS_LEVELS).nullable(),
    reason: z.string(),
    grantId: z.string().nullable(),
    expiresAt: z.string().nullable(),
    checkedAt: z.string(),
  })
  .openapi('AccessDecision');

const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
const ResourceParam = z.object({ resourceId: z.string().openapi({ param: { name: 'resourceId', in: 'path' } }) });
const route = routes('Shared resources');

/** Shared resources and access grants: owned by the caller's tenant; others' answer 404. */
export function resourceRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'get',
      path: '/resources',
      summary: 'List the resources the caller owns or was granted (operators: all)',
      request: {
        query: z.object({
          resourceType: z.enum(RESOURCE_TYPES).optional(),
          ownerId: Filter.optional(),
          ownerType: z.enum(OWNER_TYPES).optional(),
          isActive: z.enum(['true', 'false']).optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(page(Resource, 'SharedResourcePage'), 'A page of resources, newest first'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').resources.list(c.get('principal'), { ...q, isActive: q.isActive === undefined ? undefined : q.isActive === 'true' });
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/resources',
      summary: 'Create a shared resource owned by the caller (operators name ownerId and ownerType)',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(CreateResource) },
      responses: { 201: json(Resource, 'Created'), ...errors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const { isActive: _initial, ...input } = body;
      const out = await c.get('services').resources.create(commandOf(c, body), input);
      c.header('location', `${c.req.path}/${out.body.id}`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/resources/{id}',
      summary: 'Get a resource with the grants the caller may see',
      request: { params: IdParam },
      responses: { 200: json(Resource, 'The resource'), ...errors },
    }),
    async (c) => c.json((await c.get('services').resources.get(c.get('principal'), c.req.valid('param').id)) as never, 200),
  );

  app.openapi(
    route({
      method: 'post',
      path: '/resources/{resourceId}/grants',
      summary: 'Grant access (the owner or an admin grantee; never above the granter\'s level)',
      request: { params: ResourceParam, headers: IdempotencyKeyHeader, body: jsonBody(CreateGrant) },
      responses: { 201: json(Grant, 'Granted'), ...errors, ...conflict },
    }),
    async (c) => {
      const { resourceId } = c.req.valid('param');
      const body = c.req.valid('json');
      if (body.resourceId !== undefined && body.resourceId !== resourceId) {
        throw new DomainError(DomainCode.ValidationFailed, 'body resourceId differs from the path', { issues: [{ path: ['resourceId'], message: 'must equal the path parameter' }] });
      }
      const { resourceId: _same, ...grant } = body;
      const expiresAt = grant.expiresAt == null ? grant.expiresAt : new Date(grant.expiresAt).toISOString();
      return reply(c, await c.get('services').resources.grant(commandOf(c, body), resourceId, { ...grant, expiresAt }));
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/resources/{resourceId}/deactivate',
      summary: 'Deactivate a resource: its grants stop working',
      request: { params: ResourceParam, headers: IdempotencyKeyHeader },
      responses: { 200: json(Resource, 'Deactivated'), ...errors, ...conflict },
    }),
    async (c) => {
      return reply(c, await c.get('services').resources.deactivate(commandOf(c, null), c.req.valid('param').resourceId));
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/resources/{resourceId}/access',
      summary: 'May a party do read/write/admin on this resource now? (defaults to the caller)',
      request: {
        params: ResourceParam,
        query: z.object({ partyId: Filter.optional(), partyType: z.enum(OWNER_TYPES).optional(), level: z.enum(ACCESS_LEVELS).default('read') }),
      },
      responses: { 200: json(Access, 'The decision'), ...errors },
    }),
    async (c) => c.json((await c.get('services').resources.check(c.get('principal'), c.req.valid('param').resourceId, c.req.valid('query'))) as never, 200),
  );

  app.openapi(
    route({
      method: 'delete',
      path: '/grants/{grantId}',
      summary: 'Revoke a grant (owner, admin grantee, operator, or the grantee itself)',
      request: { params: z.object({ grantId: z.string().openapi({ param: { name: 'grantId', in: 'path' } }) }) },
      responses: { 200: json(Grant, 'Revoked'), ...errors, ...conflict },
    }),
    async (c) => {
      return c.json(await c.get('services').resources.revoke(commandOf(c), c.req.valid('param').grantId), 200);
    },
  );
  return app;
}
