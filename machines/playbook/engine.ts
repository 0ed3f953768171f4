import { sendToActor, type ConcordEffect } from '../effects.js';
import { plusMs } from '../lib/time.js';
import {
  beginStep,
  cancelSteps,
  completeStep,
  failStep,
  giveUpStep,
  hasRetriesLeft,
  isCancellable,
  notStarted,
  readyAgain,
  releaseDueSteps,
  retryTimer,
  scheduleRetry,
  timeoutTimer,
  type RetryPolicy,
} from '../steps/index.js';
import type { ExecutionContext, ExecutionEvent, InstantSteps, LogLine, PlaybookStep, PlaybookStepStatus, StepOutcome } from './types.js';

/**
 * The execution's named actions as pure functions on a draft, over the shared step engine
 * (`machines/steps/`: DAG readiness, statuses, retry). A step's work is a `concord.call` to the
 * `playbook` connector that the services register (the step runners); its answer comes back as
 * `pbstep.<stepId>.<attempt>.done`, bounded by a durable timeout; unless the services injected
 * {@link InstantSteps} and they answer the attempt at once (an `evaluate` step, a false `if`):
 * then it ends inside the same transition, with no call and no timer, and its dependents start
 * in that transition too.
 */

/** The connector the step runners answer to (services/playbooks registers it). */
export const STEP_CONNECTOR = 'playbook';
/** A step's durable timeout fires this long after the runner's own (which answers with a better error). */
export const TIMEOUT_GRACE_MS = 1_000;
/**
 * The instant work one transition may do ({@link InstantSteps} units: for CEL, scope values
 * converted, about 50 ns each, so some 50 ms); past it, the next attempts are calls.
 */
export const INSTANT_BUDGET = 1_000_000;
/** Log lines kept per step (the newest). */
export const MAX_LOG_LINES = 50;

export interface Draft {
  ctx: ExecutionContext;
  at: string;
  effects: ConcordEffect[];
  raise: Array<{ event: ExecutionEvent; delay: number; id: string }>;
  cancel: string[];
  /** Step work done inline (none: every attempt is a call). */
  instant: InstantSteps | null;
  /** What is left of this transition's {@link INSTANT_BUDGET}. */
  instantLeft: number;
}

export function draftFor(context: ExecutionContext, event: ExecutionEvent | null, instant: InstantSteps | null = null): Draft {
  const ctx = JSON.parse(JSON.stringify(context)) as ExecutionContext;
  const fromEvent = event && 'at' in event && typeof event.at === 'string' ? event.at : null;
  const at = fromEvent ?? ctx.lastEventAt ?? ctx.createdAt ?? new Date(0).toISOString();
  ctx.lastEventAt = at;
  return { ctx, at, effects: [], raise: [], cancel: [], instant, instantLeft: INSTANT_BUDGET };
}

const byId = (c: ExecutionContext, id: string | undefined) => c.steps.find((s) => s.id === id);

/** `pbstep.<stepId>.<attempt>.done|failed` to its parts. */
export function parseStepReply(type: string): { stepId: string; attempt: number; ok: boolean } | null {
  const m = /^pbstep\.([^.]+)\.(\d+)\.(done|failed)$/.exec(type);
  return m ? { stepId: m[1]!, attempt: Number(m[2]), ok: m[3] === 'done' } : null;
}

/** The step an event is about, when it still applies (the current attempt, the pending retry). */
export function stepOf(c: ExecutionContext, e: ExecutionEvent): PlaybookStep | undefined {
  if (e.type === 'execution.step.timeout') {
    const s = byId(c, e.stepId);
    return s?.status === 'IN_PROGRESS' && s.attempt === e.attempt ? s : undefined;
  }
  if (e.type === 'execution.step.retryDue') {
    const s = byId(c, e.stepId);
    return s?.status === 'FAILED' && s.retryAt !== null && s.attempt === e.attempt ? s : undefined;
  }
  const r = parseStepReply(e.type);
  if (!r) return undefined;
  const s = byId(c, r.stepId);
  return s?.status === 'IN_PROGRESS' && s.attempt === r.attempt ? s : undefined;
}

/** What expressions see of the steps: output and status word. */
export function scopeSteps(c: ExecutionContext): Record<string, { output: unknown; status: string }> {
  return Object.fromEntries(c.steps.map((s) => [s.id, { output: s.output ?? null, status: stepStatusWord(s) }]));
}

