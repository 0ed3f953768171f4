import { setup } from 'xstate';
import type { ConcordEffect } from '../effects.js';
import * as eng from './engine.js';
import type { ExecutionContext, ExecutionEvent, InstantSteps } from './types.js';

/**
 * A playbook execution (actor type `playbook-execution`):
 *
 * ```
 * draft ─create─► running ──(main steps, then finally steps, done)──► succeeded | failed | cancelled
 *            └─(hold)─► queued ─release─┘        └─cancel: running steps stop, finally still runs
 * ```
 *
 * The step DAG lives in context and moves through the shared step engine (`machines/steps/`);
 * each attempt's work is a call to the step runners, answered as `pbstep.<id>.<attempt>.done`,
 * so a step's output is committed before any dependent starts, and a crash re-runs at most the
 * attempt in flight (its call stays in the outbox until answered), with the same idempotency key.
 * Time arrives in events; ids come from the caller.
 *
 * Work that is instant (an `evaluate` step, a false `if`: CEL over the execution's own context)
 * runs inside the transition when the services inject it ({@link createExecutionMachine}): a
 * chain of such steps ends in one transition and one commit, with no call. Without it (the
 * default export) every attempt is a call.
 */

const base = setup({
  types: {
    context: {} as ExecutionContext,
    events: {} as ExecutionEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
});

const namedWith = (instant: InstantSteps | null) => (run: (o: eng.Draft, e: ExecutionEvent) => void) =>
  base.enqueueActions(({ context, event, enqueue }) => {
    const o = eng.draftFor(context, event, instant);
    run(o, event);
    enqueue.assign(() => o.ctx);
    for (const id of o.cancel) enqueue.cancel(id);
    for (const r of o.raise) enqueue.raise(r.event, { delay: r.delay, id: r.id });
    for (const e of o.effects) enqueue.emit(e);
  });

const as = <E extends ExecutionEvent['type']>(fn: (o: eng.Draft, e: Extract<ExecutionEvent, { type: E }>) => void) => fn as (o: eng.Draft, e: ExecutionEvent) => void;

/** The execution machine, with instant step work done inline (none: every attempt is a call). */
export function createExecutionMachine(instant: InstantSteps | null = null) {
  const named = namedWith(instant);
  return base
    .extend({
      guards: {
        held: ({ event }) => event.type === 'execution.create' && event.hold === true,
        appliesToStep: ({ context, event }) => eng.stepOf(context, event) !== undefined,
        done: ({ context }) => context.phase === 'done',
        succeeded: ({ context }) => context.outcome === 'succeeded',
        cancelled: ({ context }) => context.outcome === 'cancelled',
      },
      actions: {
        ignore: base.assign(() => ({})),
        create: named(as(eng.create)),
        start: named(eng.start),
        answer: named(eng.answer),
        timeout: named(eng.timeout),
        retryDue: named(eng.retryDue),
        cancel: named(as(eng.cancel)),
        settle: named(eng.settle),
      },
    })
    .createMachine({
      id: 'playbook-execution',
      context: ({ input }) => ({
        id: input.id,
        tenant: input.tenant,
        playbookId: '',
        playbookName: '',
        playbookVersion: 0,
        trigger: { kind: 'manual' },
        inputs: {},
        parallelism: 1,
        steps: [],
        status: 'queued',
        phase: 'main',
        outcome: null,
        error: null,
        notify: null,
        createdAt: null,
        createdBy: null,
        startedAt: null,
        finishedAt: null,
        lastEventAt: null,
      }),
      initial: 'draft',
      on: {
        // answers of attempts that timed out or were cancelled, a release that came late: accepted, ignored
        'pbstep.*': { actions: 'ignore' },
        'pbabort.*': { actions: 'ignore' },
        'execution.release': { actions: 'ignore' },
        'execution.step.timeout': { actions: 'ignore' },
        'execution.step.retryDue': { actions: 'ignore' },
      },
      states: {
        draft: {
          on: {
            'execution.create': [
              { guard: 'held', target: 'queued', actions: 'create' },
              { target: 'running', actions: 'create' },
            ],
          },
        },
        queued: {
          on: {
            'execution.release': { target: 'running' },
            'execution.cancel': { target: 'cancelled', actions: 'cancel' },
          },
        },
        running: {
          entry: 'start',
          always: { guard: 'done', target: 'settled' },
          on: {
            'pbstep.*': [{ guard: 'appliesToStep', actions: 'answer' }, { actions: 'ignore' }],
            'execution.step.timeout': { guard: 'appliesToStep', actions: 'timeout' },
            'execution.step.retryDue': { guard: 'appliesToStep', actions: 'retryDue' },
            'execution.cancel': { actions: 'cancel' },
          },
        },
        settled: {
          always: [
            { guard: 'succeeded', target: 'succeeded' },
            { guard: 'cancelled', target: 'cancelled' },
            { target: 'failed' },
          ],
        },
        succeeded: { entry: 'settle' },
        failed: { entry: 'settle' },
        cancelled: { entry: 'settle' },
      },
    });
}

/** Every attempt a call to the step runners. */
export const executionMachine = createExecutionMachine();
