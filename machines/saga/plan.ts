import { backoffDelay } from '../lib/backoff.js';
import { parseDuration } from '../lib/duration.js';
import type { SagaDefinition } from './definitions.js';
import type { PlannedStep, SagaContext, SagaPlan } from './types.js';

/** From a definition to the plan a saga carries, and what the plan says about a running saga. */

export interface PlanOverrides {
  sagaTimeoutMs?: number;
  stepTimeoutsMs?: Record<string, number>;
  retry?: Partial<{ maxAttempts: number; initialMs: number; multiplier: number; maxMs: number }>;
  compensation?: Partial<{ timeoutMs: number; maxRetries: number }>;
}

/** Resolves a definition to the plan a saga carries: subjects, timings and overrides applied. */
export function planSaga(def: SagaDefinition, subjects: { services: string; events: string }, o: PlanOverrides = {}): SagaPlan {
  return {
    timeoutMs: o.sagaTimeoutMs ?? parseDuration(def.timeout),
    events: subjects.events,
    steps: def.steps.map((s) => ({
      name: s.name,
      subject: `${subjects.services}.${s.service}.${s.command}`,
      success: s.success,
      failure: s.failure ?? null,
      timeoutMs: o.stepTimeoutsMs?.[s.name] ?? parseDuration(s.timeout),
      maxAttempts: o.retry?.maxAttempts ?? s.retry.maxAttempts,
      backoff: {
        initialMs: o.retry?.initialMs ?? parseDuration(s.retry.initialInterval),
        multiplier: o.retry?.multiplier ?? s.retry.multiplier,
        maxMs: o.retry?.maxMs ?? parseDuration(s.retry.maxInterval),
      },
      input: s.input,
      uses: s.uses ?? [],
      result: s.result,
      compensation: s.compensation
        ? {
            name: s.compensation.name,
            subject: `${subjects.services}.${s.compensation.service}.${s.compensation.command}`,
            success: s.compensation.success,
            timeoutMs: o.compensation?.timeoutMs ?? parseDuration(s.compensation.timeout),
            maxAttempts: 1 + (o.compensation?.maxRetries ?? s.compensation.maxRetries),
          }
        : null,
    })),
  };
}

/** Backoff before attempt `failed + 1`: initial x multiplier^(failed-1), capped. */
export function backoffMs(b: PlannedStep['backoff'], failedAttempt: number): number {
  return backoffDelay(b, failedAttempt);
}

/** The names of the compensations that will run, in order. */
export function compensationNames(ctx: SagaContext): string[] {
  return ctx.compensations.slice(ctx.compensating).map((i) => ctx.plan.steps[i]!.compensation!.name);
}

/** The step or compensation being worked on, for status answers. */
export function currentStepName(ctx: SagaContext): string | null {
  if (ctx.status === 'IN_PROGRESS') return ctx.plan.steps[ctx.current]?.name ?? null;
  if (ctx.status === 'COMPENSATING' || ctx.status === 'CANCELLING' || ctx.status === 'COMPENSATION_FAILED') {
    const i = ctx.compensations[ctx.compensating];
    return i === undefined ? (ctx.plan.steps[ctx.current]?.name ?? null) : ctx.plan.steps[i]!.compensation!.name;
  }
  return null;
}


/** Every reply type any definition names (the machine listens for all; guards pick). */
export function replyTypes(defs: readonly SagaDefinition[]): string[] {
  const all = new Set<string>();
  for (const d of defs) {
    for (const s of d.steps) {
      all.add(s.success);
      if (s.failure) all.add(s.failure);
      if (s.compensation) all.add(s.compensation.success);
    }
  }
  return [...all].sort();
}
