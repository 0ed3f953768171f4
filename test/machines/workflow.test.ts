import { describe, expect, it } from 'vitest';
import type { EventObject } from 'xstate';
import { statusOf, workflowMachine, type StepInit, type WorkflowContext } from '../../machines/workflow/index.js';
import { ConditionSyntaxError, evaluateCondition, parseCondition } from '../../machines/workflow/condition.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';
import { step, type TimerRow } from '../../runtime/step.js';

/** The machine as the runtime drives it: one transition at a time, snapshot through JSON. */
function driver(id: string) {
  let snapshot: PersistedSnapshot | null = null;
  let timers: TimerRow[] = [];
  let now = Date.parse('2026-03-01T00:00:00Z');
  const effects: EventObject[] = [];
  const send = (event: (EventObject & Record<string, unknown>) | { timer: string }) => {
    const out = step({
      machine: workflowMachine,
      snapshot,
      input: { id, tenant: null },
      timers,
      deliver: 'timer' in event ? { kind: 'timer', key: timers.find((t) => t.event.type === event.timer)!.key } : { kind: 'event', event },
      now,
    });
    if ('rejected' in out) throw new Error(`rejected ${JSON.stringify(out.accepts)}`);
    snapshot = JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot; // as jsonb keeps it
    timers = out.timers;
    effects.push(...out.effects);
    return snapshot;
  };
  return {
    send,
    at: () => new Date(now).toISOString(),
    advance: (ms: number) => (now += ms),
    get timers() {
      return timers;
    },
    effects,
    ctx: () => snapshot!.context as unknown as WorkflowContext,
    status: () => statusOf(snapshot!.value),
  };
}

const steps = (defs: Array<Partial<StepInit> & { stepNumber: number }>): StepInit[] =>
  defs.map((d) => ({ id: `s${d.stepNumber}`, name: `step ${d.stepNumber}`, description: null, estimatedDuration: null, maxRetries: null, dependencies: [], configuration: null, ...d }));

describe('workflow machine (pure, snapshot round-tripped through JSON)', () => {
  it('emits the connector call and a durable timeout, retries after the backoff timer, and completes from the reply', () => {
    const d = driver('w1');
    const action = { type: 'connector', connector: 'ops', operation: 'provision' };
    d.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1, maxRetries: 1, configuration: { action, timeoutMs: 1000, retryBackoffMs: 500 } }]), at: d.at(), by: 't' });
    d.send({ type: 'workflow.start', at: d.at(), by: 't' });
    expect(d.status()).toBe('IN_PROGRESS');
    expect(d.effects.find((e) => e.type === 'concord.call')).toMatchObject({ connector: 'ops', operation: 'provision', replyTo: 'wfstep.s1.1' });
    expect(d.timers.map((t) => [t.event.type, t.dueAt - Date.parse(d.at())])).toEqual([['workflow.step.timeout', 1000]]);

    d.advance(1000);
    d.send({ timer: 'workflow.step.timeout' });
    expect(d.ctx().steps[0]).toMatchObject({ status: 'FAILED', retryCount: 1, errorMessage: 'no reply within 1000 ms (attempt 1)' });
    expect(d.timers.map((t) => t.event.type)).toEqual(['workflow.step.retryDue']);
    // the first attempt's late answer is ignored
    d.send({ type: 'wfstep.s1.1.done', output: { late: true } });
    expect(d.ctx().steps[0]!.status).toBe('FAILED');

    d.advance(500);
    d.send({ timer: 'workflow.step.retryDue' });
    expect(d.ctx().steps[0]).toMatchObject({ status: 'IN_PROGRESS', attempt: 2 });
    d.send({ type: 'wfstep.s1.2.done', output: { ok: 1 }, at: d.at() });
    expect(d.status()).toBe('COMPLETED');
    expect(d.timers).toEqual([]); // the second attempt's timeout was cancelled
    expect(d.ctx()).toMatchObject({ currentStep: null, actualDuration: 0.03, outcome: 'COMPLETED' });
  });

  it('gives a step up at once when its connector says the failure is terminal (retryable: false), retries a retryable one', () => {
    const action = { type: 'connector', connector: 'ops', operation: 'provision' };
    const terminal = driver('w-terminal');
    terminal.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1, maxRetries: 3, configuration: { action, timeoutMs: 1000, retryBackoffMs: 500 } }]), at: terminal.at(), by: 't' });
    terminal.send({ type: 'workflow.start', at: terminal.at(), by: 't' });
    terminal.send({ type: 'wfstep.s1.1.failed', error: { code: 'NOT_FOUND', message: 'no such store', retryable: false }, at: terminal.at() });
    expect(terminal.ctx().steps[0]).toMatchObject({ status: 'FAILED', retryCount: 0 });
    expect(terminal.status()).toBe('FAILED');
    expect(terminal.timers).toEqual([]);

    const retryable = driver('w-retryable');
    retryable.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1, maxRetries: 3, configuration: { action, timeoutMs: 1000, retryBackoffMs: 500 } }]), at: retryable.at(), by: 't' });
    retryable.send({ type: 'workflow.start', at: retryable.at(), by: 't' });
    retryable.send({ type: 'wfstep.s1.1.failed', error: { code: 'UNAVAILABLE', message: '503', retryable: true }, at: retryable.at() });
    expect(retryable.ctx().steps[0]).toMatchObject({ status: 'FAILED', retryCount: 1 });
    expect(retryable.status()).toBe('IN_PROGRESS');
    expect(retryable.timers.map((t) => t.event.type)).toEqual(['workflow.step.retryDue']);
  });

  it('tells dependents once it finishes, and at once when asked after finishing', () => {
    const d = driver('dep');
    d.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1 }]), at: d.at(), by: 't' });
    d.send({ type: 'workflow.start', at: d.at(), by: 't' });
    d.send({ type: 'workflow.watch', dependent: 'a' });
    d.send({ type: 'workflow.step.execute', stepId: 's1', at: d.at(), by: 't' });
    d.send({ type: 'workflow.step.complete', stepId: 's1', at: d.at(), by: 't' });
    d.send({ type: 'workflow.watch', dependent: 'b' });
    const told = d.effects.filter((e) => e.type === 'concord.send') as unknown as Array<{ to: { id: string }; event: { type: string } }>;
    expect(told.map((e) => [e.to.id, e.event.type])).toEqual([
      ['a', 'workflow.dependencyCompleted'],
      ['b', 'workflow.dependencyCompleted'],
    ]);
  });
});

