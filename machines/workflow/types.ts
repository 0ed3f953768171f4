import type { StepRun } from '../steps/types.js';
import type { WorkflowType } from './templates.js';

export { STEP_STATUSES, type StepStatus } from '../steps/types.js';

export const WORKFLOW_STATUSES = ['NOT_STARTED', 'BLOCKED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type WorkflowStatus = (typeof WORKFLOW_STATUSES)[number];

type Json = Record<string, unknown>;

/** What an automated step does (`configuration.action`). */
export type StepAction =
  | { type: 'publish'; subject: string; data?: unknown }
  | { type: 'connector'; connector: string; operation: string; input?: unknown };

export interface StepInit {
  id: string;
  stepNumber: number;
  name: string;
  description: string | null;
  estimatedDuration: number | null;
  maxRetries: number | null;
  dependencies: number[];
  configuration: Json | null;
}

/** A step as the workflow runs it: its definition and its run (`machines/steps/`). */
export interface WorkflowStep extends StepInit, StepRun {}

export interface WorkflowContext {
  id: string;
  name: string;
  description: string | null;
  workflowType: WorkflowType | null;
  vendorId: string | null;
  partnerId: string | null;
  integrationId: string | null;
  /** Workflows that must complete first. */
  dependencies: string[];
  dependenciesCompleted: string[];
  /** Workflows waiting on this one. */
  dependents: string[];
  estimatedDuration: number | null;
  actualDuration: number | null;
  startedAt: string | null;
  completedAt: string | null;
  cancelledAt: string | null;
  currentStep: number | null;
  errorMessage: string | null;
  metadata: Json | null;
  steps: WorkflowStep[];
  outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED' | null;
  createdAt: string | null;
  createdBy: string | null;
  lastEventAt: string | null;
  /**
   * Subject root of Concord's own events (`<NATS_PREFIX>.events`), from `workflow.create`.
   * Absent in snapshots written before it existed: those publish under `concord.events`.
   */
  events?: string;
}

interface Stamp {
  at: string;
  by: string;
}

export type WorkflowEvent =
  | ({
      type: 'workflow.create';
      name: string;
      description?: string | null;
      workflowType: WorkflowType;
      vendorId?: string | null;
      partnerId?: string | null;
      integrationId?: string | null;
      dependencies?: string[];
      estimatedDuration?: number | null;
      metadata?: Json | null;
      steps: StepInit[];
      /** Subject root of Concord's events (`<NATS_PREFIX>.events`; `concord.events` if absent). */
      events?: string;
    } & Stamp)
  | ({ type: 'workflow.start' } & Stamp)
  | ({ type: 'workflow.cancel'; reason?: string } & Stamp)
  | ({ type: 'workflow.step.execute'; stepId: string } & Stamp)
  | ({ type: 'workflow.step.complete'; stepId: string; output?: unknown } & Stamp)
  | ({ type: 'workflow.step.fail'; stepId: string; errorMessage: string } & Stamp)
  | ({ type: 'workflow.step.retry'; stepId: string } & Stamp)
  /** From a service, routed by correlation id. */
  | { type: 'workflow.step.reply'; correlationId: string; status: 'succeeded' | 'failed'; output?: unknown; error?: string | { message?: string }; at?: string }
  /** A connector's outcome (`replyTo` = `wfstep.<stepId>.<attempt>`). */
  | { type: `wfstep.${string}`; output?: unknown; error?: { code?: string; message?: string; retryable?: boolean }; at?: string }
  /** Delayed raises (durable timers). */
  | { type: 'workflow.step.timeout'; stepId: string; attempt: number; at: string }
  | { type: 'workflow.step.retryDue'; stepId: string; attempt: number; at: string }
  /** Between workflows. */
  | { type: 'workflow.watch'; dependent: string; at?: string }
  | { type: 'workflow.dependencyCompleted'; workflowId: string; at?: string }
  | { type: 'workflow.dependencyFailed'; workflowId: string; status: string; at?: string };
