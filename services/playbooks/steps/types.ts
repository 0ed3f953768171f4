/**
 * What the playbook engine (issue 19) asks of a step type, and what step types ask of nothing
 * else: one runner per type key (`query`, `evaluate`, `template`, `communicate`, `webhook`).
 * The execution actor decides when a step runs; a runner does the step's work once.
 */

export const STEP_TYPES = ['query', 'evaluate', 'template', 'communicate', 'webhook'] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** What expressions and templates see: `inputs`, `steps.<id>.output`, `steps.<id>.status`, `item` inside a forEach. */
export interface StepScope {
  inputs: Record<string, unknown>;
  steps: Record<string, { output: unknown; status: string }>;
  item?: unknown;
  index?: number;
}

export interface StepRunContext {
  tenantId: string;
  executionId: string;
  stepId: string;
  /** Stable across the retries of this step and across restarts: send it wherever the far side dedupes. */
  idempotencyKey: string;
  attempt: number;
  /** Aborted at the step's per-attempt timeout, on cancel and on shutdown. */
  signal: AbortSignal;
  /** Lines shown with the step in `GET /api/partnerships/executions/{id}`. */
  log(message: string, fields?: Record<string, unknown>): void;
}

/** Runs a step of one type; `spec` is the value under the step's type key in the playbook. */
export type StepRunner = (spec: unknown, scope: StepScope, ctx: StepRunContext) => Promise<unknown>;

export class StepError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'StepError';
  }
}

/** CEL and Liquid, as the engine uses them for `if`, `evaluate` and `template`. */
export interface Expressions {
  /** Checks an expression's syntax at validation time; throws a StepError with a message that names the problem. */
  checkCel(expression: string): void;
  evaluateCel(expression: string, scope: StepScope): unknown;
  checkTemplate(source: string): void;
  renderTemplate(source: string, scope: StepScope, signal?: AbortSignal): Promise<string>;
}
