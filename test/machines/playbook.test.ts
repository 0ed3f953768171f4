import { describe, expect, it } from 'vitest';
import type { EventObject } from 'xstate';
import { INSTANT_BUDGET } from '../../machines/playbook/engine.js';
import { createExecutionMachine, executionMachine, type CompiledStep, type ExecutionContext, type InstantSteps } from '../../machines/playbook/index.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';
import { step, type TimerRow } from '../../runtime/step.js';
import { createInstantSteps } from '../../services/playbooks/instant.js';

/** The execution machine as the runtime drives it: one transition at a time, snapshot through JSON. */
function driver(machine = executionMachine) {
  let snapshot: PersistedSnapshot | null = null;
  let timers: TimerRow[] = [];
  const now = Date.parse('2026-03-01T00:00:00Z');
  const effects: EventObject[] = [];
  const send = (event: EventObject & Record<string, unknown>) => {
    const out = step({ machine, snapshot, input: { id: 'x1', tenant: 't' }, timers, deliver: { kind: 'event', event }, now });
    if ('rejected' in out) throw new Error(`rejected ${JSON.stringify(out.accepts)}`);
    snapshot = JSON.parse(JSON.stringify(out.snapshot)) as PersistedSnapshot;
    timers = out.timers;
    effects.push(...out.effects);
    return snapshot;
  };
  return { send, effects, get timers() { return timers; }, ctx: () => snapshot!.context as unknown as ExecutionContext, value: () => snapshot!.value };
}

const s = (id: string, n: number, deps: number[], extra: Partial<CompiledStep> = {}): CompiledStep => ({
  id, stepNumber: n, dependencies: deps, phase: 'main', type: 'evaluate', spec: 'true', if: null, forEach: null, timeoutMs: 1000,
  retry: { maxAttempts: 2, initialMs: 100, factor: 2, maxMs: 1000, on: null }, onError: 'retry', ...extra,
});
const create = (steps: CompiledStep[], parallelism = 4) => ({
  type: 'execution.create', tenant: 't', playbookId: 'p', playbookName: 'p', playbookVersion: 1, trigger: { kind: 'manual' }, inputs: {}, parallelism, steps, at: '2026-03-01T00:00:00.000Z', by: 'u',
});
const calls = (effects: EventObject[]) => effects.filter((e) => e.type === 'concord.call' && (e as unknown as { operation: string }).operation === 'step').map((e) => (e as unknown as { input: { stepId: string; attempt: number; idempotencyKey: string } }).input);

