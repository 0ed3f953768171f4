import { setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../runtime/registry.js';
import { correlate, publish, type ConcordEffect } from './effects.js';
import { SAGA_DEFINITIONS, type SagaDefinition, type WorkflowType } from './saga-definitions.js';

/**
 * A saga (one workflow instance), built from a definition in `saga-definitions.ts`:
 *
 * ```
 * new ─start─► running ──last step done──► completed                         (COMPLETED)
 *              │ awaiting ⇄ backoff   (step timeout: retry with backoff)
 *              ├─ *FailedEvent / out of retries / whole-saga timeout ─► compensating (COMPENSATING)
 *              └─ cancel ─► compensating (CANCELLING; the step in flight is awaited first)
 * compensating: next ─► awaiting ⇄ backoff ─► next … ─► failed (FAILED) | cancelled (CANCELLED)
 *               a compensation out of retries ─► compensationFailed (COMPENSATION_FAILED)
 *               ─ operator retry ─► compensating
 * ```
 *
 * Commands go out as `publish` effects on `<svc>.<service>.<command>` with the command id as the
 * message id, and `correlate(commandId)` routes the service's answer back here. A reply counts
 * only when its `commandId` is the current attempt's: late, duplicate and foreign replies are
 * ignored (and counted). Every wait is an `after` on a named delay, which the runtime keeps as a
 * durable timer. Time arrives in events (`at`, a service event's `timestamp`); a timer's own
 * time is the deadline it was set for, so a journal replays to the same state.
 */

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
  workflowType: WorkflowType | null;
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
  workflowType: WorkflowType;
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

type Effect = ConcordEffect;

// ───────────────────────────── pure helpers ─────────────────────────────

const DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** `PT1M30S` -> 90000. Days, hours, minutes and (fractional) seconds. */
export function parseDuration(iso: string): number {
  const m = DURATION.exec(iso);
  if (!m || iso === 'P' || iso.endsWith('T')) throw new Error(`not an ISO-8601 duration: '${iso}'`);
  const [, d, h, min, s] = m.map((x) => (x === undefined ? 0 : Number(x)));
  return Math.round((((d! * 24 + h!) * 60 + min!) * 60 + s!) * 1000);
}

/** 150000 -> `PT2M30S`; whole seconds unless under one. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return 'PT0S';
  let rest = total;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  const secs = h === 0 && m === 0 && s < 1 ? String(s) : String(Math.round(s));
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${secs !== '0' ? `${secs}S` : ''}`;
}

/** A deterministic UUID-shaped id (version 8) from a seed: machines may not draw random ids. */
export function uuidFrom(seed: string): string {
  const words: string[] = [];
  for (let k = 0; k < 4; k++) {
    let h = 0x811c9dc5 ^ Math.imul(k + 1, 0x9e3779b1);
    for (let i = 0; i < seed.length; i++) {
      h ^= seed.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    words.push((h >>> 0).toString(16).padStart(8, '0'));
  }
  const hex = words.join('');
  const variant = ((parseInt(hex[16]!, 16) & 3) | 8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const iso = (ms: number) => new Date(ms).toISOString();
const ms = (s: string | null) => (s ? Date.parse(s) : 0);

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
  return Math.min(b.maxMs, Math.round(b.initialMs * b.multiplier ** Math.max(0, failedAttempt - 1)));
}

const pick = (from: Record<string, unknown>, keys: readonly string[]) => {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out;
};

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

/** What one transition does: the next context and the effects it emits. */
interface Outcome {
  ctx: SagaContext;
  effects: Effect[];
}

class Tx {
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

function commandBase(ctx: SagaContext, commandId: string, attempt: number) {
  const orderId = ctx.data.orderId;
  return { commandId, workflowId: ctx.workflowId, ...(typeof orderId === 'string' ? { orderId } : {}), correlationId: ctx.correlationId, attempt };
}

function resultsOf(ctx: SagaContext): Record<string, unknown> {
  return Object.assign({}, ...ctx.steps.map((s) => s.result ?? {}));
}

function sendStep(tx: Tx, i: number, attempt: number): void {
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

function sendCompensation(tx: Tx, attempt: number): void {
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
function undoOrder(ctx: SagaContext): number[] {
  const out: number[] = [];
  ctx.steps.forEach((s, i) => {
    if (ctx.plan.steps[i]!.compensation && (s.status === 'COMPLETED' || s.outcomeUnknown)) out.push(i);
  });
  return out.reverse();
}

function beginCompensation(tx: Tx, failedStep: string | null, error: SagaError, cancelled: boolean): void {
  tx.ctx.status = cancelled ? 'CANCELLING' : 'COMPENSATING';
  tx.ctx.failure = { step: failedStep, error };
  tx.ctx.failedAt = tx.now;
  tx.ctx.compensations = undoOrder(tx.ctx);
  tx.ctx.compensating = 0;
  tx.ctx.deadline = null;
  tx.announce('WorkflowFailedEvent', { workflowType: tx.ctx.workflowType, failedStep, error, compensationSteps: compensationNames(tx.ctx) });
}

function replyTime(ctx: SagaContext, e: ServiceReply): string {
  const t = typeof e.timestamp === 'string' ? Date.parse(e.timestamp) : NaN;
  const now = ms(ctx.now);
  return iso(Number.isFinite(t) && t > now ? t : now);
}

const errorOf = (e: ServiceReply, fallback: string): SagaError => ({
  code: typeof e.error?.code === 'string' ? e.error.code : fallback,
  message: typeof e.error?.message === 'string' ? e.error.message : `${e.type}`,
  details: e.error?.details && typeof e.error.details === 'object' ? e.error.details : {},
});

const isReply = (e: SagaEvent): e is ServiceReply => typeof (e as ServiceReply).commandId === 'string';

// ───────────────────────────── transitions ─────────────────────────────

function onStart(ctx: SagaContext, e: SagaStartEvent): Outcome {
  const tx = new Tx(ctx, e.at);
  tx.ctx = {
    ...tx.ctx,
    workflowType: e.workflowType,
    status: 'IN_PROGRESS',
    correlationId: e.correlationId,
    data: e.data,
    metadata: e.metadata,
    plan: e.plan,
    steps: e.plan.steps.map((p) => ({
      name: p.name,
      status: 'PENDING',
      attempt: 0,
      commandId: null,
      commandIds: [],
      startedAt: null,
      completedAt: null,
      result: null,
      error: null,
      outcomeUnknown: false,
      compensation: null,
    })),
    startedAt: e.at,
    sagaDeadline: iso(ms(e.at) + e.plan.timeoutMs),
  };
  tx.announce('WorkflowStartedEvent', { workflowType: e.workflowType, correlationId: e.correlationId, metadata: e.metadata });
  sendStep(tx, 0, 1);
  return tx.done();
}

function onStepSucceeded(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const result = pick(e, p.result);
  tx.set(i, { status: 'COMPLETED', completedAt: tx.now, result });
  const s = tx.step(i);
  tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(s.startedAt)), result });
  if (i + 1 < ctx.plan.steps.length) {
    sendStep(tx, i + 1, 1);
  } else {
    tx.ctx.status = 'COMPLETED';
    tx.ctx.completedAt = tx.now;
    tx.ctx.deadline = null;
    tx.announce('WorkflowCompletedEvent', {
      workflowType: ctx.workflowType,
      status: 'COMPLETED',
      duration: formatDuration(ms(tx.now) - ms(ctx.startedAt)),
      completedSteps: ctx.plan.steps.map((x) => x.name),
    });
  }
  return tx.done();
}

function onStepFailed(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const error = errorOf(e, `${p.name}_FAILED`);
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error });
  tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'FAILED', duration: formatDuration(ms(tx.now) - ms(tx.step(i).startedAt)), result: {}, error });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

function onStepTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const s = tx.step(i);
  if (s.attempt < p.maxAttempts) {
    tx.ctx.deadline = iso(ms(tx.now) + backoffMs(p.backoff, s.attempt));
    return tx.done();
  }
  const error: SagaError = { code: 'STEP_TIMEOUT', message: `${p.name} got no answer in ${s.attempt} attempts of ${formatDuration(p.timeoutMs)}`, details: { attempts: s.attempt } };
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error, outcomeUnknown: true });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

function onRetry(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  sendStep(tx, ctx.current, tx.step(ctx.current).attempt + 1);
  return tx.done();
}

function onSagaTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.sagaDeadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  const error: SagaError = { code: 'WORKFLOW_TIMEOUT', message: `the workflow did not finish in ${formatDuration(ctx.plan.timeoutMs)}`, details: {} };
  tx.set(i, { status: 'FAILED', completedAt: tx.now, error, outcomeUnknown: true });
  beginCompensation(tx, p.name, error, false);
  return tx.done();
}

/** Cancel: a step in flight stays awaited (until its deadline) and is compensated unless it fails. */
function onCancel(ctx: SagaContext, e: { at: string; reason: string; initiatedBy: string }, inFlight: boolean): Outcome {
  const tx = new Tx(ctx, e.at > (ctx.now ?? '') ? e.at : ctx.now!);
  const i = ctx.current;
  tx.ctx.cancel = { reason: e.reason, initiatedBy: e.initiatedBy, at: tx.now };
  // assume the step in flight (or between attempts) happened until it says otherwise
  tx.set(i, { outcomeUnknown: true });
  const deadline = ctx.deadline;
  beginCompensation(tx, ctx.plan.steps[i]!.name, { code: 'WORKFLOW_CANCELLED', message: e.reason, details: { initiatedBy: e.initiatedBy } }, true);
  if (inFlight) tx.ctx.deadline = deadline;
  else tx.set(i, { status: 'FAILED', completedAt: tx.now, error: { code: 'CANCELLED', message: 'cancelled between attempts', details: {} } });
  return tx.done();
}

