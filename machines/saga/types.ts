import type { SagaType } from './definitions.js';

export const SAGA_STATUSES = ['STARTED', 'IN_PROGRESS', 'COMPLETED', 'COMPENSATING', 'FAILED', 'CANCELLING', 'CANCELLED', 'COMPENSATION_FAILED'] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];
export const STEP_STATUSES = ['PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'COMPENSATED'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
/** Statuses of a saga that has not finished (what "active" counts). */
export const ACTIVE_SAGA_STATUSES: readonly SagaStatus[] = ['IN_PROGRESS', 'COMPENSATING', 'CANCELLING', 'COMPENSATION_FAILED'];
/** Statuses still moving by themselves (a saga here past the stuck threshold is stuck). */
export const RUNNING_SAGA_STATUSES: readonly SagaStatus[] = ['IN_PROGRESS', 'COMPENSATING', 'CANCELLING'];

export interface SagaError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** One step as a saga runs it: the definition with its timings resolved at start. */
export interface PlannedStep {
  name: string;
  subject: string;
  success: string;
  failure: string | null;
  timeoutMs: number;
  maxAttempts: number;
  backoff: { initialMs: number; multiplier: number; maxMs: number };
  input: string[];
  uses: string[];
  result: string[];
  compensation: { name: string; subject: string; success: string; timeoutMs: number; maxAttempts: number } | null;
}

export interface SagaPlan {
  timeoutMs: number;
  /** Subject of Concord's own events: `<events>.<EventName>`. */
  events: string;
  steps: PlannedStep[];
}

export interface StepState {
  name: string;
  status: StepStatus;
  attempt: number;
  commandId: string | null;
  /** Every attempt's command id, so a compensation can name what it undoes. */
  commandIds: string[];
  startedAt: string | null;
  completedAt: string | null;
  result: Record<string, unknown> | null;
  error: SagaError | null;
  /** No answer came: it may have happened, so it is compensated like a completed step. */
  outcomeUnknown: boolean;
  compensation: { status: 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED'; attempt: number; commandId: string | null; startedAt: string | null; completedAt: string | null } | null;
}

export interface SagaContext {
  workflowId: string;
  workflowType: SagaType | null;
  status: SagaStatus | 'NEW';
  correlationId: string | null;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  plan: SagaPlan;
  steps: StepState[];
  /** Index of the step running or last run. */
  current: number;
  /** Step indices whose compensations run, in order; `compensating` indexes into it. */
  compensations: number[];
  compensating: number;
  startedAt: string | null;
  completedAt: string | null;
  failedAt: string | null;
  /** The saga's own time: the last event's, or the deadline of the timer that fired. */
  now: string | null;
  deadline: string | null;
  sagaDeadline: string | null;
  failure: { step: string | null; error: SagaError } | null;
  cancel: { reason: string; initiatedBy: string; at: string } | null;
  /** Replies that settled nothing (late, duplicate, for another attempt). */
  ignoredReplies: number;
  eventSeq: number;
}

export interface SagaStartEvent {
  type: 'saga.start';
  at: string;
  workflowType: SagaType;
  correlationId: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  plan: SagaPlan;
}

/** A service's answer as it arrives on `svc.events.<type>`. */
export interface ServiceReply {
  type: string;
  eventId?: string;
  workflowId?: string;
  commandId?: string;
  timestamp?: string;
  error?: SagaError;
  [field: string]: unknown;
}

export type SagaEvent =
  | SagaStartEvent
  | { type: 'saga.cancel'; at: string; reason: string; initiatedBy: string }
  | { type: 'saga.retryCompensation'; at: string; by: string }
  | ServiceReply;
