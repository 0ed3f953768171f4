import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { createExecutionMachine, executionMachine } from './execution.js';
import { scheduleMachine, type ScheduleContext } from './schedule.js';
import type { ExecutionContext, InstantSteps } from './types.js';

/** Playbooks (issue 19): executions and cron schedules as actors; the engine is `machines/steps/`. */
export { createExecutionMachine, executionMachine } from './execution.js';
export { parseStepReply, scopeSteps, STEP_CONNECTOR, stepKey, stepStatusWord, TIMEOUT_GRACE_MS } from './engine.js';
export { scheduleMachine, TICK_TIMER, type CronSpec, type ScheduleContext, type ScheduleEvent, type TickAnswer } from './schedule.js';
export * from './types.js';

export const EXECUTION_TYPE = 'playbook-execution';
export const SCHEDULE_TYPE = 'playbook-schedule';

/** Indexed columns: the execution's status, its tenant, and what the list filters on. */
export function projectExecution(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as ExecutionContext;
  return {
    status: c.createdAt ? c.status : 'DRAFT',
    tenant: c.tenant,
    attrs: { playbookId: c.playbookId, trigger: c.trigger.kind, createdAt: c.createdAt },
  };
}

export const executionType: ActorTypeDefinition<typeof executionMachine> = {
  type: EXECUTION_TYPE,
  machine: executionMachine,
  version: 1,
  migrations: {},
  project: projectExecution,
};

/**
 * The execution type with instant step work done inside its transitions (the services inject
 * CEL). Same type, version and snapshots as {@link executionType}: an attempt already out as a
 * call is answered as before; only attempts begun from now on may end inline.
 */
export function executionTypeWith(instant: InstantSteps): ActorTypeDefinition<typeof executionMachine> {
  return { ...executionType, machine: createExecutionMachine(instant) };
}

export const scheduleType: ActorTypeDefinition<typeof scheduleMachine> = {
  type: SCHEDULE_TYPE,
  machine: scheduleMachine,
  version: 1,
  migrations: {},
  project(snapshot: PersistedSnapshot) {
    const c = snapshot.context as unknown as ScheduleContext;
    return { status: c.cron ? 'ACTIVE' : 'STOPPED', tenant: c.tenant, attrs: { playbookId: c.playbookId, nextAt: c.nextAt } };
  },
};
