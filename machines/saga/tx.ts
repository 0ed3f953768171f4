import { correlate, publish, type ConcordEffect } from '../effects.js';
import { epochMs as ms, isoAt as iso } from '../lib/time.js';
import { uuidFrom } from '../lib/uuid.js';
import { compensationNames } from './plan.js';
import type { SagaContext, SagaError, SagaEvent, ServiceReply, StepState } from './types.js';

/**
 * One saga transition as it is built: a copy of the context, the effects it emits, and the
 * commands and events it sends. `actions.ts` composes these into the chart's named actions.
 */

type Effect = ConcordEffect;

export const pick = (from: Record<string, unknown>, keys: readonly string[]) => {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out;
};


/** What one transition does: the next context and the effects it emits. */
export interface Outcome {
  ctx: SagaContext;
  effects: Effect[];
}

export class Tx {
  readonly effects: Effect[] = [];
  ctx: SagaContext;
  constructor(ctx: SagaContext, now: string) {
    this.ctx = { ...ctx, steps: ctx.steps.map((s) => ({ ...s })), now };
  }
  get now(): string {
    return this.ctx.now!;
  }
  step(i: number): StepState {
    return this.ctx.steps[i]!;
  }
  set(i: number, patch: Partial<StepState>): void {
    this.ctx.steps[i] = { ...this.ctx.steps[i]!, ...patch };
  }
  /** Publishes one of Concord's events with a deterministic event id. */
  announce(name: string, body: Record<string, unknown>): void {
    const seq = this.ctx.eventSeq + 1;
    this.ctx.eventSeq = seq;
    const eventId = uuidFrom(`${this.ctx.workflowId}/${seq}/${name}`);
    this.effects.push(publish(`${this.ctx.plan.events}.${name}`, { eventId, workflowId: this.ctx.workflowId, ...body, timestamp: this.now }, { messageId: eventId }));
  }
  done(): Outcome {
    return { ctx: this.ctx, effects: this.effects };
  }
}

export function commandBase(ctx: SagaContext, commandId: string, attempt: number) {
  const orderId = ctx.data.orderId;
  return { commandId, workflowId: ctx.workflowId, ...(typeof orderId === 'string' ? { orderId } : {}), correlationId: ctx.correlationId, attempt };
}

export function resultsOf(ctx: SagaContext): Record<string, unknown> {
  return Object.assign({}, ...ctx.steps.map((s) => s.result ?? {}));
}

export function sendStep(tx: Tx, i: number, attempt: number): void {
  const p = tx.ctx.plan.steps[i]!;
  const commandId = `${tx.ctx.workflowId}:${p.name}:${attempt}`;
  const prev = tx.step(i);
  tx.set(i, { status: 'IN_PROGRESS', attempt, commandId, commandIds: [...prev.commandIds, commandId], startedAt: prev.startedAt ?? tx.now });
  tx.ctx.current = i;
  tx.ctx.deadline = iso(ms(tx.now) + p.timeoutMs);
  tx.effects.push(correlate(commandId));
  tx.effects.push(
    publish(p.subject, { ...commandBase(tx.ctx, commandId, attempt), step: p.name, ...pick(tx.ctx.data, p.input), ...pick(resultsOf(tx.ctx), p.uses) }, { messageId: commandId }),
  );
}

export function sendCompensation(tx: Tx, attempt: number): void {
  const i = tx.ctx.compensations[tx.ctx.compensating]!;
  const p = tx.ctx.plan.steps[i]!;
  const c = p.compensation!;
  const commandId = `${tx.ctx.workflowId}:${c.name}:${attempt}`;
  const s = tx.step(i);
  tx.set(i, { compensation: { status: 'IN_PROGRESS', attempt, commandId, startedAt: s.compensation?.startedAt ?? tx.now, completedAt: null } });
  tx.ctx.deadline = iso(ms(tx.now) + c.timeoutMs);
  tx.effects.push(correlate(commandId));
  tx.effects.push(
    publish(
      c.subject,
      { ...commandBase(tx.ctx, commandId, attempt), step: c.name, compensates: p.name, originalCommandIds: s.commandIds, ...pick(tx.ctx.data, p.input), ...(s.result ?? {}) },
      { messageId: commandId },
    ),
  );
}

/** Steps to undo, last first: completed ones and ones whose outcome is unknown. */
export function undoOrder(ctx: SagaContext): number[] {
  const out: number[] = [];
  ctx.steps.forEach((s, i) => {
    if (ctx.plan.steps[i]!.compensation && (s.status === 'COMPLETED' || s.outcomeUnknown)) out.push(i);
  });
  return out.reverse();
}

export function beginCompensation(tx: Tx, failedStep: string | null, error: SagaError, cancelled: boolean): void {
  tx.ctx.status = cancelled ? 'CANCELLING' : 'COMPENSATING';
  tx.ctx.failure = { step: failedStep, error };
  tx.ctx.failedAt = tx.now;
  tx.ctx.compensations = undoOrder(tx.ctx);
  tx.ctx.compensating = 0;
  tx.ctx.deadline = null;
  tx.announce('WorkflowFailedEvent', { workflowType: tx.ctx.workflowType, failedStep, error, compensationSteps: compensationNames(tx.ctx) });
}

export function replyTime(ctx: SagaContext, e: ServiceReply): string {
  const t = typeof e.timestamp === 'string' ? Date.parse(e.timestamp) : NaN;
  const now = ms(ctx.now);
  return iso(Number.isFinite(t) && t > now ? t : now);
}

export const errorOf = (e: ServiceReply, fallback: string): SagaError => ({
  code: typeof e.error?.code === 'string' ? e.error.code : fallback,
  message: typeof e.error?.message === 'string' ? e.error.message : `${e.type}`,
  details: e.error?.details && typeof e.error.details === 'object' ? e.error.details : {},
});

export const isReply = (e: SagaEvent): e is ServiceReply => typeof (e as ServiceReply).commandId === 'string';
