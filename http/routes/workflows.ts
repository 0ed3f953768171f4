import { z } from '@hono/zod-openapi';
import { SAGA_STATUSES, STEP_STATUSES } from '../../machines/saga/index.js';
import { SAGA_TYPES as WORKFLOW_TYPES } from '../../machines/saga/definitions.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import { OrderRequestShape, orderData } from '../../services/saga/order.js';
import { router, routes } from '../env.js';
import { idempotencyOf, reply } from '../idempotency.js';
import { requireRole } from '../middleware/auth.js';
import { conflict, errors, IdempotencyKeyHeader, JsonObject, json, jsonBody } from '../schemas.js';

const route = routes('Workflows');

const StartOrder = z.strictObject(OrderRequestShape).openapi('OrderWorkflowRequest', {
  example: {
    orderId: '550e8400-e29b-41d4-a716-446655440000',
    customerId: '123e4567-e89b-12d3-a456-426614174000',
    items: [{ productId: '789e0123-e89b-12d3-a456-426614174000', quantity: 2, price: 29.99 }],
    paymentMethod: { type: 'CREDIT_CARD', token: 'tok_1234567890' },
    shippingAddress: { street: '123 Main St', city: 'New York', state: 'NY', zipCode: '10001', country: 'US' },
  },
});

const Started = z
  .object({
    workflowId: z.string(),
    status: z.enum(SAGA_STATUSES).openapi({ description: 'STARTED for a new workflow; the current status when the order had one already' }),
    orderId: z.string(),
    estimatedCompletion: z.string().openapi({ description: 'The latest time the workflow finishes: its start plus the whole-order timeout' }),
    currentStep: z.string().nullable(),
  })
  .openapi('WorkflowStarted');

const StepView = z
  .object({
    name: z.string(),
    status: z.enum(STEP_STATUSES),
    startedAt: z.string().optional(),
    completedAt: z.string().optional(),
    attempts: z.number().int().optional(),
    result: JsonObject.optional(),
    error: z.object({ code: z.string(), message: z.string(), details: JsonObject }).optional(),
    compensation: z
      .object({ name: z.string(), status: z.string(), attempts: z.number().int(), startedAt: z.string().optional(), completedAt: z.string().optional() })
      .optional(),
  })
  .openapi('WorkflowStep');

const Status = z
  .object({
    workflowId: z.string(),
    type: z.enum(WORKFLOW_TYPES),
    status: z.enum(SAGA_STATUSES),
    currentStep: z.string().nullable(),
    steps: z.array(StepView),
    metadata: JsonObject,
    startedAt: z.string().nullable(),
    completedAt: z.string().nullable(),
    compensationSteps: z.array(z.string()).openapi({ description: 'Compensations still to run, in order' }),
    error: z.object({ failedStep: z.string().nullable(), code: z.string(), message: z.string(), details: JsonObject }).nullable(),
    cancellation: z.object({ reason: z.string(), initiatedBy: z.string(), at: z.string() }).nullable(),
  })
  .openapi('WorkflowStatus');

const CancelBody = z
  .strictObject({
    reason: z.string().min(1).max(1000),
    initiatedBy: z.string().min(1).max(100).optional().openapi({ description: 'Who asked (CUSTOMER, OPERATOR, …); the caller\u2019s role when absent' }),
  })
  .openapi('CancelWorkflowRequest', { example: { reason: 'Customer requested cancellation', initiatedBy: 'CUSTOMER' } });

const Cancelled = z
  .object({
    workflowId: z.string(),
    status: z.enum(SAGA_STATUSES),
    compensationSteps: z.array(z.string()).openapi({ description: 'The compensations in the order they will run (the step in flight first, if it may have happened)' }),
  })
  .openapi('WorkflowCancelled');

const ActivePage = z
  .object({
    content: z.array(z.object({ workflowId: z.string(), type: z.enum(WORKFLOW_TYPES), status: z.enum(SAGA_STATUSES), startedAt: z.string(), metadata: JsonObject })),
    totalElements: z.number().int(),
    totalPages: z.number().int(),
    number: z.number().int(),
    size: z.number().int(),
  })
  .openapi('ActiveWorkflowPage');