describe('workflow events root', () => {
  it('publishes every event under the root its create named; a snapshot without one uses concord.events', () => {
    const d = driver('wr');
    d.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1 }]), events: 'acme.events', at: d.at(), by: 't' });
    d.send({ type: 'workflow.start', at: d.at(), by: 't' });
    d.send({ type: 'workflow.step.execute', stepId: 's1', at: d.at(), by: 't' });
    d.send({ type: 'workflow.step.complete', stepId: 's1', at: d.at(), by: 't' });
    const subjects = (d.effects as unknown as Array<{ type: string; subject?: string }>).filter((e) => e.type === 'concord.publish').map((e) => e.subject);
    expect(subjects).toEqual([
      'acme.events.workflow.created',
      'acme.events.workflow.started',
      'acme.events.workflow.step.ready',
      'acme.events.workflow.step.started',
      'acme.events.workflow.step.completed',
      'acme.events.workflow.completed',
    ]);

    const old = driver('wo');
    old.send({ type: 'workflow.create', name: 'w', workflowType: 'DATA_SYNC', steps: steps([{ stepNumber: 1 }]), at: old.at(), by: 't' });
    expect(old.ctx()).not.toHaveProperty('events');
    old.send({ type: 'workflow.start', at: old.at(), by: 't' });
    expect((old.effects as unknown as Array<{ subject?: string }>).map((e) => e.subject)).toEqual(['concord.events.workflow.created', 'concord.events.workflow.started', 'concord.events.workflow.step.ready']);
  });
});

describe('step conditions', () => {
  const scope = { workflow: { workflowType: 'DATA_SYNC', metadata: { tier: 2 } }, steps: { '1': { output: { approved: true, n: 3 } } } };
  it('evaluates paths, literals, comparisons and boolean logic strictly', () => {
    expect(evaluateCondition("steps.1.output.approved == true && workflow.workflowType != 'API_ACCESS_GRANT'", scope)).toBe(true);
    expect(evaluateCondition('steps.1.output.n >= 3 && !(workflow.metadata.tier < 2)', scope)).toBe(true);
    expect(evaluateCondition('steps.2.output.x == null', scope)).toBe(true);
    expect(evaluateCondition("steps.1.output.n == '3'", scope)).toBe(false);
    expect(evaluateCondition("steps.1.output.n > 'a'", scope)).toBe(false);
    expect(evaluateCondition('false || steps.1.output.approved', scope)).toBe(true);
  });
  it('rejects malformed expressions', () => {
    for (const bad of ['', 'a ==', '(a', 'a b', 'a = 1', '1 +']) expect(() => parseCondition(bad), bad).toThrow(ConditionSyntaxError);
  });
});
