import { setup } from 'xstate';
import { sendToActor, type ConcordEffect } from '../effects.js';
import { epochMs } from '../lib/time.js';
import { STEP_CONNECTOR } from './engine.js';

/**
 * The cron trigger of one playbook (actor type `playbook-schedule`, id = the playbook's id): a
 * durable timer at the next tick, and the executions it started, for the overlap policy.
 *
 * ```
 * schedule.set ─► timer `tick` at nextAt ─fires─► call playbook.tick (the service starts the
 *   tick's executions, catch-up included, and answers the next due time) ─► timer at nextAt ...
 * ```
 *
 * Due times come from the service (the machine computes no calendar): a tick fires once across
 * all processes because a timer row fires once, and the executions a tick starts have ids derived
 * from the playbook and the tick, so a repeated call starts nothing twice.
 */

export interface CronSpec {
  schedule: string;
  timezone: string;
  overlap: 'skip' | 'queue' | 'allow';
  catchUp: 'none' | 'last' | 'all';
  catchUpWindowMs: number;
}

export interface ScheduleContext {
  playbookId: string;
  tenant: string | null;
  cron: CronSpec | null;
  /** Bumped by every `schedule.set`; a tick or answer of an older revision moves no timer. */
  revision: number;
  nextAt: string | null;
  /** Executions started by ticks and not yet ended. */
  active: string[];
  /** Executions created queued (overlap `queue`), released one at a time. */
  queue: string[];
  lastTickAt: string | null;
  started: number;
  skipped: number;
}

export interface TickAnswer {
  started: string[];
  held: string[];
  skipped: number;
  nextAt: string | null;
}

export type ScheduleEvent =
  | { type: 'schedule.set'; tenant: string | null; cron: CronSpec | null; nextAt: string | null; at: string }
  | { type: 'schedule.tick'; due: string; revision: number; at?: string }
  | { type: `pbtick.${string}`; output?: TickAnswer; error?: unknown; at?: string }
  | { type: 'schedule.executionEnded'; executionId: string; status?: string; at?: string };

export const TICK_TIMER = 'tick';
/** A tick whose call failed is tried again after this. */
export const TICK_RETRY_MS = 10_000;

const base = setup({
  types: {
    context: {} as ScheduleContext,
    events: {} as ScheduleEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
});

type Ev<T extends ScheduleEvent['type']> = Extract<ScheduleEvent, { type: T }>;

type Enqueue = Parameters<Parameters<typeof base.enqueueActions>[0]>[0]['enqueue'];

function arm(enqueue: Enqueue, c: ScheduleContext, at: string): void {
  enqueue.cancel(TICK_TIMER);
  if (!c.nextAt || !c.cron) return;
  const delay = Math.max(0, epochMs(c.nextAt) - epochMs(at));
  enqueue.raise({ type: 'schedule.tick', due: c.nextAt, revision: c.revision, at: c.nextAt }, { delay, id: TICK_TIMER });
}

/** Releases the next queued execution when none runs. */
function releaseNext(enqueue: Enqueue, c: ScheduleContext, at: string): ScheduleContext {
  if (c.active.length > 0 || c.queue.length === 0) return c;
  const [next, ...rest] = c.queue;
  enqueue.emit(sendToActor({ type: 'playbook-execution', id: next! }, { type: 'execution.release', at, by: 'cron' }));
  return { ...c, queue: rest, active: [next!] };
}

const atOf = (e: ScheduleEvent, c: ScheduleContext): string => ('at' in e && typeof e.at === 'string' ? e.at : (c.lastTickAt ?? new Date(0).toISOString()));

export const scheduleMachine = base.createMachine({
  id: 'playbook-schedule',
  context: ({ input }) => ({
    playbookId: input.id,
    tenant: input.tenant,
    cron: null,
    revision: 0,
    nextAt: null,
    active: [],
    queue: [],
    lastTickAt: null,
    started: 0,
    skipped: 0,
  }),
  on: {
    'schedule.set': {
      actions: base.enqueueActions(({ context, event: e, enqueue }) => {
        const event = e as Ev<'schedule.set'>;
        const next: ScheduleContext = { ...context, tenant: event.tenant, cron: event.cron, nextAt: event.cron ? event.nextAt : null, revision: context.revision + 1 };
        enqueue.assign(() => next);
        arm(enqueue, next, event.at);
      }),
    },
    'schedule.tick': {
      actions: base.enqueueActions(({ context, event: e, enqueue }) => {
        const event = e as Ev<'schedule.tick'>;
        if (event.revision !== context.revision || !context.cron) return;
        enqueue.assign({ lastTickAt: event.due });
        enqueue.emit({
          type: 'concord.call',
          connector: STEP_CONNECTOR,
          operation: 'tick',
          input: { playbookId: context.playbookId, tenant: context.tenant, due: event.due, cron: context.cron, busy: context.active.length > 0 || context.queue.length > 0 },
          replyTo: `pbtick.${context.revision}`,
        });
      }),
    },
    'pbtick.*': {
      actions: base.enqueueActions(({ context, event: e, enqueue }) => {
        const event = e as Ev<`pbtick.${string}`>;
        const m = /^pbtick\.(\d+)\.(done|failed)$/.exec(event.type);
        if (!m) return;
        const current = Number(m[1]) === context.revision;
        const at = atOf(event, context);
        if (m[2] === 'failed' || !event.output) {
          if (current && context.nextAt) enqueue.raise({ type: 'schedule.tick', due: context.nextAt, revision: context.revision, at }, { delay: TICK_RETRY_MS, id: TICK_TIMER });
          return;
        }
        const a = event.output;
        let next: ScheduleContext = {
          ...context,
          active: [...context.active, ...a.started.filter((id) => !context.active.includes(id))],
          queue: [...context.queue, ...a.held.filter((id) => !context.queue.includes(id))],
          started: context.started + a.started.length + a.held.length,
          skipped: context.skipped + a.skipped,
          nextAt: current ? a.nextAt : context.nextAt,
        };
        next = releaseNext(enqueue, next, at);
        enqueue.assign(() => next);
        if (current) arm(enqueue, next, at);
      }),
    },
    'schedule.executionEnded': {
      actions: base.enqueueActions(({ context, event: e, enqueue }) => {
        const event = e as Ev<'schedule.executionEnded'>;
        const next = releaseNext(enqueue, { ...context, active: context.active.filter((id) => id !== event.executionId), queue: context.queue.filter((id) => id !== event.executionId) }, atOf(event, context));
        enqueue.assign(() => next);
      }),
    },
  },
});
