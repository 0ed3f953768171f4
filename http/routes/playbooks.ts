import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { EXECUTION_STATUSES, PLAYBOOK_STEP_STATUSES, TRIGGER_KINDS } from '../../machines/playbook/types.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import type { Env } from '../env.js';
import { router, routes } from '../env.js';
import { conflict, Cursor, errors, Filter, JsonObject, json, Limit, page, Timestamp } from '../schemas.js';

/** Matches the playbook webhook trigger's path: no bearer token (a Standard Webhooks signature instead). */
export const PLAYBOOK_WEBHOOK_PATH = /^\/api\/partnerships\/playbooks\/[^/]+\/webhook$/;
/** Paths whose bodies may be YAML (a playbook's source). */
export const PLAYBOOK_SOURCE_PATH = /^\/api\/partnerships\/playbooks(?:\/[^/]+)?$/;
export const YAML_TYPE = /^(application|text)\/(x-)?yaml\s*(;|$)/i;
const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

const Id = z.string().max(100).openapi({ param: { name: 'id', in: 'path' } });
const IdParam = z.object({ id: Id });

const Step = z
  .object({
    id: z.string(),
    phase: z.enum(['main', 'finally']),
    type: z.string(),
    status: z.enum(PLAYBOOK_STEP_STATUSES),
    dependsOn: z.array(z.string()),
    attempts: z.number().int(),
    retryCount: z.number().int(),
    retryAt: z.string().nullable(),
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
    output: z.unknown(),
    error: z.object({ code: z.string().nullable(), message: z.string() }).nullable(),
    skipReason: z.enum(['condition', 'error']).nullable(),
    reused: z.boolean().openapi({ description: 'The output was taken over from the execution retried' }),
    logs: z.array(z.object({ at: z.string(), attempt: z.number().int(), message: z.string(), fields: JsonObject.optional() })),
  })
  .openapi('PlaybookExecutionStep');