describe('the playbook-execution machine', () => {
  it('starts due steps up to the parallelism cap, each with a durable timeout, and the next only after an answer', () => {
    const d = driver();
    d.send(create([s('a', 1, []), s('b', 2, []), s('c', 3, []), s('d', 4, [1, 2, 3])], 2));
    expect(calls(d.effects).map((c) => c.stepId)).toEqual(['a', 'b']);
    expect(d.timers.map((t) => t.event.type)).toEqual(['execution.step.timeout', 'execution.step.timeout']);
    d.send({ type: 'pbstep.a.1.done', output: { ok: true, output: 1 }, at: '2026-03-01T00:00:01.000Z' });
    expect(calls(d.effects).map((c) => c.stepId)).toEqual(['a', 'b', 'c']);
    d.send({ type: 'pbstep.b.1.done', output: { ok: true, output: 2 } });
    d.send({ type: 'pbstep.c.1.done', output: { ok: true, output: 3 } });
    expect(calls(d.effects).map((c) => c.stepId)).toEqual(['a', 'b', 'c', 'd']);
    d.send({ type: 'pbstep.d.1.done', output: { ok: true, output: 4 } });
    expect(d.value()).toBe('succeeded');
    expect(d.timers).toEqual([]);
  });

  it('a failure with attempts left waits for its retry timer; the answer of a stale attempt is ignored', () => {
    const d = driver();
    d.send(create([s('a', 1, [])]));
    d.send({ type: 'pbstep.a.1.done', output: { ok: false, error: { code: 'X', message: 'x', retryable: true } } });
    expect(d.ctx().steps[0]).toMatchObject({ status: 'FAILED', retryCount: 1 });
    expect(d.timers.map((t) => t.event.type)).toEqual(['execution.step.retryDue']);
    d.send({ type: 'pbstep.a.1.done', output: { ok: true, output: 'late' } });
    expect(d.ctx().steps[0]!.status).toBe('FAILED');
    d.send({ type: 'execution.step.retryDue', stepId: 'a', attempt: 1, at: '2026-03-01T00:00:00.100Z' });
    const again = calls(d.effects);
    expect(again.map((c) => c.attempt)).toEqual([1, 2]);
    expect(new Set(again.map((c) => c.idempotencyKey)).size).toBe(1);
    d.send({ type: 'pbstep.a.2.done', output: { ok: false, error: { code: 'X', message: 'x', retryable: true } } });
    expect(d.value()).toBe('failed');
  });

  it('a held execution waits queued for its release; cancel of a queued one ends it', () => {
    const d = driver();
    d.send({ ...create([s('a', 1, [])]), hold: true });
    expect(d.value()).toBe('queued');
    expect(calls(d.effects)).toEqual([]);
    d.send({ type: 'execution.release', at: '2026-03-01T00:01:00.000Z', by: 'cron' });
    expect(d.value()).toBe('running');
    const e = driver();
    e.send({ ...create([s('a', 1, [])]), hold: true, notify: { type: 'playbook-schedule', id: 'p' } });
    e.send({ type: 'execution.cancel', at: '2026-03-01T00:01:00.000Z', by: 'u' });
    expect(e.value()).toBe('cancelled');
    expect(e.effects.some((x) => x.type === 'concord.send')).toBe(true);
  });

  describe('with instant steps (CEL inside the transition)', () => {
    const inline = createExecutionMachine(createInstantSteps());

    it('a long chain and its finally steps end in the create transition, with no call and no timer', () => {
      const d = driver(inline);
      const chain = Array.from({ length: 200 }, (_, i) => s(`s${i}`, i + 1, i ? [i] : [], { spec: i ? `steps.s${i - 1}.output + 1` : '0' }));
      const fin = Array.from({ length: 50 }, (_, i) => s(`f${i}`, 201 + i, [], { phase: 'finally', spec: 'steps.s199.output' }));
      d.send(create([...chain, ...fin], 1));
      expect(d.value()).toBe('succeeded');
      expect(d.ctx().steps.find((x) => x.id === 's199')!.output).toBe(199);
      expect(d.ctx().steps.filter((x) => x.phase === 'finally').every((x) => x.output === 199)).toBe(true);
      expect(d.effects).toEqual([]);
      expect(d.timers).toEqual([]);
    });

    it('keeps the parallelism cap: an instant step waits while a call holds the only slot', () => {
      const d = driver(inline);
      d.send(create([s('w', 1, [], { type: 'webhook', spec: {} }), s('e', 2, [])], 1));
      expect(calls(d.effects).map((c) => c.stepId)).toEqual(['w']);
      expect(d.ctx().steps[1]!.status).toBe('READY');
      d.send({ type: 'pbstep.w.1.done', output: { ok: true, output: 1 }, at: '2026-03-01T00:00:01.000Z' });
      expect(d.value()).toBe('succeeded');
      expect(d.ctx().steps[1]).toMatchObject({ status: 'COMPLETED', output: true, startedAt: '2026-03-01T00:00:01.000Z' });
    });

    it('a false if skips a step of any type without its call; a true one makes the call', () => {
      const d = driver(inline);
      d.send(create([s('no', 1, [], { type: 'webhook', spec: {}, if: 'false' }), s('yes', 2, [1], { type: 'webhook', spec: {}, if: 'steps.no.status == "skipped"' })]));
      expect(d.ctx().steps[0]).toMatchObject({ status: 'SKIPPED', skipReason: 'condition' });
      expect(calls(d.effects).map((c) => c.stepId)).toEqual(['yes']);
    });

    it('a CEL error is not retried: onError decides at once (abort stops the running call)', () => {
      const d = driver(inline);
      d.send(create([s('w', 1, [], { type: 'webhook', spec: {} }), s('bad', 2, [], { spec: 'inputs.nope', onError: 'abort' })], 2));
      expect(d.ctx().steps[1]).toMatchObject({ status: 'FAILED', errorCode: 'EXPRESSION_FAILED', attempt: 1, retryAt: null });
      expect(d.ctx().steps[0]!.status).toBe('CANCELLED');
      expect(d.effects.some((e) => (e as unknown as { operation?: string }).operation === 'abort')).toBe(true);
      expect(d.value()).toBe('failed');
    });

    it('a transition spends a bounded budget on instant work: past it, the next attempts are calls', () => {
      const d = driver(inline);
      // every expression converts the whole scope: 150,001 values and more
      const inputs = { big: Array.from({ length: 150_000 }, (_, i) => i) };
      const chain = Array.from({ length: 10 }, (_, i) => s(`s${i}`, i + 1, i ? [i] : []));
      d.send({ ...create(chain, 1), inputs });
      const inlineDone = d.ctx().steps.filter((x) => x.status === 'COMPLETED').length;
      expect(inlineDone).toBe(Math.ceil(INSTANT_BUDGET / 150_003));
      expect(calls(d.effects).map((c) => c.stepId)).toEqual([`s${inlineDone}`]);
      d.send({ type: `pbstep.s${inlineDone}.1.done`, output: { ok: true, output: true } });
      expect(d.value()).toBe('succeeded');
      // a forEach whose items times its scope would pass the budget is a call before any item runs
      const e = driver(inline);
      e.send({ ...create([s('each', 1, [], { forEach: 'inputs.big.filter(x, x < 1000)', spec: 'item' })]), inputs });
      expect(calls(e.effects).map((c) => c.stepId)).toEqual(['each']);
    });

    it('an inline failure that may be retried holds its slot until its retry timer, as a runner failure does', () => {
      // CEL errors are never retryable: a stand-in for one that would be
      let failures = 1;
      const flaky: InstantSteps = {
        run: (call, at) => ({
          spent: 1,
          outcome: call.type !== 'flaky' ? null : failures-- > 0 ? { ok: false, error: { code: 'X', message: 'x', retryable: true }, logs: [{ at, attempt: call.attempt, message: 'x' }] } : { ok: true, output: 'ok' },
        }),
      };
      const d = driver(createExecutionMachine(flaky));
      d.send(create([s('f', 1, [], { type: 'flaky' }), s('w', 2, [], { type: 'webhook', spec: {} })], 1));
      expect(d.ctx().steps[0]).toMatchObject({ status: 'FAILED', retryCount: 1 });
      expect(calls(d.effects)).toEqual([]);
      expect(d.timers.map((t) => t.event.type)).toEqual(['execution.step.retryDue']);
      d.send({ type: 'execution.step.retryDue', stepId: 'f', attempt: 1, at: '2026-03-01T00:00:00.100Z' });
      expect(d.ctx().steps[0]).toMatchObject({ status: 'COMPLETED', output: 'ok', attempt: 2 });
      expect(calls(d.effects).map((c) => c.stepId)).toEqual(['w']);
    });
  });
});