function onInFlightSettled(ctx: SagaContext, e: ServiceReply | null, ok: boolean): Outcome {
  const tx = new Tx(ctx, e ? replyTime(ctx, e) : ctx.deadline!);
  const i = ctx.current;
  const p = ctx.plan.steps[i]!;
  if (e && ok) {
    const result = pick(e, p.result);
    tx.set(i, { status: 'COMPLETED', completedAt: tx.now, result, outcomeUnknown: false });
    tx.announce('SagaStepCompletedEvent', { stepName: p.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(tx.step(i).startedAt)), result });
  } else if (e) {
    tx.set(i, { status: 'FAILED', completedAt: tx.now, error: errorOf(e, `${p.name}_FAILED`), outcomeUnknown: false });
    tx.ctx.compensations = tx.ctx.compensations.filter((x) => x !== i);
  } else {
    tx.set(i, { status: 'FAILED', completedAt: tx.now, error: { code: 'STEP_TIMEOUT', message: `${p.name} did not answer before its deadline`, details: {} } });
  }
  tx.ctx.deadline = null;
  return tx.done();
}

function onCompensationDispatch(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.now!);
  sendCompensation(tx, 1);
  return tx.done();
}

function onCompensated(ctx: SagaContext, e: ServiceReply): Outcome {
  const tx = new Tx(ctx, replyTime(ctx, e));
  const i = ctx.compensations[ctx.compensating]!;
  const c = ctx.plan.steps[i]!.compensation!;
  const s = tx.step(i);
  tx.set(i, { status: 'COMPENSATED', compensation: { ...s.compensation!, status: 'COMPLETED', completedAt: tx.now } });
  tx.announce('SagaStepCompletedEvent', { stepName: c.name, status: 'SUCCESS', duration: formatDuration(ms(tx.now) - ms(s.compensation!.startedAt)), result: pick(e, ['compensationId']) });
  tx.ctx.compensating += 1;
  tx.ctx.deadline = null;
  return tx.done();
}