/** A step's status as the API and expressions name it. */
export function stepStatusWord(s: Pick<PlaybookStep, 'status'>): PlaybookStepStatus {
  switch (s.status) {
    case 'NOT_STARTED':
      return 'pending';
    case 'READY':
      return 'queued';
    case 'IN_PROGRESS':
      return 'running';
    case 'COMPLETED':
      return 'succeeded';
    case 'FAILED':
      return 'failed';
    case 'SKIPPED':
      return 'skipped';
    default:
      return 'cancelled';
  }
}

/** The idempotency key of a step: the same for every attempt and across restarts. */
export const stepKey = (c: ExecutionContext, s: PlaybookStep): string => `playbook-execution/${c.id}/${s.id}`;

const retryPolicy = (s: PlaybookStep): RetryPolicy => ({
  maxRetries: Math.max(0, s.retry.maxAttempts - 1),
  backoff: { initialMs: s.retry.initialMs, multiplier: s.retry.factor, maxMs: s.retry.maxMs },
});

/**
 * A new attempt: IN_PROGRESS, then either its outcome at once (instant work) or the runner's
 * call and a durable timeout. True when it ended at once and the execution moves on; false
 * while it holds its slot (the call is out, or a retry of an inline failure waits: as after a
 * runner's failed answer, nothing else starts for it until the next event).
 */
function begin(o: Draft, s: PlaybookStep): boolean {
  beginStep(s, o.at);
  const c = o.ctx;
  const scope = { inputs: c.inputs, steps: scopeSteps(c) };
  if (o.instant && o.instantLeft > 0) {
    const a = o.instant.run({ type: s.type, spec: s.spec, if: s.if, forEach: s.forEach, attempt: s.attempt, scope, budget: o.instantLeft }, o.at);
    o.instantLeft -= a.spent;
    if (a.outcome) return settleAttempt(o, s, a.outcome, false);
  }
  o.effects.push({
    type: 'concord.call',
    connector: STEP_CONNECTOR,
    operation: 'step',
    input: {
      tenant: c.tenant,
      executionId: c.id,
      stepId: s.id,
      type: s.type,
      spec: s.spec,
      if: s.if,
      forEach: s.forEach,
      attempt: s.attempt,
      timeoutMs: s.timeoutMs,
      idempotencyKey: stepKey(c, s),
      scope,
    },
    replyTo: `pbstep.${s.id}.${s.attempt}`,
  });
  const delay = s.timeoutMs + TIMEOUT_GRACE_MS;
  o.raise.push({ event: { type: 'execution.step.timeout', stepId: s.id, attempt: s.attempt, at: plusMs(o.at, delay) }, delay, id: timeoutTimer(s.id) });
  return false;
}

/** The steps of the phase the execution is in. */
const phaseSteps = (c: ExecutionContext): PlaybookStep[] => c.steps.filter((s) => s.phase === c.phase);

/** A failed step whose dependents run anyway. */
const continued = (s: PlaybookStep) => s.status === 'FAILED' && s.retryAt === null && s.onError === 'continue';

/**
 * Makes due steps READY and starts READY ones up to the parallelism cap. True when one of them
 * ended at once (instant work): the caller looks again, as that may release its dependents,
 * decide the outcome or end the phase.
 */
function startReady(o: Draft, steps: PlaybookStep[]): boolean {
  releaseDueSteps(steps, o.at, { skip: () => false, finished: continued });
  let running = steps.filter((s) => s.status === 'IN_PROGRESS').length;
  for (const s of steps) {
    if (running >= o.ctx.parallelism) break;
    if (s.status !== 'READY') continue;
    if (begin(o, s)) return true;
    running += 1;
  }
  return false;
}

/**
 * Moves the execution on: makes due steps READY, starts READY ones up to the parallelism cap,
 * and when a phase has nothing left to run, decides its outcome and goes on to the next
 * (main, then finally, then done). Iterative: an attempt that ends inline (instant work) is
 * settled without a nested `advance`, then the loop looks again; each turn takes a READY step
 * out of READY, so it ends.
 */
