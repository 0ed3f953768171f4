import { z } from '@hono/zod-openapi';
import { STEP_STATUSES, WORKFLOW_STATUSES } from '../../machines/workflow/index.js';
import { WORKFLOW_TYPES } from '../../machines/workflow/templates.js';
import { derivedId } from '../../services/common/idempotency.js';
import type { StepCommand } from '../../services/workflows/service.js';
import { router, routes } from '../env.js';
import { idempotencyOf, reply } from '../idempotency.js';
import { conflict, Cursor, errors, Filter, IdempotencyKeyHeader, JsonObject, json, jsonBody, Limit, page } from '../schemas.js';

const PartyId = z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ -');

const Step = z
  .object({
    id: z.string(),
    workflowId: z.string(),
    stepNumber: z.number().int(),
    name: z.string(),
    description: z.string().nullable(),
    status: z.enum(STEP_STATUSES),
    estimatedDuration: z.number().nullable().openapi({ description: 'minutes' }),
    actualDuration: z.number().nullable().openapi({ description: 'minutes, from the first start to completion' }),
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
    errorMessage: z.string().nullable(),
    retryCount: z.number().int(),
    maxRetries: z.number().int().nullable(),
    retryAt: z.string().nullable().openapi({ description: 'When a failed step with retries left becomes READY again' }),
    dependencies: z.array(z.number().int()),
    configuration: JsonObject.nullable(),
    output: z.unknown(),
    automated: z.boolean(),
  })
  .openapi('IntegrationWorkflowStep');

export const Workflow = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    workflowType: z.enum(WORKFLOW_TYPES),
    vendorId: z.string().nullable(),
    partnerId: z.string().nullable(),
    integrationId: z.string().nullable(),
    status: z.enum(WORKFLOW_STATUSES),
    currentStep: z.number().int().nullable(),
    dependencies: z.array(z.string()).openapi({ description: 'IDs of workflows that must complete first' }),
    estimatedDuration: z.number().nullable(),
    actualDuration: z.number().nullable(),
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
    errorMessage: z.string().nullable(),
    metadata: JsonObject.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    version: z.number().int(),
    steps: z.array(Step),
  })
  .openapi('IntegrationWorkflow');

const CreateStep = z.strictObject({
  stepNumber: z.number().int().min(1).max(1000),
  name: z.string().min(1).max(200),
  description: z.string().max(2000).nullable().optional(),
  status: z.literal('NOT_STARTED').optional().openapi({ description: 'Only the initial status may be given' }),
  estimatedDuration: z.number().min(0).max(525_600).nullable().optional(),
  maxRetries: z.number().int().min(0).max(50).nullable().optional().openapi({ description: 'Default: 3 for automated steps, 0 for manual ones' }),
  dependencies: z.array(z.number().int()).max(100).optional().openapi({ description: 'Step numbers that must complete first' }),
  configuration: JsonObject.nullable()
    .optional()
    .openapi({
      description:
        'action ({"type":"publish","subject","data"} or {"type":"connector","connector","operation","input"}) makes the step automated; timeoutMs, retryBackoffMs; condition (an expression over workflow.* and steps.<n>.output) skips the step when false',
    }),
});

const CreateWorkflow = z
  .strictObject({
    name: z.string().min(1).max(200),
    description: z.string().max(2000).nullable().optional(),
    workflowType: z.enum(WORKFLOW_TYPES),
    vendorId: PartyId.nullable().optional(),
    partnerId: PartyId.nullable().optional(),
    integrationId: PartyId.nullable().optional(),
    dependencies: z.array(z.string().min(1).max(200)).max(50).optional(),
    estimatedDuration: z.number().min(0).nullable().optional(),
    metadata: JsonObject.nullable().optional(),
    status: z.literal('NOT_STARTED').optional(),
    steps: z.array(CreateStep).max(200).optional().openapi({ description: "The steps; without them the type's template steps" }),
  })
  .openapi('CreateIntegrationWorkflow', {
    example: {
      name: 'Integration Setup',
      description: 'Setup integration for vendor and partner',
      workflowType: 'INTEGRATION_SETUP',
      vendorId: 'vendor-123',
      partnerId: 'partner-456',
      steps: [
        { stepNumber: 1, name: 'Validate Configuration', description: 'Validate integration configuration', status: 'NOT_STARTED', estimatedDuration: 5 },
        { stepNumber: 2, name: 'Configure API Access', description: 'Setup API credentials', status: 'NOT_STARTED', estimatedDuration: 10, dependencies: [1] },
      ],
      estimatedDuration: 15,
    },
  });

/** One body per command, each strict: a field of another command (or an unknown one) is a 400, never ignored. */
const ExecuteStep = z.strictObject({}).openapi('ExecuteWorkflowStep', { description: 'No fields; the body may be left out' });
const CompleteStep = z
  .strictObject({
    output: z.unknown().optional().openapi({ description: "The step's result (later steps' conditions can read it)" }),
    status: z.enum(['COMPLETED', 'FAILED']).optional().openapi({ description: 'FAILED reports a failure (retried while retries are left)' }),
    errorMessage: z.string().max(2000).optional(),
  })
  .openapi('CompleteWorkflowStep');
