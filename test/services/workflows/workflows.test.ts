import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectorCode, ConnectorError } from '../../../connectors/kit/errors.js';
import { workflowType } from '../../../machines/workflow/index.js';
import type { BusMessage } from '../../../runtime/bus.js';
import type { ConnectorInvoker } from '../../../runtime/in-process.js';
import { lookupCorrelation } from '../../../runtime/store.js';
import { waitFor } from '../../helpers/db.js';
import { api, type Api } from '../events/support.js';

let t: Api;
let op: string;
const published: BusMessage[] = [];

/** Connector `ops`: each test installs the behaviour of the operation it uses. */
const behaviours = new Map<string, (input: { stepNumber: number; attempt: number; input: unknown }) => Promise<unknown>>();
const ops: ConnectorInvoker = async (operation, input) => {
  const b = behaviours.get(operation);
  if (!b) throw new ConnectorError(ConnectorCode.Validation, `no behaviour for ${operation}`);
  return b(input as { stepNumber: number; attempt: number; input: unknown });
};

beforeAll(async () => {
  t = await api({ types: [workflowType], connectors: new Map([['ops', ops]]), env: { TIMER_POLL_MS: '25' } });
  op = t.token('operator');
  t.runtime.bus.subscribe('concord.events.workflow.>', (m) => {
    published.push(m);
  });
});
afterAll(async () => {
  await t?.close();
});