export function advance(o: Draft): void {
  const c = o.ctx;
  while (c.phase !== 'done') {
    const steps = phaseSteps(c);
    if ((c.outcome === null || c.phase === 'finally') && startReady(o, steps)) continue;
    const busy = steps.some((s) => s.status === 'IN_PROGRESS' || s.status === 'READY' || (s.status === 'FAILED' && s.retryAt !== null));
    if (busy) return;
    // nothing runs and nothing can start: whatever has not started will not
    for (const s of steps) if (s.status === 'NOT_STARTED') s.status = 'CANCELLED';
    const failed = steps.some((s) => s.status === 'FAILED' && !continued(s));
    if (c.phase === 'main') {
      c.outcome ??= failed ? 'failed' : 'succeeded';
      c.phase = 'finally';
    } else {
      if (failed && c.outcome === 'succeeded') {
        c.outcome = 'failed';
        c.error = `finally step ${steps.find((s) => s.status === 'FAILED')!.id} failed`;
      }
      c.phase = 'done';
    }
  }
}

/** Stops every running step of the current phase (their answers will be ignored) and what waits. */
function stopPhase(o: Draft): void {
  const steps = phaseSteps(o.ctx);
  const running = steps.filter((s) => s.status === 'IN_PROGRESS').map((s) => s.id);
  for (const s of steps) if (isCancellable(s)) o.cancel.push(timeoutTimer(s.id), retryTimer(s.id));
  cancelSteps(steps);
  if (running.length > 0) {
    // the runners watch for this: their AbortSignal fires (the answer, if any, is ignored)
    o.effects.push({ type: 'concord.call', connector: STEP_CONNECTOR, operation: 'abort', input: { executionId: o.ctx.id, stepIds: running }, replyTo: `pbabort.${o.ctx.id.slice(0, 8)}` });
  }
}

export function create(o: Draft, e: Extract<ExecutionEvent, { type: 'execution.create' }>): void {
  Object.assign(o.ctx, {
    tenant: e.tenant,
    playbookId: e.playbookId,
    playbookName: e.playbookName,
    playbookVersion: e.playbookVersion,
    trigger: e.trigger,
    inputs: e.inputs,
    parallelism: Math.max(1, e.parallelism),
    notify: e.notify ?? null,
    createdAt: e.at,
    createdBy: e.by,
    status: e.hold ? 'queued' : 'running',
    steps: e.steps.map((st) => {
      const s: PlaybookStep = { ...notStarted(st), errorCode: null, logs: [], skipReason: null, reused: false };
      const earlier = st.phase === 'main' ? e.reuse?.[st.id] : undefined;
      if (earlier) {
        s.status = 'COMPLETED';
        s.output = earlier.output ?? null;
        s.completedAt = e.at;
        s.reused = true;
      }
      return s;
    }),
  } satisfies Partial<ExecutionContext>);
}

export function start(o: Draft): void {
  o.ctx.status = 'running';
  o.ctx.startedAt ??= o.at;
  advance(o);
}

function keepLogs(s: PlaybookStep, logs: unknown): void {
  if (!Array.isArray(logs)) return;
  s.logs = [...s.logs, ...(logs as LogLine[])].slice(-MAX_LOG_LINES);
}

/** The outcome a runner answered with (a `.failed` answer is the call itself failing). */
function outcomeOf(e: ExecutionEvent): StepOutcome {
  const r = parseStepReply(e.type);
  if (r?.ok) {
    const out = (e as { output?: unknown }).output;
    if (out && typeof out === 'object' && ('ok' in out || 'skipped' in out)) return out as StepOutcome;
    return { ok: true, output: out ?? null };
  }
  const err = (e as { error?: { code?: string; message?: string; retryable?: boolean } }).error ?? {};
  return { ok: false, error: { code: err.code ?? 'STEP_FAILED', message: err.message ?? 'step failed', retryable: err.retryable !== false } };
}

/**
 * An attempt's outcome: done, skipped (its `if`), or a failure; `timed` when the attempt was a
 * call with a durable timeout to cancel. Does not move the execution on: true when the caller
 * should (not when a retry was scheduled).
 */