const Execution = z
  .object({
    id: z.string(),
    playbookId: z.string(),
    playbookName: z.string(),
    playbookVersion: z.number().int(),
    tenantId: z.string().nullable(),
    status: z.enum(EXECUTION_STATUSES),
    trigger: z.enum(TRIGGER_KINDS),
    triggerInfo: JsonObject,
    inputs: JsonObject,
    error: z.string().nullable(),
    createdAt: z.string(),
    createdBy: z.string().nullable(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    updatedAt: z.string(),
    version: z.number().int(),
    steps: z.array(Step),
  })
  .openapi('PlaybookExecution');

const StepCounts = z
  .object({ total: z.number().int(), ...Object.fromEntries(PLAYBOOK_STEP_STATUSES.map((st) => [st, z.number().int()])) })
  .openapi('PlaybookExecutionStepCounts');

const ExecutionSummary = Execution.omit({ inputs: true, steps: true })
  .extend({ stepCounts: StepCounts.openapi({ description: 'How many steps are in each status (main and finally)' }) })
  .openapi('PlaybookExecutionSummary');

const Playbook = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    tenantId: z.string(),
    version: z.number().int().openapi({ description: 'Every update makes a new version' }),
    format: z.enum(['yaml', 'json']),
    source: z.string(),
    definition: JsonObject,
    triggers: z.array(z.string()),
    webhookUrl: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Playbook');

const Created = Playbook.extend({
  webhookSecret: z.string().nullable().openapi({ description: 'The webhook trigger\'s Standard Webhooks secret (whsec_...): answered here only, once' }),
}).openapi('CreatedPlaybook');

const SOURCE_BODY = {
  required: true,
  description: 'The playbook, as YAML (application/yaml) or JSON (application/json); see GET /api/partnerships/playbooks/schema',
  content: { 'application/yaml': { schema: z.string() } },
};

/** A JSON body (may be left out) checked against `schema`: malformed JSON and invalid fields are 400 problems. */
async function bodyOf<T extends z.ZodTypeAny>(c: Context<Env>, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  if (text.trim() === '') return schema.parse({});
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DomainError(DomainCode.MalformedJson, 'the request body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new DomainError(DomainCode.ValidationFailed, 'invalid body', { target: 'json', issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message })) });
  return parsed.data;
}

const ExecuteBody = z.strictObject({ inputs: JsonObject.optional() }).openapi('ExecutePlaybook');
const CancelBody = z.strictObject({ reason: z.string().max(1000).optional() }).openapi('CancelExecution');

const route = routes('Playbooks');
const hook = routes('Playbooks', { public: true });

async function sourceOf(c: Context<Env>): Promise<{ source: string; format: 'yaml' | 'json' }> {
  const type = c.req.header('content-type') ?? '';
  const format = YAML_TYPE.test(type) ? 'yaml' : JSON_TYPE.test(type) ? 'json' : null;
  if (!format) throw new DomainError(DomainCode.UnsupportedMediaType, 'a playbook is application/yaml or application/json');
  const source = await c.req.text();
  if (source.trim() === '') throw new DomainError(DomainCode.ValidationFailed, 'the playbook is empty', { issues: [{ path: [], message: 'empty body' }] });
  return { source, format };
}

const caller = (c: Context<Env>) => ({ principal: c.get('principal'), requestId: c.get('requestId') });

/** `/api/partnerships`: playbooks and their executions; routes only translate. */
export function playbookRoutes() {
  const app = router();

  app.openapi(
    route({ method: 'get', path: '/playbooks/schema', summary: 'The JSON Schema of the playbook format', responses: { 200: json(JsonObject, 'JSON Schema (draft 2020-12)'), ...errors } }),
    (c) => c.json(c.get('services').playbooks.schema() as Record<string, unknown>, 200),
  );

  app.openapi(
    route({
      method: 'post',
      path: '/playbooks',
      summary: 'Create a playbook (version 1); the answer carries the webhook secret, once',
      request: { query: z.object({ tenantId: Filter.max(200).optional().openapi({ description: 'Operators: the tenant that owns it (default platform)' }) }), body: SOURCE_BODY },
      responses: { 201: json(Created, 'Created'), ...errors, ...conflict },
    }),
    async (c) => {
      const { source, format } = await sourceOf(c);
      const p = await c.get('services').playbooks.create(caller(c), source, format, c.req.valid('query').tenantId);
      return c.json(p, 201, { location: `/api/partnerships/playbooks/${p.id}` });
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/playbooks',
      summary: 'List playbooks (a vendor or partner sees its own)',
      request: { query: z.object({ name: Filter.max(200).optional(), limit: Limit, cursor: Cursor }) },
      responses: { 200: json(page(Playbook, 'PlaybookPage'), 'A page of playbooks, newest first'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').playbooks.list(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } }, 200);
    },
  );

  app.openapi(route({ method: 'get', path: '/playbooks/{id}', summary: 'A playbook (its current version)', request: { params: IdParam }, responses: { 200: json(Playbook, 'The playbook'), ...errors } }), async (c) =>
    c.json(await c.get('services').playbooks.get(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    route({ method: 'put', path: '/playbooks/{id}', summary: 'Update a playbook: a new version (running executions keep theirs)', request: { params: IdParam, body: SOURCE_BODY }, responses: { 200: json(Playbook, 'The new version'), ...errors, ...conflict } }),
    async (c) => {
      const { source, format } = await sourceOf(c);
      return c.json(await c.get('services').playbooks.update(caller(c), c.req.valid('param').id, source, format), 200);
    },
  );

  app.openapi(route({ method: 'delete', path: '/playbooks/{id}', summary: 'Delete a playbook (its executions remain; its schedule stops)', request: { params: IdParam }, responses: { 204: { description: 'Deleted' }, ...errors } }), async (c) => {
    await c.get('services').playbooks.delete(caller(c), c.req.valid('param').id);
    return c.body(null, 204);
  });

  app.openapi(
    route({
      method: 'post',
      path: '/playbooks/{id}/execute',
      summary: 'Run a playbook by hand: inputs checked against its declared inputs',
      request: {
        params: IdParam,
        headers: z.object({ 'idempotency-key': z.string().max(200).optional() }),
      },
      description: 'Body (optional, application/json): {"inputs": {...}}',
      responses: { 202: json(Execution, 'Accepted: the execution runs in the background'), ...errors, ...conflict },
    }),
    async (c) => {
      const body = await bodyOf(c, ExecuteBody);
      const e = await c.get('services').playbooks.execute(caller(c), c.req.valid('param').id, body.inputs ?? {}, c.req.header('idempotency-key'));
      return c.json(e, 202, { location: `/api/partnerships/executions/${e.id}` });
    },
  );

  app.openapi(
    hook({
      method: 'post',
      path: '/playbooks/{id}/webhook',
      summary: 'The webhook trigger: a Standard Webhooks signed POST whose JSON body is the inputs',
      request: { params: IdParam },
      responses: { 202: json(Execution, 'Accepted'), ...errors, ...conflict },
    }),
    async (c) => {
      const raw = await c.req.text();
      const e = await c.get('services').playbooks.webhook(c.req.valid('param').id, raw, {
        id: c.req.header('webhook-id'),
        timestamp: c.req.header('webhook-timestamp'),
        signature: c.req.header('webhook-signature'),
      });
      return c.json(e, 202);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/executions',
      summary: 'List executions (a vendor or partner sees those of its playbooks)',
      request: {
        query: z.object({
          playbookId: Filter.max(100).optional(),
          status: z.enum(EXECUTION_STATUSES).optional(),
          trigger: z.enum(TRIGGER_KINDS).optional(),
          from: Timestamp.optional(),
          to: Timestamp.optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(page(ExecutionSummary, 'PlaybookExecutionPage'), 'A page of execution summaries, newest first (no inputs, outputs nor logs: GET /executions/{id} has them)'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').playbooks.listExecutions(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } }, 200);
    },
  );

  app.openapi(route({ method: 'get', path: '/executions/{id}', summary: "An execution with every step's status, attempts, output and logs", request: { params: IdParam }, responses: { 200: json(Execution, 'The execution'), ...errors } }), async (c) =>
    c.json(await c.get('services').playbooks.getExecution(c.get('principal'), c.req.valid('param').id), 200),
  );

  app.openapi(
    route({
      method: 'post',
      path: '/executions/{id}/cancel',
      summary: 'Cancel an execution: running steps stop, nothing new starts, its finally steps run',
      request: { params: IdParam },
      description: 'Body (optional, application/json): {"reason": "..."}',
      responses: { 200: json(Execution, 'The execution'), ...errors, ...conflict },
    }),
    async (c) => {
      const body = await bodyOf(c, CancelBody);
      return c.json(await c.get('services').playbooks.cancel(caller(c), c.req.valid('param').id, body.reason), 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/executions/{id}/retry',
      summary: 'A new execution reusing the outputs of the steps that succeeded, running from the first that did not',
      request: { params: IdParam },
      responses: { 202: json(Execution, 'The new execution'), ...errors, ...conflict },
    }),
    async (c) => {
      const e = await c.get('services').playbooks.retry(caller(c), c.req.valid('param').id);
      return c.json(e, 202, { location: `/api/partnerships/executions/${e.id}` });
    },
  );

  return app;
}
