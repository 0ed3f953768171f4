import { z } from '@hono/zod-openapi';

/** Shapes shared by the routes; each route file keeps its own request and response schemas. */
export const JsonObject = z.record(z.string(), z.unknown()).openapi({ type: 'object', additionalProperties: true });

export const Timestamp = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).openapi({
  description: 'ISO 8601 date-time (with offset) or date',
  example: '2026-12-31T00:00:00Z',
});

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    issues: z.array(z.object({ path: z.array(z.string()), code: z.string().optional(), message: z.string() })).optional(),
  })
  .passthrough()
  .openapi('Problem');

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: Problem } } });

/** The error answers every authenticated route can give. */
export const errors = {
  400: problem('Invalid input: malformed JSON, wrong types, unknown or server-owned fields'),
  401: problem('Missing, malformed, expired or wrongly signed token'),
  403: problem('The role may not call this function'),
  404: problem('Unknown id, or an object the caller is not party to'),
  413: problem('Body larger than the limit'),
  422: problem('Idempotency-Key reused with a different request'),
};
export const conflict = { 409: problem('Not allowed in the current state') };

export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z
    .string()
    .optional()
    .openapi({ description: 'Retry-safe key: a retry with the same key and body returns the first answer; another body is 422', example: 'b7c1f0e2-create-1' }),
});

export const Limit = z.coerce.number().int().min(1).max(200).default(50).openapi({ example: 50 });
/** A free-text filter of a list route: given means not empty (`?vendorId=` is a 400, not "no filter"; leave it out for that). */
export const Filter = z.string().min(1, 'must not be empty: leave the parameter out for no filter');
export const Cursor = z.string().max(500).optional().openapi({ description: 'nextCursor of the previous page' });

export const page = <T extends z.ZodTypeAny>(item: T, name: string) =>
  z.object({ data: z.array(item), pagination: z.object({ limit: z.number().int(), nextCursor: z.string().nullable() }) }).openapi(name);

export const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
export const jsonBody = <T extends z.ZodTypeAny>(schema: T, required = true) => ({ required, content: { 'application/json': { schema } } });