const create = async (body: Record<string, unknown>, token = op) => {
  const r = await t.call('POST', '/workflows', { token, body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
};
const get = async (id: string, token = op) => (await t.call('GET', `/workflows/${id}`, { token })).body;
const stepCmd = async (wf: { id: string; steps: Array<{ id: string; stepNumber: number }> }, n: number, cmd: string, body?: unknown) => {
  const step = wf.steps.find((s) => s.stepNumber === n)!;
  return t.call('POST', `/workflows/${wf.id}/steps/${step.id}/${cmd}`, { token: op, body });
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
const stepOf = (wf: { steps: Array<{ stepNumber: number }> }, n: number): any => wf.steps.find((s) => s.stepNumber === n)!;
const until = (what: string, id: string, check: (wf: any) => boolean, ms = 20_000) => // eslint-disable-line @typescript-eslint/no-explicit-any
  waitFor(what, async () => {
    const wf = await get(id);
    return check(wf) ? wf : null;
  }, ms);

describe('integration workflows', () => {
  it("accepts the spec's example verbatim and runs manual steps: execute, complete, in dependency order", async () => {
    const wf = await create({
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
    });
    expect(wf).toMatchObject({ status: 'NOT_STARTED', estimatedDuration: 15, currentStep: null, startedAt: null });
    expect(wf.steps.map((s: { status: string }) => s.status)).toEqual(['NOT_STARTED', 'NOT_STARTED']);

    const started = (await t.call('POST', `/workflows/${wf.id}/start`, { token: op })).body;
    expect(started).toMatchObject({ status: 'IN_PROGRESS', currentStep: 1 });
    expect(started.startedAt).toBeTruthy();
    expect(stepOf(started, 1).status).toBe('READY');
    expect(stepOf(started, 2).status).toBe('NOT_STARTED');

    // step 2 cannot be executed before step 1 completes: 409 naming its status
    const early = await stepCmd(wf, 2, 'execute');
    expect(early.status).toBe(409);
    expect(early.body.detail).toContain('NOT_STARTED');

    expect((await stepCmd(wf, 1, 'execute')).body.steps[0].status).toBe('IN_PROGRESS');
    const after1 = (await stepCmd(wf, 1, 'complete', { output: { ok: true } })).body;
    expect(stepOf(after1, 1)).toMatchObject({ status: 'COMPLETED', output: { ok: true } });
    expect(stepOf(after1, 2).status).toBe('READY');
    await stepCmd(wf, 2, 'execute');
    const done = (await stepCmd(wf, 2, 'complete')).body;
    expect(done).toMatchObject({ status: 'COMPLETED', currentStep: null });
    expect(done.completedAt).toBeTruthy();
    expect(typeof done.actualDuration).toBe('number');
    expect(stepOf(done, 2).actualDuration).not.toBeNull();

    const kinds = await waitFor('the lifecycle events', () => {
      const k = published.filter((m) => (m.data as { workflowId: string }).workflowId === wf.id).map((m) => m.subject.replace('concord.events.workflow.', ''));
      return k.includes('completed') ? k : null;
    });
    expect(kinds).toEqual(['created', 'started', 'step.ready', 'step.started', 'step.completed', 'step.ready', 'step.started', 'step.completed', 'completed']);
  });

  it("gives a workflow without steps its type's template; refuses step cycles and missing step numbers with a 400 naming them", async () => {
    const wf = await create({ name: 'Setup', workflowType: 'INTEGRATION_SETUP' });
    expect(wf.steps.map((s: { name: string }) => s.name)).toEqual(['Validate Relationship', 'Configure API Access', 'Setup Webhooks', 'Test Integration', 'Activate Integration']);
    expect(wf.estimatedDuration).toBe(60);
    const sync = await create({ name: 'Sync', workflowType: 'DATA_SYNC' });
    expect(sync.steps).toHaveLength(5);

    const cycle = await t.call('POST', '/workflows', {
      token: op,
      body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', dependencies: [3] }, { stepNumber: 2, name: 'b', dependencies: [1] }, { stepNumber: 3, name: 'c', dependencies: [2] }] },
    });
    expect(cycle.status).toBe(400);
    expect(cycle.body.detail).toContain('cycle: 1 -> 3 -> 2 -> 1');
    const missing = await t.call('POST', '/workflows', { token: op, body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', dependencies: [7] }] } });
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toContain('depends on step 7, which does not exist');
    const badCondition = await t.call('POST', '/workflows', { token: op, body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', configuration: { condition: 'steps.1 ==' } }] } });
    expect(badCondition.status).toBe(400);
    // a condition reads the workflow and the steps upstream of its own, nothing that may not have run yet
    const racy = await t.call('POST', '/workflows', {
      token: op,
      body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a' }, { stepNumber: 2, name: 'b' }, { stepNumber: 3, name: 'c', dependencies: [1], configuration: { condition: 'steps.2.output.ok == true' } }] },
    });
    expect(racy.status).toBe(400);
    expect(racy.body.detail).toContain("condition of step 3 reads 'steps.2.output.ok', but step 2 is not among its dependencies");
    expect(JSON.stringify(racy.body)).toContain('"configuration","condition"');
    const stray = await t.call('POST', '/workflows', { token: op, body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', configuration: { condition: 'output.ok || steps' } }] } });
    expect(stray.status).toBe(400);
    expect(stray.body.detail).toContain("condition reads 'output.ok': a path starts with workflow or steps.<step number>");
    expect(stray.body.detail).toContain("condition reads 'steps': name a step");
    // upstream through another step is fine
    const transitive = await t.call('POST', '/workflows', {
      token: op,
      body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a' }, { stepNumber: 2, name: 'b', dependencies: [1] }, { stepNumber: 3, name: 'c', dependencies: [2], configuration: { condition: "steps.1.status == 'COMPLETED' && workflow.metadata.tier >= 1" } }] },
    });
    expect(transitive.status).toBe(201);
    const endless = await t.call('POST', '/workflows', { token: op, body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', configuration: { timeoutMs: 1e16 } }] } });
    expect(endless.status).toBe(400);
    expect(JSON.stringify(endless.body)).toContain('timeoutMs');
    const emptyToken = await t.call('POST', '/workflows', {
      token: op,
      body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', configuration: { action: { type: 'publish', subject: 'svc..x' } } }] },
    });
    expect(emptyToken.status).toBe(400);
    const impersonating = await t.call('POST', '/workflows', {
      token: op,
      body: { name: 'x', workflowType: 'DATA_SYNC', steps: [{ stepNumber: 1, name: 'a', configuration: { action: { type: 'publish', subject: 'concord.actor.relationship.r1', data: { type: 'relationship.terminate' } } } }] },
    });
    expect(impersonating.status).toBe(400);
    expect(impersonating.body.detail).toContain("a step may not publish under 'concord.'");
  });

  it('runs independent automated steps in parallel (both requests in flight at once)', async () => {
    // two services; each answers only once both requests have arrived, so sequential steps would time out
    const waiting: Array<() => Promise<void>> = [];
    let maxInFlight = 0;
    const offs = ['svc.prov.source', 'svc.prov.target'].map((subject) =>
      t.runtime.bus.subscribe(subject, (m) => {
        const { correlationId } = m.data as { correlationId: string };
        waiting.push(async () => {
          const ref = await lookupCorrelation(t.database.pool, correlationId);
          await t.runtime.host.send(ref!, { type: 'workflow.step.reply', correlationId, status: 'succeeded', output: { subject } }, { messageId: `reply:${correlationId}` });
        });
        maxInFlight = Math.max(maxInFlight, waiting.length);
        if (waiting.length === 2) void Promise.all(waiting.map((reply) => reply()));
      }),
    );
    const wf = await create({
      name: 'Parallel',
      workflowType: 'DATA_SYNC',
      steps: [
        { stepNumber: 1, name: 'Source', maxRetries: 0, configuration: { action: { type: 'publish', subject: 'svc.prov.source' }, timeoutMs: 5_000 } },
        { stepNumber: 2, name: 'Target', maxRetries: 0, configuration: { action: { type: 'publish', subject: 'svc.prov.target' }, timeoutMs: 5_000 } },
        { stepNumber: 3, name: 'Backfill', dependencies: [1, 2] },
      ],
    });
    const started = (await t.call('POST', `/workflows/${wf.id}/start`, { token: op })).body;
    expect([stepOf(started, 1).status, stepOf(started, 2).status]).toEqual(['IN_PROGRESS', 'IN_PROGRESS']);
    const ready = await until('step 3 ready', wf.id, (w) => stepOf(w, 3).status === 'READY');
    offs.forEach((off) => off());
    expect(maxInFlight).toBe(2);
    expect(stepOf(ready, 1)).toMatchObject({ status: 'COMPLETED', output: { subject: 'svc.prov.source' } });
    expect(stepOf(ready, 2)).toMatchObject({ status: 'COMPLETED', output: { subject: 'svc.prov.target' } });
    expect(ready.status).toBe('IN_PROGRESS');
  });

  it('retries a failed automated step after its backoff (a durable timer), then completes', async () => {
    let calls = 0;
    behaviours.set('flaky', async () => {
      calls++;
      if (calls === 1) throw new ConnectorError(ConnectorCode.Unavailable, 'upstream 503', { status: 503 });
      return { attempt: calls };
    });
    const wf = await create({
      name: 'Retry',
      workflowType: 'API_ACCESS_GRANT',
      steps: [{ stepNumber: 1, name: 'Issue Credentials', maxRetries: 2, configuration: { action: { type: 'connector', connector: 'ops', operation: 'flaky' }, retryBackoffMs: 300 } }],
    });
    await t.call('POST', `/workflows/${wf.id}/start`, { token: op });
    const failed = await until('the first failure', wf.id, (w) => stepOf(w, 1).status === 'FAILED');
    expect(stepOf(failed, 1)).toMatchObject({ retryCount: 1, errorMessage: 'upstream 503' });
    expect(stepOf(failed, 1).retryAt).toBeTruthy();
    expect(failed.status).toBe('IN_PROGRESS'); // retries left: the workflow is not failed
    const view = await t.runtime.host.get({ type: 'workflow', id: wf.id });
    expect(view.timers.map((x) => x.event)).toEqual(['workflow.step.retryDue']);
    const done = await until('completion after the retry', wf.id, (w) => w.status === 'COMPLETED');
    expect(stepOf(done, 1)).toMatchObject({ status: 'COMPLETED', retryCount: 1, output: { attempt: 2 }, errorMessage: null });
    expect(calls).toBe(2);
  });

  it('fails the workflow when a step has no retries left; retry re-runs it', async () => {
    const wf = await create({ name: 'Manual fail', workflowType: 'TESTING_VALIDATION', steps: [{ stepNumber: 1, name: 'Review' }, { stepNumber: 2, name: 'Sign off', dependencies: [1] }] });
    await t.call('POST', `/workflows/${wf.id}/start`, { token: op });
    await stepCmd(wf, 1, 'execute');
    const failed = (await stepCmd(wf, 1, 'complete', { status: 'FAILED', errorMessage: 'contract tests red' })).body;
    expect(failed).toMatchObject({ status: 'FAILED', errorMessage: 'step 1 (Review) failed: contract tests red' });
    expect(stepOf(failed, 1)).toMatchObject({ status: 'FAILED', retryCount: 0, errorMessage: 'contract tests red' });
    const retried = (await stepCmd(wf, 1, 'retry')).body;
    expect(retried).toMatchObject({ status: 'IN_PROGRESS', errorMessage: null });
    expect(stepOf(retried, 1)).toMatchObject({ status: 'READY', retryCount: 1 });
    await stepCmd(wf, 1, 'execute');
    await stepCmd(wf, 1, 'complete');
    await stepCmd(wf, 2, 'execute');
    expect((await stepCmd(wf, 2, 'complete')).body.status).toBe('COMPLETED');
  });

  it('skips a step whose condition is false; later steps still run', async () => {
    const wf = await create({
      name: 'Conditional',
      workflowType: 'RESOURCE_SHARING',
      metadata: { tier: 1 },
      steps: [
        { stepNumber: 1, name: 'Review' },
        { stepNumber: 2, name: 'Escalate', dependencies: [1], configuration: { condition: "steps.1.output.approved == false || workflow.metadata.tier >= 3" } },
        { stepNumber: 3, name: 'Grant', dependencies: [2] },
      ],
    });
    await t.call('POST', `/workflows/${wf.id}/start`, { token: op });
    await stepCmd(wf, 1, 'execute');
    const after = (await stepCmd(wf, 1, 'complete', { output: { approved: true } })).body;
    expect(stepOf(after, 2).status).toBe('SKIPPED');
    expect(stepOf(after, 3).status).toBe('READY');
  });

  it('publishes an automated step to its subject and completes it from the correlated reply; times out an unanswered one', async () => {
    const seen: BusMessage[] = [];
    const off = t.runtime.bus.subscribe('svc.keys.issue', async (m) => {
      seen.push(m);
      const { correlationId } = m.data as { correlationId: string };
      const ref = await lookupCorrelation(t.database.pool, correlationId);
      await t.runtime.host.send(ref!, { type: 'workflow.step.reply', correlationId, status: 'succeeded', output: { keyId: 'k-1' } }, { messageId: `reply:${correlationId}` });
    });
    const wf = await create({
      name: 'Publish',
      workflowType: 'API_ACCESS_GRANT',
      steps: [
        { stepNumber: 1, name: 'Issue', configuration: { action: { type: 'publish', subject: 'svc.keys.issue', data: { scopes: ['read'] } } } },
        { stepNumber: 2, name: 'Never answered', dependencies: [1], maxRetries: 0, configuration: { action: { type: 'publish', subject: 'svc.nobody.listens' }, timeoutMs: 300 } },
      ],
    });
    await t.call('POST', `/workflows/${wf.id}/start`, { token: op });
    const failed = await until('the timeout of step 2', wf.id, (w) => w.status === 'FAILED');
    off();
    expect(stepOf(failed, 1)).toMatchObject({ status: 'COMPLETED', output: { keyId: 'k-1' } });
    expect(seen[0]!.data).toMatchObject({ workflowId: wf.id, stepNumber: 1, attempt: 1, data: { scopes: ['read'] } });
    expect(seen[0]!.headers['Concord-Correlation-Id']).toBe((seen[0]!.data as { correlationId: string }).correlationId);
    expect(stepOf(failed, 2).errorMessage).toBe('no reply within 300 ms (attempt 1)');
  });

  it('blocks a workflow on another until it completes; fails it when the other is cancelled', async () => {
    const a = await create({ name: 'A', workflowType: 'INTEGRATION_SETUP', steps: [{ stepNumber: 1, name: 'only' }] });
    const b = await create({ name: 'B', workflowType: 'PRODUCTION_DEPLOYMENT', dependencies: [a.id], steps: [{ stepNumber: 1, name: 'deploy' }] });
    const blocked = (await t.call('POST', `/workflows/${b.id}/start`, { token: op })).body;
    expect(blocked).toMatchObject({ status: 'BLOCKED', dependencies: [a.id] });
    expect(stepOf(blocked, 1).status).toBe('NOT_STARTED');
    await t.call('POST', `/workflows/${a.id}/start`, { token: op });
    await stepCmd(a, 1, 'execute');
    expect((await stepCmd(a, 1, 'complete')).body.status).toBe('COMPLETED');
    const running = await until('B unblocked', b.id, (w) => w.status === 'IN_PROGRESS');
    expect(stepOf(running, 1).status).toBe('READY');

    // a dependency that is already complete unblocks at once
    const c = await create({ name: 'C', workflowType: 'PRODUCTION_DEPLOYMENT', dependencies: [a.id], steps: [{ stepNumber: 1, name: 'x' }] });
    await t.call('POST', `/workflows/${c.id}/start`, { token: op });
    await until('C unblocked', c.id, (w) => w.status === 'IN_PROGRESS');

    const d = await create({ name: 'D', workflowType: 'INTEGRATION_SETUP', steps: [{ stepNumber: 1, name: 'only' }] });
    const e = await create({ name: 'E', workflowType: 'DATA_SYNC', dependencies: [d.id], steps: [{ stepNumber: 1, name: 'x' }] });
    await t.call('POST', `/workflows/${e.id}/start`, { token: op });
    const cancelled = (await t.call('POST', `/workflows/${d.id}/cancel`, { token: op, body: { reason: 'vendor withdrew' } })).body;
    expect(cancelled).toMatchObject({ status: 'CANCELLED', errorMessage: 'cancelled: vendor withdrew' });
    expect(stepOf(cancelled, 1).status).toBe('CANCELLED');
    const failed = await until('E failed', e.id, (w) => w.status === 'FAILED');
    expect(failed.errorMessage).toBe(`dependency workflow ${d.id} is CANCELLED`);

    // a dependency that does not exist, or the workflow itself, is refused
    const missing = await t.call('POST', '/workflows', { token: op, body: { name: 'F', workflowType: 'DATA_SYNC', dependencies: ['nope'] } });
    expect(missing.status).toBe(400);
    expect((await t.call('POST', `/workflows/${d.id}/start`, { token: op })).status).toBe(409);
  });

  it('shows a vendor or partner only the workflows it is party to (404 otherwise), with durations and retry counts', async () => {
    const wf = await create({ name: 'Mine', workflowType: 'INTEGRATION_SETUP', vendorId: 'v-1', partnerId: 'p-1', steps: [{ stepNumber: 1, name: 'only', estimatedDuration: 3 }] });
    const vendor = t.token('vendor', 'v-1');
    const partner = t.token('partner', 'p-1');
    const stranger = t.token('vendor', 'v-2');
    expect((await t.call('GET', `/workflows/${wf.id}`, { token: vendor })).status).toBe(200);
    expect((await t.call('GET', `/workflows/${wf.id}`, { token: partner })).body.steps[0]).toMatchObject({ estimatedDuration: 3, retryCount: 0, errorMessage: null });
    expect((await t.call('GET', `/workflows/${wf.id}`, { token: stranger })).status).toBe(404);
    expect((await t.call('POST', `/workflows/${wf.id}/start`, { token: stranger })).status).toBe(404);
    const list = (await t.call('GET', '/workflows', { token: vendor })).body;
    expect(list.data.map((w: { id: string }) => w.id)).toEqual([wf.id]);
    expect((await t.call('GET', '/workflows', { token: stranger })).body.data).toEqual([]);
    const other = await t.call('POST', '/workflows', { token: stranger, body: { name: 'x', workflowType: 'DATA_SYNC', vendorId: 'v-1' } });
    expect(other.status).toBe(403);
    // automated steps act in the platform's name: a party may not give a step an action
    const forged = await t.call('POST', '/workflows', {
      token: vendor,
      body: { name: 'x', workflowType: 'DATA_SYNC', vendorId: 'v-1', steps: [{ stepNumber: 1, name: 'a', configuration: { action: { type: 'publish', subject: 'svc.events.PaymentProcessedEvent', data: { commandId: 'someone-elses' } } } }] },
    });
    expect(forged.status).toBe(403);
    expect(forged.body.detail).toContain('may not give steps an action');
    // the party drives its manual steps
    await t.call('POST', `/workflows/${wf.id}/start`, { token: partner });
    const step = wf.steps[0].id;
    expect((await t.call('POST', `/workflows/${wf.id}/steps/${step}/execute`, { token: partner })).status).toBe(200);
    expect((await t.call('POST', `/workflows/${wf.id}/steps/${step}/complete`, { token: vendor })).body.status).toBe('COMPLETED');
  });

  it('commits an audit record with every change, the version before and after included', async () => {
    const wf = await create({ name: 'Audited', workflowType: 'INTEGRATION_SETUP', vendorId: 'v-aud', steps: [{ stepNumber: 1, name: 'only' }] });
    expect((await t.call('POST', `/workflows/${wf.id}/start`, { token: op, headers: { 'x-request-id': 'wf-audit-1' } })).status).toBe(200);
    const { rows } = await t.runtime.database.pool.query(
      `SELECT action, request_id, before->>'version' AS before_v, after->>'version' AS after_v FROM audit_log WHERE object_type = 'workflow' AND object_id = $1 ORDER BY id`,
      [wf.id],
    );
    expect(rows).toEqual([
      { action: 'workflow.create', request_id: expect.any(String), before_v: null, after_v: '1' },
      { action: 'workflow.start', request_id: 'wf-audit-1', before_v: '1', after_v: '2' },
    ]);
  });

  it('gives each workflow and step command its own body: the documented bodies pass, fields of another command or unknown ones are a 400 naming them', async () => {
    const wf = await create({ name: 'Bodies', workflowType: 'TESTING_VALIDATION', steps: [{ stepNumber: 1, name: 'Review' }, { stepNumber: 2, name: 'Sign off', dependencies: [1] }] });
    const refused = async (path: string, body: Record<string, unknown>, named: string) => {
      const r = await t.call('POST', path, { token: op, body });
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(r.body).toMatchObject({ code: 'VALIDATION_FAILED', target: 'json' });
      expect(JSON.stringify(r.body.issues), JSON.stringify(body)).toContain(named);
    };
    const step = (n: number, cmd: string) => `/workflows/${wf.id}/steps/${stepOf(wf, n).id}/${cmd}`;

    // start takes no fields (cancel's reason is cancel's)
    await refused(`/workflows/${wf.id}/start`, { reason: 'go' }, 'reason');
    expect((await t.call('POST', `/workflows/${wf.id}/start`, { token: op, body: {} })).body.status).toBe('IN_PROGRESS');
    // execute and retry take no fields: complete's output, status and errorMessage are refused there, as are unknown ones
    for (const extra of [{ output: { ok: true } }, { status: 'COMPLETED' }, { errorMessage: 'x' }, { colour: 'red' }]) await refused(step(1, 'execute'), extra, Object.keys(extra)[0]!);
    expect(stepOf((await stepCmd(wf, 1, 'execute', {})).body, 1).status).toBe('IN_PROGRESS');
    // complete: unknown fields are refused; the documented bodies pass ({ "output" }, { "status": "FAILED", "errorMessage" }, none)
    await refused(step(1, 'complete'), { output: {}, reason: 'x' }, 'reason');
    const failed = (await stepCmd(wf, 1, 'complete', { status: 'FAILED', errorMessage: 'contract tests red' })).body;
    expect(stepOf(failed, 1)).toMatchObject({ status: 'FAILED', errorMessage: 'contract tests red' });
    for (const extra of [{ output: { ok: true } }, { status: 'COMPLETED' }, { errorMessage: 'x' }, { reason: 'again' }]) await refused(step(1, 'retry'), extra, Object.keys(extra)[0]!);
    expect(stepOf((await stepCmd(wf, 1, 'retry', {})).body, 1).status).toBe('READY');
    await stepCmd(wf, 1, 'execute');
    expect(stepOf((await stepCmd(wf, 1, 'complete', { output: { ok: true } })).body, 1)).toMatchObject({ status: 'COMPLETED', output: { ok: true } });
    await stepCmd(wf, 2, 'execute');
    expect(stepOf((await stepCmd(wf, 2, 'complete', { status: 'COMPLETED' })).body, 2).status).toBe('COMPLETED');

    // cancel keeps its reason, and refuses anything else
    const other = await create({ name: 'Cancel body', workflowType: 'TESTING_VALIDATION', steps: [{ stepNumber: 1, name: 'Review' }] });
    await refused(`/workflows/${other.id}/cancel`, { reason: 'no longer needed', output: {} }, 'output');
    expect((await t.call('POST', `/workflows/${other.id}/cancel`, { token: op, body: { reason: 'no longer needed' } })).body.status).toBe('CANCELLED');

    // each command's body is its own component in the OpenAPI document
    const doc = (await (await t.app.request('/openapi.json')).json()) as { paths: Record<string, { post: { requestBody: { content: Record<string, { schema: { $ref: string } }> } } }>; components: { schemas: Record<string, { additionalProperties?: boolean }> } };
    const ref = (p: string) => doc.paths[`/api/v1/vendor-partner-coordination${p}`]!.post.requestBody.content['application/json']!.schema.$ref.replace('#/components/schemas/', '');
    const names = ['/workflows/{id}/start', '/workflows/{id}/cancel', ...['execute', 'complete', 'retry'].map((c) => `/workflows/{workflowId}/steps/{stepId}/${c}`)].map(ref);
    expect(new Set(names).size).toBe(5);
    for (const n of names) expect(doc.components.schemas[n]!.additionalProperties, n).toBe(false);
  });

  it('is retry-safe with an Idempotency-Key and documented in /openapi.json', async () => {
    const body = { name: 'Idem', workflowType: 'TESTING_VALIDATION' };
    const first = await t.call('POST', '/workflows', { token: op, body, headers: { 'idempotency-key': 'wf-idem-1' } });
    const again = await t.call('POST', '/workflows', { token: op, body, headers: { 'idempotency-key': 'wf-idem-1' } });
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const doc = (await t.app.request('/openapi.json')).json() as Promise<{ paths: Record<string, unknown> }>;
    const paths = Object.keys((await doc).paths);
    for (const p of ['/workflows', '/workflows/{id}', '/workflows/{id}/start', '/workflows/{id}/cancel', '/workflows/{workflowId}/steps/{stepId}/execute', '/workflows/{workflowId}/steps/{stepId}/complete', '/workflows/{workflowId}/steps/{stepId}/retry']) {
      expect(paths).toContain(`/api/v1/vendor-partner-coordination${p}`);
    }
  });
});
