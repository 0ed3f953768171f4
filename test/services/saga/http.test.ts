import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../http/app.js';
import { signToken, type TokenClaims } from '../../../http/auth/jwt.js';
import { SagaService } from '../../../services/saga/service.js';
import { testLog } from '../../helpers/runtime.js';
import { FAST, order, sagaHarness, type SagaHarness } from './harness.js';

const SECRET = 'saga-test-secret-0123456789-0123456789';
const W = '/api/v1/workflows';

describe('/api/v1/workflows (the spec\u2019s API)', () => {
  let h: SagaHarness;
  let app: ReturnType<typeof createApp>;
  const token = (role: TokenClaims['role'], tenantId?: string) =>
    signToken({ sub: `${role}-1`, role, ...(tenantId ? { tenantId } : {}), exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  const call = async (method: string, path: string, o: { body?: unknown; role?: TokenClaims['role'] | null; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; headers: Headers }> => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.role !== null) headers.authorization = `Bearer ${token(o.role ?? 'operator', o.role === 'vendor' ? 'v-1' : undefined)}`;
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    if (body) headers['content-type'] = 'application/json';
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) : null, headers: res.headers };
  };

  beforeAll(async () => {
    h = await sagaHarness({ env: { ...FAST, SAGA_STUCK_DEGRADED_ABOVE: '1' } });
    app = createApp({ services: h.services, log: testLog, jwtSecret: SECRET });
  });
  afterAll(async () => h?.close());

  it('POST /order/start: 201 STARTED with the spec\u2019s shape; the same order again: 200, the same workflow', async () => {
    const o = order();
    const r = await call('POST', `${W}/order/start`, { body: o });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      workflowId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      status: 'STARTED',
      orderId: o.orderId,
      estimatedCompletion: expect.any(String),
      currentStep: 'INVENTORY_RESERVATION',
    });
    await h.settle(r.body.workflowId, ['COMPLETED']);
    const again = await call('POST', `${W}/order/start`, { body: o });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ workflowId: r.body.workflowId, status: 'COMPLETED', currentStep: null });
  });

  it('GET /{id}/status: the spec\u2019s document; unknown id 404 problem+json', async () => {
    h.sim.configure({ silentAttempts: { PAYMENT_PROCESSING: Infinity } });
    const o = order();
    const { body } = await call('POST', `${W}/order/start`, { body: o });
    for (let i = 0; i < 200; i++) {
      const ctx = await h.sagas.context(body.workflowId);
      if (ctx.current === 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const s = await call('GET', `${W}/${body.workflowId}/status`);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      workflowId: body.workflowId,
      type: 'ORDER_FULFILLMENT',
      status: 'IN_PROGRESS',
      currentStep: 'PAYMENT_PROCESSING',
      steps: [
        { name: 'INVENTORY_RESERVATION', status: 'COMPLETED', startedAt: expect.any(String), completedAt: expect.any(String) },
        { name: 'PAYMENT_PROCESSING', status: 'IN_PROGRESS', startedAt: expect.any(String) },
        { name: 'DELIVERY_SCHEDULING', status: 'PENDING' },
        { name: 'NOTIFICATION_SENDING', status: 'PENDING' },
      ],
      metadata: { orderId: o.orderId, customerId: o.customerId },
    });
    expect(s.body.steps[2]).toEqual({ name: 'DELIVERY_SCHEDULING', status: 'PENDING' });

    // cancel: CANCELLING with the compensations in the order they will run; then 409 for a second cancel
    const c = await call('POST', `${W}/${body.workflowId}/cancel`, { body: { reason: 'Customer requested cancellation', initiatedBy: 'CUSTOMER' }, headers: { 'idempotency-key': `cancel-${body.workflowId}` } });
    expect(c.status).toBe(200);
    expect(c.body).toEqual({ workflowId: body.workflowId, status: 'CANCELLING', compensationSteps: ['REFUND_PAYMENT', 'RELEASE_INVENTORY'] });
    const replay = await call('POST', `${W}/${body.workflowId}/cancel`, { body: { reason: 'Customer requested cancellation', initiatedBy: 'CUSTOMER' }, headers: { 'idempotency-key': `cancel-${body.workflowId}` } });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const second = await call('POST', `${W}/${body.workflowId}/cancel`, { body: { reason: 'again' } });
    expect(second.status).toBe(409);
    expect(second.headers.get('content-type')).toContain('application/problem+json');
    h.sim.configure({ silentAttempts: {} });
    await h.settle(body.workflowId, ['CANCELLED']);
    const finished = await call('POST', `${W}/${body.workflowId}/cancel`, { body: { reason: 'too late' } });
    expect(finished.status).toBe(409);
    expect(finished.body).toMatchObject({ status: 409, currentStatus: 'CANCELLED' });

    const missing = await call('GET', `${W}/${randomUUID()}/status`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect((await call('POST', `${W}/${randomUUID()}/cancel`, { body: { reason: 'x' } })).status).toBe(404);
  });

  it('GET /active pages (the spec\u2019s page shape) and GET /metrics (the spec\u2019s shape)', async () => {
    h.sim.configure({ silentAttempts: { INVENTORY_RESERVATION: Infinity } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call('POST', `${W}/order/start`, { body: order() })).body.workflowId);
    const p0 = await call('GET', `${W}/active?page=0&size=2`);
    expect(p0.status).toBe(200);
    expect(p0.body).toMatchObject({ totalElements: expect.any(Number), totalPages: expect.any(Number), number: 0 });
    expect(p0.body.content).toHaveLength(2);
    expect(p0.body.content[0]).toEqual({ workflowId: ids[2], type: 'ORDER_FULFILLMENT', status: 'IN_PROGRESS', startedAt: expect.any(String), metadata: expect.objectContaining({ orderId: expect.any(String) }) });
    expect(p0.body.totalPages).toBe(Math.ceil(p0.body.totalElements / 2));
    const p1 = await call('GET', `${W}/active?page=1&size=2`);
    expect(p1.body.number).toBe(1);
    expect(p1.body.content[0].workflowId).toBe(ids[0]);
    expect((await call('GET', `${W}/active?size=0`)).status).toBe(400);

    const m = await call('GET', `${W}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toEqual({
      activeWorkflows: p0.body.totalElements,
      completedToday: expect.any(Number),
      failedToday: expect.any(Number),
      averageCompletionTime: expect.stringMatching(/^PT/),
      successRate: expect.any(Number),
      workflowsByType: { ORDER_FULFILLMENT: p0.body.totalElements, RETURN_PROCESSING: 0, INVENTORY_REPLENISHMENT: 0 },
    });
    expect(m.body.completedToday).toBeGreaterThanOrEqual(1);

    // stuck sagas: the same service seen 31 minutes later counts them; health degrades above the threshold
    const later = new SagaService(h.runtime.host, h.runtime.database.pool, h.runtime.config, { now: () => Date.now() + 31 * 60_000 });
    expect(await later.stuck()).toBeGreaterThanOrEqual(3);
    expect((await later.health()).status).toBe('degraded');
    expect((await h.sagas.health())).toMatchObject({ status: 'up', stuck: 0, stuckAfterMinutes: 30, degradedAbove: 1 });
    const health = await call('GET', '/health', { role: null });
    expect(health.body.sagas).toMatchObject({ stuck: 0, active: expect.any(Number) });

    const prom = await call('GET', '/metrics', { role: null });
    for (const metric of ['workflow_started_total', 'workflow_completed_total', 'workflow_failed_total', 'workflow_duration_seconds', 'saga_compensation_total', 'workflow_active', 'workflow_stuck_count']) {
      expect(prom.body).toContain(`# TYPE ${metric} `);
    }
    expect(prom.body).toMatch(/workflow_active\{workflow_type="ORDER_FULFILLMENT"\} [1-9]/);
    expect(prom.body).toMatch(/workflow_completed_total\{workflow_type="ORDER_FULFILLMENT"\} [1-9]/);
    expect(prom.body).toMatch(/workflow_duration_seconds_count\{workflow_type="ORDER_FULFILLMENT",status="COMPLETED"\} [1-9]/);
    expect(prom.body).toMatch(/saga_compensation_total\{workflow_type="ORDER_FULFILLMENT"\} [1-9]/);
    h.sim.configure({ silentAttempts: {} });
  });

  it('auth: no token 401, vendor role 403, invalid body 400, Idempotency-Key replays the first answer', async () => {
    expect((await call('GET', `${W}/metrics`, { role: null })).status).toBe(401);
    expect((await call('GET', `${W}/metrics`, { role: 'vendor' })).status).toBe(403);
    expect((await call('GET', `${W}/metrics`, { role: 'service' })).status).toBe(200);
    const bad = await call('POST', `${W}/order/start`, { body: { ...order(), items: [] } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    const o = order();
    const first = await call('POST', `${W}/order/start`, { body: o, headers: { 'idempotency-key': `k-${o.orderId}` } });
    const second = await call('POST', `${W}/order/start`, { body: o, headers: { 'idempotency-key': `k-${o.orderId}` } });
    expect(second.status).toBe(first.status);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect((await call('POST', `${W}/order/start`, { body: order(), headers: { 'idempotency-key': `k-${o.orderId}` } })).status).toBe(422);
    expect((await call('POST', `${W}/${first.body.workflowId}/compensation/retry`, { role: 'service' })).status).toBe(403);
    expect((await call('POST', `${W}/${first.body.workflowId}/compensation/retry`)).status).toBe(409);
  });

  it('/openapi.json documents every workflow route', async () => {
    const doc = await call('GET', '/openapi.json', { role: null });
    for (const p of ['/api/v1/workflows/order/start', '/api/v1/workflows/{workflowId}/status', '/api/v1/workflows/{workflowId}/cancel', '/api/v1/workflows/active', '/api/v1/workflows/metrics']) {
      expect(doc.body.paths[p], p).toBeDefined();
    }
  });
});