function settleAttempt(o: Draft, s: PlaybookStep, out: StepOutcome, timed: boolean): boolean {
  keepLogs(s, out.logs);
  if (timed) o.cancel.push(timeoutTimer(s.id));
  if ('skipped' in out) {
    completeStep(s, o.at, null);
    s.status = 'SKIPPED';
    s.skipReason = 'condition';
  } else if (out.ok) {
    completeStep(s, o.at, out.output);
    s.errorCode = null;
  } else {
    return recordFailure(o, s, out.error, timed);
  }
  return true;
}

/** A runner answered the current attempt: done, skipped (its `if`), or a failure. */
export function answer(o: Draft, e: ExecutionEvent): void {
  if (settleAttempt(o, stepOf(o.ctx, e)!, outcomeOf(e), true)) advance(o);
}

/** The durable timeout of an attempt fired before its answer. */
export function timeout(o: Draft, e: ExecutionEvent): void {
  const s = stepOf(o.ctx, e)!;
  fail(o, s, { code: 'TIMEOUT', message: `no answer within ${s.timeoutMs} ms (attempt ${s.attempt})`, retryable: true });
}

/** A failed attempt, then the execution moves on. */
function fail(o: Draft, s: PlaybookStep, error: { code: string; message: string; retryable: boolean }): void {
  if (recordFailure(o, s, error, true)) advance(o);
}

/**
 * A failed attempt: another after the backoff while attempts are left and the error may pass;
 * else the step's `onError`. Does not move the execution on: true when the caller should (not
 * when a retry was scheduled).
 */
function recordFailure(o: Draft, s: PlaybookStep, error: { code: string; message: string; retryable: boolean }, timed: boolean): boolean {
  if (timed) o.cancel.push(timeoutTimer(s.id));
  failStep(s, error.message);
  s.errorCode = error.code;
  const worthIt = error.retryable && (s.retry.on === null || s.retry.on.includes(error.code));
  const p = retryPolicy(s);
  if (worthIt && hasRetriesLeft(s, p) && o.ctx.outcome === null) {
    const delay = scheduleRetry(s, o.at, p);
    o.raise.push({ event: { type: 'execution.step.retryDue', stepId: s.id, attempt: s.attempt, at: s.retryAt! }, delay, id: retryTimer(s.id) });
    return false;
  }
  giveUpStep(s);
  const c = o.ctx;
  switch (s.onError) {
    case 'skip':
      s.status = 'SKIPPED';
      s.skipReason = 'error';
      break;
    case 'continue':
      break;
    case 'abort':
      if (c.phase === 'main') {
        c.outcome ??= 'failed';
        c.error ??= `step ${s.id} failed: ${error.message}`;
        stopPhase(o);
      }
      break;
    default:
      // retry exhausted: nothing new starts; what runs may finish, then the finally steps run
      if (c.phase === 'main') {
        c.outcome ??= 'failed';
        c.error ??= `step ${s.id} failed: ${error.message}`;
        for (const st of phaseSteps(c)) {
          if (st.status === 'READY' || st.status === 'NOT_STARTED' || (st.status === 'FAILED' && st.retryAt !== null)) {
            o.cancel.push(retryTimer(st.id));
            st.status = 'CANCELLED';
            st.retryAt = null;
          }
        }
      }
  }
  return true;
}

/** The backoff is over: the step runs again (when a slot is free). */
export function retryDue(o: Draft, e: ExecutionEvent): void {
  readyAgain(stepOf(o.ctx, e)!);
  advance(o);
}

/** Cancel: running steps are stopped, nothing new starts, the finally steps still run. */
export function cancel(o: Draft, e: Extract<ExecutionEvent, { type: 'execution.cancel' }>): void {
  const c = o.ctx;
  c.outcome = 'cancelled';
  c.error = e.reason ? `cancelled: ${e.reason}` : 'cancelled';
  stopPhase(o);
  c.status = c.status === 'queued' ? 'cancelled' : c.status;
  if (c.status === 'cancelled') {
    for (const s of c.steps) if (isCancellable(s)) s.status = 'CANCELLED';
    c.phase = 'done';
    return;
  }
  advance(o);
}

/** Entering a final state: stamp it, and tell whoever asked (the cron schedule). */
export function settle(o: Draft): void {
  const c = o.ctx;
  c.status = c.outcome ?? 'failed';
  c.finishedAt = o.at;
  if (c.notify) o.effects.push(sendToActor(c.notify, { type: 'schedule.executionEnded', executionId: c.id, status: c.status, at: o.at }));
}
