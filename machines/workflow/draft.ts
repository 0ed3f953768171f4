import { correlate, publish, sendToActor, type ConcordEffect } from '../effects.js';
import { eventsRoot } from '../lib/events.js';
import { plusMs } from '../lib/time.js';
import { beginStep, currentStepNumber, timeoutTimer } from '../steps/index.js';
import { actionOf, timeoutOf } from './policy.js';
import type { WorkflowContext, WorkflowEvent, WorkflowStep } from './types.js';

/**
 * What a named action works on: a copy of the context and what the action wants done besides
 * (effects to emit, timers to set and cancel). `chart.ts` turns it into XState actions.
 */
export interface Draft {
  ctx: WorkflowContext;
  /** The time of the event (or, on entry to a state, of the last one). */
  at: string;
  effects: ConcordEffect[];
  raise: Array<{ event: WorkflowEvent; delay: number; id: string }>;
  cancel: string[];
}

/** A draft for an event: its `at` (else the last known time) becomes `lastEventAt`. */
export function draftFor(context: WorkflowContext, event: WorkflowEvent | null): Draft {
  const ctx = JSON.parse(JSON.stringify(context)) as WorkflowContext;
  if (event === null) return { ctx, at: ctx.lastEventAt ?? ctx.createdAt!, effects: [], raise: [], cancel: [] };
  const at = ('at' in event && typeof event.at === 'string' ? event.at : null) ?? ctx.lastEventAt ?? ctx.createdAt ?? new Date(0).toISOString();
  ctx.lastEventAt = at;
  return { ctx, at, effects: [], raise: [], cancel: [] };
}

/** The default subject root of workflow events (a workflow created with `events` uses its own). */
export const WORKFLOW_EVENT_SUBJECT = 'concord.events.workflow';

// the workflow's status as the published events carry it (an action does not know the state)
const statusOfContext = (c: WorkflowContext): string => c.outcome ?? (c.startedAt ? 'IN_PROGRESS' : 'NOT_STARTED');

/** Publishes `<events>.workflow.<kind>`, or `<events>.workflow.step.<kind>` for a step. */
export function announce(o: Draft, kind: string, step?: WorkflowStep): void {
  const c = o.ctx;
  const root = `${eventsRoot(c)}.workflow`;
  o.effects.push(
    publish(step ? `${root}.step.${kind}` : `${root}.${kind}`, {
      workflowId: c.id,
      workflowType: c.workflowType,
      vendorId: c.vendorId,
      partnerId: c.partnerId,
      integrationId: c.integrationId,
      status: kind === 'blocked' ? 'BLOCKED' : statusOfContext(c),
      at: c.lastEventAt,
      ...(step
        ? { step: { id: step.id, stepNumber: step.stepNumber, name: step.name, status: step.status, retryCount: step.retryCount, attempt: step.attempt, errorMessage: step.errorMessage, retryAt: step.retryAt } }
        : { currentStep: c.currentStep, errorMessage: c.errorMessage }),
    }),
  );
}

/** Tells a dependent how this workflow ended. */
export function tell(c: WorkflowContext, dependent: string, at: string): ConcordEffect {
  return c.outcome === 'COMPLETED'
    ? sendToActor({ type: 'workflow', id: dependent }, { type: 'workflow.dependencyCompleted', workflowId: c.id, at })
    : sendToActor({ type: 'workflow', id: dependent }, { type: 'workflow.dependencyFailed', workflowId: c.id, status: c.outcome ?? 'FAILED', at });
}

export function refreshCurrent(c: WorkflowContext): void {
  c.currentStep = currentStepNumber(c.steps, c.currentStep);
}

/**
 * A new attempt of a step: IN_PROGRESS, and for an automated step its command (a publish
 * answered by `workflow.step.reply`, or a connector call answered by `wfstep.<id>.<attempt>.*`)
 * with a durable timeout.
 */
export function beginAttempt(o: Draft, s: WorkflowStep): void {
  beginStep(s, o.at);
  const action = actionOf(s);
  if (action) {
    const correlationId = `${o.ctx.id}:${s.id}:${s.attempt}`;
    s.correlationId = correlationId;
    const request = { workflowId: o.ctx.id, stepId: s.id, stepNumber: s.stepNumber, attempt: s.attempt, correlationId };
    if (action.type === 'publish') {
      o.effects.push(correlate(correlationId));
      o.effects.push(
        publish(action.subject, { ...request, replyWith: 'workflow.step.reply', data: action.data ?? null }, { messageId: correlationId, headers: { 'Concord-Correlation-Id': correlationId } }),
      );
    } else {
      o.effects.push({ type: 'concord.call', connector: action.connector, operation: action.operation, input: { ...request, input: action.input ?? null }, replyTo: `wfstep.${s.id}.${s.attempt}` });
    }
    const ms = timeoutOf(s);
    o.raise.push({ event: { type: 'workflow.step.timeout', stepId: s.id, attempt: s.attempt, at: plusMs(o.at, ms) }, delay: ms, id: timeoutTimer(s.id) });
  }
  announce(o, 'started', s);
}