function onCompensationTimedOut(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.compensations[ctx.compensating]!;
  const c = ctx.plan.steps[i]!.compensation!;
  const s = tx.step(i);
  if (s.compensation!.attempt < c.maxAttempts) {
    tx.ctx.deadline = iso(ms(tx.now) + backoffMs(ctx.plan.steps[i]!.backoff, s.compensation!.attempt));
    return tx.done();
  }
  tx.set(i, { compensation: { ...s.compensation!, status: 'FAILED' } });
  tx.ctx.status = 'COMPENSATION_FAILED';
  tx.ctx.deadline = null;
  const error: SagaError = { code: 'COMPENSATION_FAILED', message: `${c.name} got no answer in ${s.compensation!.attempt} attempts`, details: { compensates: s.name } };
  tx.announce('WorkflowFailedEvent', { workflowType: ctx.workflowType, failedStep: c.name, error, compensationSteps: compensationNames(tx.ctx) });
  return tx.done();
}

function onCompensationRetry(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.deadline!);
  const i = ctx.compensations[ctx.compensating]!;
  sendCompensation(tx, tx.step(i).compensation!.attempt + 1);
  return tx.done();
}

function onOperatorRetry(ctx: SagaContext, e: { at: string }): Outcome {
  const tx = new Tx(ctx, e.at > (ctx.now ?? '') ? e.at : ctx.now!);
  tx.ctx.status = ctx.cancel ? 'CANCELLING' : 'COMPENSATING';
  const i = ctx.compensations[ctx.compensating]!;
  // a fresh round of attempts; command ids stay unique by continuing the attempt count
  const s = tx.step(i);
  const next = s.compensation!.attempt + 1;
  const c = ctx.plan.steps[i]!.compensation!;
  tx.ctx.plan = { ...ctx.plan, steps: ctx.plan.steps.map((p, k) => (k === i ? { ...p, compensation: { ...c, maxAttempts: s.compensation!.attempt + c.maxAttempts } } : p)) };
  sendCompensation(tx, next);
  return tx.done();
}

function onFinished(ctx: SagaContext): Outcome {
  const tx = new Tx(ctx, ctx.now!);
  tx.ctx.status = ctx.cancel ? 'CANCELLED' : 'FAILED';
  tx.ctx.completedAt = tx.now;
  tx.ctx.deadline = null;
  return tx.done();
}

// ───────────────────────────── the machine ─────────────────────────────

const current = (ctx: SagaContext) => ctx.plan.steps[ctx.current];
const isCurrent = (ctx: SagaContext, e: SagaEvent) => isReply(e) && e.commandId === ctx.steps[ctx.current]?.commandId;
const compensationIndex = (ctx: SagaContext) => ctx.compensations[ctx.compensating];

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

const emptyContext = (id: string): SagaContext => ({
  workflowId: id,
  workflowType: null,
  status: 'NEW',
  correlationId: null,
  data: {},
  metadata: {},
  plan: { timeoutMs: 0, events: 'concord.events', steps: [] },
  steps: [],
  current: 0,
  compensations: [],
  compensating: 0,
  startedAt: null,
  completedAt: null,
  failedAt: null,
  now: null,
  deadline: null,
  sagaDeadline: null,
  failure: null,
  cancel: null,
  ignoredReplies: 0,
  eventSeq: 0,
});

const remaining = (ctx: SagaContext, until: string | null) => Math.max(0, ms(until) - ms(ctx.now));

