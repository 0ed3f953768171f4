import { createHash } from 'node:crypto';
import { parseDuration } from '../../machines/lib/duration.js';
import { planSaga, type PlanOverrides, type SagaPlan } from '../../machines/saga/index.js';
import { SAGA_DEFINITIONS, type SagaDefinition, type SagaType } from '../../machines/saga/definitions.js';
import type { Config } from '../../runtime/config.js';
import { uuidFromHex } from '../../machines/lib/uuid.js';

/** Where commands, service events and Concord's own events go, from the configuration. */
export interface SagaSubjects {
  /** `<services>.<service>.<command>`; service events on `<services>.events.<Name>`. */
  services: string;
  /** Concord's events: `<events>.<Name>` (`concord.events` by default). */
  events: string;
}

export function sagaSubjects(config: Config): SagaSubjects {
  return { services: config.saga.servicePrefix, events: `${config.nats.prefix}.events` };
}

/** The configured overrides of the definitions' timeouts and retry policies. */
export function planOverrides(config: Config): PlanOverrides {
  const s = config.saga;
  const d = (v: string | undefined) => (v === undefined ? undefined : parseDuration(v));
  const retry = {
    ...(s.retryMaxAttempts !== undefined ? { maxAttempts: s.retryMaxAttempts } : {}),
    ...(s.retryInitialInterval !== undefined ? { initialMs: d(s.retryInitialInterval) } : {}),
    ...(s.retryMultiplier !== undefined ? { multiplier: s.retryMultiplier } : {}),
    ...(s.retryMaxInterval !== undefined ? { maxMs: d(s.retryMaxInterval) } : {}),
  };
  const compensation = {
    ...(s.compensationTimeout !== undefined ? { timeoutMs: d(s.compensationTimeout) } : {}),
    ...(s.compensationMaxRetries !== undefined ? { maxRetries: s.compensationMaxRetries } : {}),
  };
  return {
    ...(s.orderTimeout !== undefined ? { sagaTimeoutMs: d(s.orderTimeout) } : {}),
    stepTimeoutsMs: Object.fromEntries(Object.entries(s.stepTimeouts).map(([k, v]) => [k, parseDuration(v)])),
    retry,
    compensation,
  } as PlanOverrides;
}

export function planFor(config: Config, type: SagaType): SagaPlan {
  return planSaga(definitionOf(type), sagaSubjects(config), planOverrides(config));
}

export function definitionOf(type: SagaType): SagaDefinition {
  return SAGA_DEFINITIONS[type];
}

/**
 * The workflow id of a saga type for one correlation id (an orderId): a UUID derived from both,
 * so a repeated start, from HTTP or from an OrderCreatedEvent, lands on the same actor.
 */
export function workflowIdFor(type: SagaType, correlationId: string): string {
  const h = createHash('sha256').update(`concord.saga\n${type}\n${correlationId}`).digest('hex');
  return uuidFromHex(h);
}
