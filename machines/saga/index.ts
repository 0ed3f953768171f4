import type { ActorTypeDefinition, PersistedSnapshot } from '../kit/actor-type.js';
import { epochMs as ms } from '../lib/time.js';
import { createSagaMachine } from './chart.js';
import { SAGA_DEFINITIONS } from './definitions.js';
import { currentStepName } from './plan.js';
import type { SagaContext } from './types.js';

/**
 * Sagas (the seed-002 order, return and replenishment flows; their public API and events call
 * one a "workflow"): the chart (`chart.ts`), its types, its named actions (`actions.ts` over the
 * transition helper in `tx.ts`), planning (`plan.ts`) and the saga types as data
 * (`definitions.ts`).
 */
export { createSagaMachine } from './chart.js';
export { backoffMs, compensationNames, currentStepName, planSaga, replyTypes, type PlanOverrides } from './plan.js';
export * from './types.js';
export { formatDuration, parseDuration } from '../lib/duration.js';
export { uuidFrom } from '../lib/uuid.js';

export const sagaMachine = createSagaMachine(Object.values(SAGA_DEFINITIONS));
export const sagaVersion = 1;

/** The saga's columns: status, and attributes the workflow queries filter on. */
export function projectSaga(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as SagaContext;
  const durationMs = c.completedAt && c.startedAt ? ms(c.completedAt) - ms(c.startedAt) : null;
  return {
    status: c.status,
    tenant: null,
    attrs: {
      workflowType: c.workflowType,
      correlationId: c.correlationId,
      currentStep: currentStepName(c),
      startedAt: c.startedAt,
      completedAt: c.completedAt,
      failedAt: c.failedAt,
      cancelledAt: c.cancel?.at ?? null,
      durationMs,
      compensated: c.steps.filter((s) => s.status === 'COMPENSATED').length,
    },
  };
}

export const sagaType: ActorTypeDefinition<typeof sagaMachine> = {
  type: 'saga',
  machine: sagaMachine,
  version: sagaVersion,
  project: projectSaga,
};
