import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relationshipType } from '../../machines/relationship.js';
import { workflowType } from '../../machines/workflow/index.js';
import { BASE, harness, type Harness } from './harness.js';

let h: Harness;
let op: string;
const reason = 'ticket 7: upstream fixed';

beforeAll(async () => {
  h = await harness({ types: [relationshipType, workflowType] });
  op = h.token('operator');
});
afterAll(async () => h.close());

/** A started workflow whose first (manual, no retries) step has FAILED, so the workflow is FAILED. */
async function failedWorkflow(): Promise<{ id: string; steps: Array<{ id: string }> }> {
  const wf = await h.call('POST', `${BASE}/workflows`, {
    token: op,
    body: {
      name: 'Setup',
      workflowType: 'INTEGRATION_SETUP',
      steps: [
        { stepNumber: 1, name: 'Validate', status: 'NOT_STARTED', maxRetries: 0 },
        { stepNumber: 2, name: 'Configure', status: 'NOT_STARTED', dependencies: [1] },
      ],
    },
  });
  expect(wf.status).toBe(201);
  const { id, steps } = wf.body as { id: string; steps: Array<{ id: string }> };
  await h.call('POST', `${BASE}/workflows/${id}/start`, { token: op });
  await h.call('POST', `${BASE}/workflows/${id}/steps/${steps[0]!.id}/execute`, { token: op });
  const failed = await h.call('POST', `${BASE}/workflows/${id}/steps/${steps[0]!.id}/complete`, { token: op, body: { status: 'FAILED', errorMessage: 'endpoint down' } });
  expect(failed.body.status).toBe('FAILED');
  return { id, steps };
}

const auditOf = async (objectId: string) =>
  (await h.database.pool.query(`SELECT action, subject, reason, before, after FROM audit_log WHERE object_id = $1 AND action = 'actor.retry' ORDER BY id`, [objectId])).rows;

describe('POST /api/v1/actors/{type}/{id}/retry', () => {
  it("retries a workflow's FAILED step (by number or id): READY again, the workflow running, audited with the step", async () => {
    const { id, steps } = await failedWorkflow();
    const r = await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { step: 1, reason } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'workflow', id, status: 'IN_PROGRESS', step: { id: steps[0]!.id, name: 'Validate' }, event: 'workflow.step.retry' });
    const wf = await h.call('GET', `${BASE}/workflows/${id}`, { token: op });
    expect(wf.body.steps[0]).toMatchObject({ status: 'READY', retryCount: 1 });
    expect(await auditOf(id)).toEqual([
      {
        action: 'actor.retry',
        subject: 'operator-user',
        reason,
        before: { version: r.body.version - 1, status: 'FAILED', step: { id: steps[0]!.id, name: 'Validate' } },
        after: { version: r.body.version, status: 'IN_PROGRESS', event: 'workflow.step.retry' },
      },
    ]);
    // the step is READY now, not FAILED: a second retry is a conflict naming what failed (nothing)
    const again = await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { step: steps[0]!.id, reason } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'EVENT_REJECTED', currentStatus: 'READY', failedSteps: [] });
  });

  it('answers bad requests with problems: no step, an unknown step, a type without retries, no reason, not an operator', async () => {
    const { id } = await failedWorkflow();
    const noStep = await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { reason } });
    expect(noStep.status).toBe(400);
    expect(noStep.body.issues).toEqual([expect.objectContaining({ path: ['step'] })]);
    expect((await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { step: 9, reason } })).status).toBe(404);
    expect((await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { step: 2, reason } })).body).toMatchObject({ status: 409, currentStatus: 'NOT_STARTED', failedSteps: [1] });
    expect((await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: op, body: { step: 1 } })).status).toBe(400);
    expect((await h.call('POST', '/api/v1/actors/workflow/nope/retry', { token: op, body: { step: 1, reason } })).status).toBe(404);
    const vendor = h.token('vendor', 'vendor-1');
    expect((await h.call('POST', `/api/v1/actors/workflow/${id}/retry`, { token: vendor, body: { step: 1, reason } })).status).toBe(404);

    const rel = await h.call('POST', `${BASE}/relationships`, { token: op, body: { vendorId: 'v-1', partnerId: 'p-1', relationshipType: 'REFERRAL' } });
    const noRetry = await h.call('POST', `/api/v1/actors/relationship/${rel.body.id}/retry`, { token: op, body: { reason } });
    expect(noRetry.status).toBe(400);
    expect(noRetry.headers.get('content-type')).toContain('application/problem+json');
    expect(noRetry.body.detail).toContain("'relationship' have no step to retry");
    expect(await auditOf(id)).toEqual([]);
  });
});
