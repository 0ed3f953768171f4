import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { workflowMachine } from './chart.js';
import type { WorkflowContext, WorkflowStatus } from './types.js';

/** Integration workflows: the chart (`chart.ts`), its types, named actions and step policy. */
export { workflowMachine } from './chart.js';
export { WORKFLOW_EVENT_SUBJECT } from './draft.js';
export { actionOf, retriesOf } from './policy.js';
export { STEP_STATUSES, WORKFLOW_STATUSES, type StepAction, type StepInit, type StepStatus, type WorkflowContext, type WorkflowEvent, type WorkflowStatus, type WorkflowStep } from './types.js';

export const version = 1;
export const migrations: ActorTypeDefinition['migrations'] = {};

/** The spec's status word for a state value. */
export function statusOf(value: unknown): WorkflowStatus | 'DRAFT' {
  const top = typeof value === 'string' ? value : Object.keys(value as object)[0];
  switch (top) {
    case 'notStarted':
      return 'NOT_STARTED';
    case 'blocked':
      return 'BLOCKED';
    case 'running':
      return 'IN_PROGRESS';
    case 'completed':
      return 'COMPLETED';
    case 'failed':
      return 'FAILED';
    case 'cancelled':
      return 'CANCELLED';
    default:
      return 'DRAFT';
  }
}

/** Indexed columns: status, the vendor as tenant, and the parties and type for searches. */
export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as WorkflowContext;
  return {
    status: statusOf(snapshot.value),
    tenant: c.vendorId ?? null,
    attrs: {
      vendorId: c.vendorId,
      partnerId: c.partnerId,
      integrationId: c.integrationId,
      workflowType: c.workflowType,
      dependencies: c.dependencies,
    },
  };
}

export const workflowType: ActorTypeDefinition<typeof workflowMachine> = {
  type: 'workflow',
  machine: workflowMachine,
  version,
  migrations,
  project,
};
