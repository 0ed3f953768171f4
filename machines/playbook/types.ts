import type { StepRun } from '../steps/types.js';

/**
 * A playbook execution (issue 19) as its actor keeps it: the compiled steps of the playbook
 * version it started with, each a `StepRun` of the shared step engine (`machines/steps/`)
 * extended with what the step does and its policies.
 */

export const EXECUTION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** What a playbook step's status is called in the API and in expressions (`steps.<id>.status`). */
export const PLAYBOOK_STEP_STATUSES = ['pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] as const;
export type PlaybookStepStatus = (typeof PLAYBOOK_STEP_STATUSES)[number];

export const ON_ERROR = ['retry', 'skip', 'abort', 'continue'] as const;
export type OnError = (typeof ON_ERROR)[number];

export const TRIGGER_KINDS = ['manual', 'cron', 'webhook', 'nats', 'retry'] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];

/** A step's retry policy, in milliseconds. */
export interface StepRetry {
  /** Attempts in all, the first included (1 = no retry). */
  maxAttempts: number;
  initialMs: number;
  factor: number;
  maxMs: number;
  /** Error codes worth a retry; null for any retryable failure. */
  on: string[] | null;
}

/** A step as the compiler hands it to an execution. */
export interface CompiledStep {
  /** The playbook's step id (unique over `steps` and `finally`). */
  id: string;
  stepNumber: number;
  dependencies: number[];
  phase: 'main' | 'finally';
  /** The type key (`query`, `evaluate`, `template`, `communicate`, `webhook`). */
  type: string;
  /** The value under the type key. */
  spec: unknown;
  if: string | null;
  forEach: string | null;
  timeoutMs: number;
  retry: StepRetry;
  onError: OnError;
}

export interface LogLine {
  at: string;
  attempt: number;
  message: string;
  fields?: Record<string, unknown>;
}

/** What a step-runner call answers (`pbstep.<id>.<attempt>.done`). */
export type StepOutcome =
  | { ok: true; output: unknown; logs?: LogLine[] }
  | { skipped: true; reason: string; logs?: LogLine[] }
  | { ok: false; error: { code: string; message: string; retryable: boolean }; logs?: LogLine[] };

/** What expressions see: the execution's inputs and its steps' outputs and statuses. */
export interface ExpressionScope {
  inputs: Record<string, unknown>;
  steps: Record<string, { output: unknown; status: string }>;
}

/** One attempt of a step, as {@link InstantSteps} sees it. */
export interface InstantCall {
  type: string;
  spec: unknown;
  if: string | null;
  forEach: string | null;
  attempt: number;
  scope: ExpressionScope;
  /** Work this transition may still spend on instant steps, in the implementation's units. */
  budget: number;
}

/** The outcome of the attempt (null: not instant, or over the budget: a call does it) and the work spent. */
export interface InstantAnswer {
  outcome: StepOutcome | null;
  spent: number;
}

/**
 * Step work done inside the execution's own transition (injected by the services: CEL lives
 * there): an `evaluate` step, or the `if` of any step. `run` answers what a step runner would
 * have answered for the attempt, or null when the work is not instant (the step runners do it,
 * through the `playbook` connector). It must be pure: a function of its arguments only (no clock,
 * no randomness, no I/O), bounded, and synchronous; log lines carry `at` (the event's time).
 * It tells the work it spent, a count (never a time: transitions are deterministic); once a
 * transition's budget is spent, its remaining attempts are calls, so a long chain over a large
 * scope does not hold the actor (and the event loop) in one transition.
 */
export interface InstantSteps {
  run(call: InstantCall, at: string): InstantAnswer;
}

export interface PlaybookStep extends CompiledStep, StepRun {
  /** The code of the last failure. */
  errorCode: string | null;
  logs: LogLine[];
  /** Why the step was skipped: its `if` was false, or its failure was skipped (`onError: skip`). */
  skipReason: 'condition' | 'error' | null;
  /** Its output was taken over from an earlier execution (`retry`). */
  reused: boolean;
}

export interface TriggerInfo {
  kind: TriggerKind;
  /** cron: the tick; webhook: the webhook-id; nats: the subject and message id; retry: the execution retried. */
  scheduledAt?: string;
  webhookId?: string;
  subject?: string;
  messageId?: string;
  retryOf?: string;
}

export interface ExecutionContext {
  id: string;
  tenant: string | null;
  playbookId: string;
  playbookName: string;
  /** The playbook version this execution runs to the end. */
  playbookVersion: number;
  trigger: TriggerInfo;
  inputs: Record<string, unknown>;
  parallelism: number;
  steps: PlaybookStep[];
  status: ExecutionStatus;
  /** main steps, then finally steps, then done. */
  phase: 'main' | 'finally' | 'done';
  /** How the main steps ended (set as soon as it is decided: a failure, an abort, a cancel). */
  outcome: 'succeeded' | 'failed' | 'cancelled' | null;
  error: string | null;
  /** An actor to tell when the execution ends (the cron schedule, for its overlap policy). */
  notify: { type: string; id: string } | null;
  createdAt: string | null;
  createdBy: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  lastEventAt: string | null;
}

interface Stamp {
  at: string;
  by: string;
}

/** Outputs taken over from an earlier execution, by step id. */
export type Reuse = Record<string, { output: unknown }>;

export type ExecutionEvent =
  | ({
      type: 'execution.create';
      tenant: string | null;
      playbookId: string;
      playbookName: string;
      playbookVersion: number;
      trigger: TriggerInfo;
      inputs: Record<string, unknown>;
      parallelism: number;
      steps: CompiledStep[];
      /** Created queued: it starts on `execution.release` (a cron tick queued behind a running one). */
      hold?: boolean;
      notify?: { type: string; id: string } | null;
      reuse?: Reuse;
    } & Stamp)
  | ({ type: 'execution.release' } & Partial<Stamp>)
  | ({ type: 'execution.cancel'; reason?: string } & Stamp)
  /** A step runner's answer (`replyTo` = `pbstep.<stepId>.<attempt>`). */
  | { type: `pbstep.${string}`; output?: unknown; error?: { code?: string; message?: string; retryable?: boolean }; at?: string }
  /** The answer to an abort of running steps: nothing to do. */
  | { type: `pbabort.${string}`; at?: string }
  /** Delayed raises (durable timers). */
  | { type: 'execution.step.timeout'; stepId: string; attempt: number; at: string }
  | { type: 'execution.step.retryDue'; stepId: string; attempt: number; at: string };
