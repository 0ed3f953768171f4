import { awaitsAttempt, retryIsDue } from '../steps/lifecycle.js';
import type { WorkflowContext, WorkflowEvent, WorkflowStep } from './types.js';

/** Which step an event is about, and whether it still applies to it. */

const findStep = (c: WorkflowContext, id: string | undefined) => c.steps.find((s) => s.id === id);

/** `wfstep.<stepId>.<attempt>.done|failed` to its parts. */
export function parseCallReply(type: string): { stepId: string; attempt: number; ok: boolean } | null {
  const m = /^wfstep\.([^.]+)\.(\d+)\.(done|failed)$/.exec(type);
  return m ? { stepId: m[1]!, attempt: Number(m[2]), ok: m[3] === 'done' } : null;
}

/** The step an event names, whatever its status (a reply names it by its attempt's correlation id). */
export function namedStep(c: WorkflowContext, e: WorkflowEvent): WorkflowStep | undefined {
  if ('stepId' in e) return findStep(c, e.stepId);
  if (e.type === 'workflow.step.reply') return c.steps.find((s) => s.correlationId !== null && s.correlationId === e.correlationId);
  return findStep(c, parseCallReply(e.type)?.stepId);
}

/** The step an event is about, when the event still applies to it (the `appliesToStep` guard). */
export function stepOf(c: WorkflowContext, e: WorkflowEvent): WorkflowStep | undefined {
  const s = namedStep(c, e);
  switch (e.type) {
    case 'workflow.step.execute':
      return s?.status === 'READY' ? s : undefined;
    case 'workflow.step.complete':
    case 'workflow.step.fail':
      return s?.status === 'IN_PROGRESS' ? s : undefined;
    case 'workflow.step.retry':
      return s?.status === 'FAILED' ? s : undefined;
    case 'workflow.step.reply':
      return s?.status === 'IN_PROGRESS' ? s : undefined;
    case 'workflow.step.timeout':
      return awaitsAttempt(s, e.attempt) ? s : undefined;
    case 'workflow.step.retryDue':
      return retryIsDue(s, e.attempt) ? s : undefined;
    default: {
      const r = parseCallReply(e.type);
      return r && awaitsAttempt(s, r.attempt) ? s : undefined;
    }
  }
}

/** True when an answer (`workflow.step.reply`, `wfstep.*`) reports success. */
export function reportsSuccess(e: WorkflowEvent): boolean {
  if (e.type === 'workflow.step.reply') return e.status === 'succeeded';
  return parseCallReply(e.type)?.ok === true;
}

const errorText = (e: unknown): string =>
  typeof e === 'string' ? e : e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : 'step failed';

/** Why the step failed, in the words of the event that says so. */
export function failureOf(e: WorkflowEvent, s: WorkflowStep, timeoutMs: number): string {
  if (e.type === 'workflow.step.fail') return e.errorMessage;
  if (e.type === 'workflow.step.timeout') return `no reply within ${timeoutMs} ms (attempt ${s.attempt})`;
  return errorText((e as { error?: unknown }).error);
}

/** What completed the step. */
export const outputOf = (e: WorkflowEvent): unknown => (e as { output?: unknown }).output;