const RetryStep = z.strictObject({}).openapi('RetryWorkflowStep', { description: 'No fields; the body may be left out' });
const STEP_BODIES = { execute: ExecuteStep, complete: CompleteStep, retry: RetryStep } satisfies Record<StepCommand, z.ZodType>;
const StartBody = z.strictObject({}).openapi('StartWorkflow', { description: 'No fields; the body may be left out' });
const CancelBody = z.strictObject({ reason: z.string().max(1000).optional() }).openapi('CancelWorkflow');

const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });
const StepParams = z.object({
  workflowId: z.string().openapi({ param: { name: 'workflowId', in: 'path' } }),
  stepId: z.string().openapi({ param: { name: 'stepId', in: 'path' }, description: "The step's id" }),
});
const route = routes('Workflows');


/** `/workflows`: each integration workflow is a `workflow` actor; routes only translate. */
export function workflowCoordinationRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'get',
      path: '/workflows',
      summary: 'List workflows (a vendor or partner sees those it is party to)',
      request: {
        query: z.object({
          status: z.enum(WORKFLOW_STATUSES).optional(),
          workflowType: z.enum(WORKFLOW_TYPES).optional(),
          vendorId: Filter.optional(),
          partnerId: Filter.optional(),
          integrationId: Filter.optional(),
          limit: Limit,
          cursor: Cursor,
        }),
      },
      responses: { 200: json(page(Workflow, 'IntegrationWorkflowPage'), 'A page of workflows, newest first'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      const q = c.req.valid('query');
      const r = await s.workflows.list(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/workflows',
      summary: 'Create a workflow (NOT_STARTED); step dependencies must form a DAG',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(CreateWorkflow) },
      responses: { 201: json(Workflow, 'Created'), ...errors, ...conflict },
    }),
    async (c) => {
      const s = c.get('services');
      const body = c.req.valid('json');
      const idem = idempotencyOf(c, body);
      const { status: _initial, steps, ...rest } = body;
      const id = idem ? derivedId(idem) : crypto.randomUUID();
      const out = await s.idempotency.command(idem, 201, (key) =>
        s.workflows.create({ principal: c.get('principal'), requestId: c.get('requestId'), key }, id, {
          ...rest,
          steps: steps?.map(({ status: _s, ...st }) => st),
        }),
      );
      c.header('location', `${c.req.path}/${(out.body as { id: string }).id}`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/workflows/{id}',
      summary: 'A workflow with its steps',
      request: { params: IdParam },
      responses: { 200: json(Workflow, 'The workflow'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      return c.json((await s.workflows.get(c.get('principal'), c.req.valid('param').id)) as never, 200);
    },
  );

  for (const action of ['start', 'cancel'] as const) {
    app.openapi(
      route({
        method: 'post',
        path: `/workflows/{id}/${action}`,
        summary:
          action === 'start'
            ? 'Start: BLOCKED until every dependency workflow completes, then IN_PROGRESS with every step whose dependencies are done READY'
            : 'Cancel an unfinished workflow: its open steps become CANCELLED and its dependents fail',
        request: { params: IdParam, headers: IdempotencyKeyHeader, body: jsonBody(action === 'start' ? StartBody : CancelBody, false) },
        responses: { 200: json(Workflow, 'The workflow after the change'), ...errors, ...conflict },
      }),
      async (c) => {
        const s = c.get('services');
        const id = c.req.valid('param').id;
        const body = c.req.header('content-type') ? c.req.valid('json') : {};
        const idem = idempotencyOf(c, body);
        const svc = s.workflows;
        const out = await s.idempotency.command(idem, 200, (key) => {
          const cx = { principal: c.get('principal'), requestId: c.get('requestId'), key };
          return action === 'start' ? svc.start(cx, id) : svc.cancel(cx, id, 'reason' in body ? body.reason : undefined);
        });
        return reply(c, out);
      },
    );
  }

  const summaries: Record<StepCommand, string> = {
    execute: 'Execute a READY step (IN_PROGRESS)',
    complete: 'Complete an IN_PROGRESS step with its output, or report it FAILED (retried while retries are left)',
    retry: 'Retry a FAILED step now (READY again)',
  };
  for (const command of ['execute', 'complete', 'retry'] as const) {
    app.openapi(
      route({
        method: 'post',
        path: `/workflows/{workflowId}/steps/{stepId}/${command}`,
        summary: summaries[command],
        request: { params: StepParams, headers: IdempotencyKeyHeader, body: jsonBody(STEP_BODIES[command], false) },
        responses: { 200: json(Workflow, 'The workflow after the change'), ...errors, ...conflict },
      }),
      async (c) => {
        const s = c.get('services');
        const { workflowId, stepId } = c.req.valid('param');
        const body = c.req.header('content-type') ? c.req.valid('json') : {};
        const idem = idempotencyOf(c, body);
        const out = await s.idempotency.command(idem, 200, (key) =>
          s.workflows.step({ principal: c.get('principal'), requestId: c.get('requestId'), key }, workflowId, stepId, command, body),
        );
        return reply(c, out);
      },
    );
  }

  return app;
}