/** Builds the saga machine for a set of definitions (one machine runs every saga type). */
export function createSagaMachine(defs: readonly SagaDefinition[]) {
  const replies = replyTypes(defs);
  const base = setup({
    types: {
      context: {} as SagaContext,
      events: {} as SagaEvent,
      input: {} as { id: string; tenant: string | null },
      emitted: {} as ConcordEffect,
    },
  });
  const apply = (fn: (ctx: SagaContext, e: SagaEvent) => Outcome) =>
    base.enqueueActions(({ context, event, enqueue }) => {
      const out = fn(context, event);
      enqueue.assign(out.ctx);
      for (const eff of out.effects) enqueue.emit(eff);
    });
  const on = (transitions: (type: string) => unknown[]) => Object.fromEntries(replies.map((t) => [t, transitions(t)]));

  return base.extend({
    guards: {
      isStepSuccess: ({ context, event }) => isCurrent(context, event) && event.type === current(context)?.success,
      isStepFailure: ({ context, event }) => isCurrent(context, event) && event.type === current(context)?.failure,
      hasAttemptsLeft: ({ context }) => {
        const s = context.steps[context.current];
        return Boolean(s && s.attempt < current(context)!.maxAttempts);
      },
      isCompensationSuccess: ({ context, event }) => {
        const i = compensationIndex(context);
        if (i === undefined || !isReply(event)) return false;
        return event.commandId === context.steps[i]!.compensation?.commandId && event.type === context.plan.steps[i]!.compensation!.success;
      },
      compensationAttemptsLeft: ({ context }) => {
        const i = compensationIndex(context)!;
        return context.steps[i]!.compensation!.attempt < context.plan.steps[i]!.compensation!.maxAttempts;
      },
      hasCompensationLeft: ({ context }) => compensationIndex(context) !== undefined,
      isCompleted: ({ context }) => context.status === 'COMPLETED',
      isCancelling: ({ context }) => context.cancel !== null,
    },
    actions: {
      start: apply((ctx, e) => onStart(ctx, e as SagaStartEvent)),
      stepSucceeded: apply((ctx, e) => onStepSucceeded(ctx, e as ServiceReply)),
      stepFailed: apply((ctx, e) => onStepFailed(ctx, e as ServiceReply)),
      stepTimedOut: apply((ctx) => onStepTimedOut(ctx)),
      retryStep: apply((ctx) => onRetry(ctx)),
      sagaTimedOut: apply((ctx) => onSagaTimedOut(ctx)),
      cancelInFlight: apply((ctx, e) => onCancel(ctx, e as { at: string; reason: string; initiatedBy: string }, true)),
      cancelBetweenAttempts: apply((ctx, e) => onCancel(ctx, e as { at: string; reason: string; initiatedBy: string }, false)),
      inFlightSucceeded: apply((ctx, e) => onInFlightSettled(ctx, e as ServiceReply, true)),
      inFlightFailed: apply((ctx, e) => onInFlightSettled(ctx, e as ServiceReply, false)),
      inFlightUnknown: apply((ctx) => onInFlightSettled(ctx, null, false)),
      dispatchCompensation: apply((ctx) => onCompensationDispatch(ctx)),
      compensated: apply((ctx, e) => onCompensated(ctx, e as ServiceReply)),
      compensationTimedOut: apply((ctx) => onCompensationTimedOut(ctx)),
      retryCompensation: apply((ctx) => onCompensationRetry(ctx)),
      operatorRetry: apply((ctx, e) => onOperatorRetry(ctx, e as { at: string })),
      finish: apply((ctx) => onFinished(ctx)),
      ignoreReply: base.assign({ ignoredReplies: ({ context }) => context.ignoredReplies + 1 }),
    },
    delays: {
      sagaTimeout: ({ context }) => remaining(context, context.sagaDeadline),
      stepTimeout: ({ context }) => remaining(context, context.deadline),
      retryBackoff: ({ context }) => remaining(context, context.deadline),
      inFlightTimeout: ({ context }) => remaining(context, context.deadline),
      compensationTimeout: ({ context }) => remaining(context, context.deadline),
      compensationBackoff: ({ context }) => remaining(context, context.deadline),
    },
  }).createMachine({
    id: 'saga',
    context: ({ input }) => emptyContext(input.id),
    initial: 'new',
    // late, duplicate and foreign replies are accepted and ignored in every state
    on: on(() => [{ actions: 'ignoreReply' }]) as never,
    states: {
      new: {
        on: { 'saga.start': { target: 'running', actions: 'start' } },
      },
      running: {
        initial: 'awaiting',
        after: { sagaTimeout: { target: 'compensating', actions: 'sagaTimedOut' } },
        states: {
          awaiting: {
            after: {
              stepTimeout: [
                { guard: 'hasAttemptsLeft', target: 'backoff', actions: 'stepTimedOut' },
                { target: '#saga.compensating', actions: 'stepTimedOut' },
              ],
            },
            on: {
              ...(on(() => [
                { guard: 'isStepSuccess', target: 'settled', actions: 'stepSucceeded' },
                { guard: 'isStepFailure', target: '#saga.compensating', actions: 'stepFailed' },
              ]) as object),
              'saga.cancel': { target: '#saga.compensating.awaitingInFlight', actions: 'cancelInFlight' },
            },
          },
          // a step just completed: on to the next one, or done
          settled: {
            always: [{ guard: 'isCompleted', target: '#saga.completed' }, { target: 'awaiting' }],
          },
          backoff: {
            after: { retryBackoff: { target: 'awaiting', actions: 'retryStep' } },
            on: { 'saga.cancel': { target: '#saga.compensating', actions: 'cancelBetweenAttempts' } },
          },
        },
      },
      compensating: {
        initial: 'next',
        states: {
          awaitingInFlight: {
            after: { inFlightTimeout: { target: 'next', actions: 'inFlightUnknown' } },
            on: on(() => [
              { guard: 'isStepSuccess', target: 'next', actions: 'inFlightSucceeded' },
              { guard: 'isStepFailure', target: 'next', actions: 'inFlightFailed' },
            ]) as never,
          },
          next: {
            always: [
              { guard: 'hasCompensationLeft', target: 'awaiting', actions: 'dispatchCompensation' },
              { guard: 'isCancelling', target: '#saga.cancelled', actions: 'finish' },
              { target: '#saga.failed', actions: 'finish' },
            ],
          },
          awaiting: {
            after: {
              compensationTimeout: [
                { guard: 'compensationAttemptsLeft', target: 'backoff', actions: 'compensationTimedOut' },
                { target: '#saga.compensationFailed', actions: 'compensationTimedOut' },
              ],
            },
            on: on(() => [{ guard: 'isCompensationSuccess', target: 'next', actions: 'compensated' }]) as never,
          },
          backoff: {
            after: { compensationBackoff: { target: 'awaiting', actions: 'retryCompensation' } },
          },
        },
      },
      completed: {},
      failed: {},
      cancelled: {},
      compensationFailed: {
        on: { 'saga.retryCompensation': { target: 'compensating.awaiting', actions: 'operatorRetry' } },
      },
    },
  });
}

export const sagaMachine = createSagaMachine(Object.values(SAGA_DEFINITIONS));
export const sagaVersion = 1;

/** The saga's columns: status, and attributes the workflow queries filter on. */
export function projectSaga(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as SagaContext;
  const durationMs = c.completedAt && c.startedAt ? ms(c.completedAt) - ms(c.startedAt) : null;
  return {
    status: c.status,
    tenant: null,
    attrs: {
      workflowType: c.workflowType,
      correlationId: c.correlationId,
      currentStep: currentStepName(c),
      startedAt: c.startedAt,
      completedAt: c.completedAt,
      failedAt: c.failedAt,
      cancelledAt: c.cancel?.at ?? null,
      durationMs,
      compensated: c.steps.filter((s) => s.status === 'COMPENSATED').length,
    },
  };
}

export const sagaType: ActorTypeDefinition<typeof sagaMachine> = {
  type: 'saga',
  machine: sagaMachine,
  version: sagaVersion,
  project: projectSaga,
};