const Metrics = z
  .object({
    activeWorkflows: z.number().int(),
    completedToday: z.number().int(),
    failedToday: z.number().int(),
    averageCompletionTime: z.string().nullable().openapi({ description: 'ISO-8601 duration over today\u2019s completed workflows; null before the first' }),
    successRate: z.number().openapi({ description: 'Percent of today\u2019s finished workflows that completed (cancellations not counted)' }),
    workflowsByType: z.record(z.string(), z.number().int()),
  })
  .openapi('WorkflowMetrics');

const IdParam = z.object({ workflowId: z.string().min(1).max(200).openapi({ param: { name: 'workflowId', in: 'path' } }) });

/** `/api/v1/workflows`: the spec's saga API. Platform roles (operator, service) only. */
export function workflowRoutes() {
  const app = router();
  app.use('*', requireRole('operator', 'service'));

  app.openapi(
    route({
      method: 'post',
      path: '/order/start',
      summary: 'Start the ORDER_FULFILLMENT saga of an order (once per orderId: a repeat returns the existing workflow)',
      request: { headers: IdempotencyKeyHeader, body: jsonBody(StartOrder) },
      responses: { 201: json(Started, 'Started'), 200: json(Started, 'The order had a workflow already'), ...errors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const s = c.get('services');
      // the saga's start is deduplicated by its order (one saga per orderId, whatever the key)
      const out = await s.idempotency.call(idempotencyOf(c, body), async () => {
        const r = await s.sagas.start('ORDER_FULFILLMENT', orderData(body));
        const ctx = r.context;
        const started = Date.parse(ctx.startedAt!);
        return {
          status: r.created ? 201 : 200,
          body: {
            workflowId: r.workflowId,
            status: r.created ? 'STARTED' : ctx.status,
            orderId: body.orderId,
            estimatedCompletion: new Date(started + ctx.plan.timeoutMs).toISOString(),
            currentStep: r.created ? ctx.plan.steps[0]!.name : (await s.sagas.status(r.workflowId)).currentStep,
          },
        };
      });
      c.header('location', `/api/v1/workflows/${(out.body as { workflowId: string }).workflowId}/status`);
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{workflowId}/status',
      summary: 'A workflow: status, current step, every step with its times, metadata',
      request: { params: IdParam },
      responses: { 200: json(Status, 'The workflow'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      return c.json((await s.sagas.status(c.req.valid('param').workflowId)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{workflowId}/cancel',
      summary: 'Cancel a running workflow: CANCELLING, then its completed steps are compensated in reverse order (409 once it is no longer IN_PROGRESS)',
      request: { params: IdParam, headers: IdempotencyKeyHeader, body: jsonBody(CancelBody) },
      responses: { 200: json(Cancelled, 'Cancelling'), ...errors, ...conflict },
    }),
    async (c) => {
      const s = c.get('services');
      const body = c.req.valid('json');
      const id = c.req.valid('param').workflowId;
      const initiatedBy = body.initiatedBy ?? c.get('principal').role.toUpperCase();
      const out = await s.idempotency.command(idempotencyOf(c, body), 200, (key) =>
        s.sagas.cancel(id, { reason: body.reason, initiatedBy }, { key }),
      );
      return reply(c, out);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/active',
      summary: 'Workflows not finished (IN_PROGRESS, COMPENSATING, CANCELLING, COMPENSATION_FAILED), newest first',
      request: {
        query: z.object({
          page: z.coerce.number().int().min(0).max(100_000).default(0).openapi({ example: 0 }),
          size: z.coerce.number().int().min(1).max(200).default(20).openapi({ example: 20 }),
        }),
      },
      responses: { 200: json(ActivePage, 'A page of active workflows'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      const q = c.req.valid('query');
      return c.json((await s.sagas.active(q.page, q.size)) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/metrics',
      summary: 'Active workflows by type, today\u2019s completions and failures, average completion time, success rate',
      responses: { 200: json(Metrics, 'Workflow metrics'), ...errors },
    }),
    async (c) => {
      const s = c.get('services');
      return c.json((await s.sagas.metrics()) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/{workflowId}/compensation/retry',
      summary: 'Operators: a workflow in COMPENSATION_FAILED tries its failed compensation again (409 in any other status)',
      request: { params: IdParam },
      responses: { 200: json(Status, 'The workflow, compensating again'), ...errors, ...conflict },
    }),
    async (c) => {
      const s = c.get('services');
      const p = c.get('principal');
      if (p.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'this route is for operator tokens');
      return c.json((await s.sagas.retryCompensation(c.req.valid('param').workflowId, p.sub)) as never, 200);
    },
  );

  return app;
}
