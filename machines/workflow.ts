import { assign, enqueueActions, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../runtime/registry.js';
import { correlate, publish, sendToActor, type ConcordEffect } from './effects.js';
import { evaluateCondition } from './workflow-condition.js';
import type { WorkflowType } from './workflow-templates.js';

/**
 * An integration workflow (the spec's IntegrationWorkflow with its WorkflowSteps):
 *
 * ```
 * draft ─create─► notStarted ─start─► blocked ──(every dependency COMPLETED)──► running ─► completed
 *                     │                  └──(a dependency FAILED/CANCELLED)──► failed ◄──┘   ▲
 *                     └─────────── cancel (from any unfinished state) ──► cancelled   └─retry─┘
 * ```
 *
 * The step DAG lives in context: a step whose dependencies are all COMPLETED (or SKIPPED)
 * becomes READY (or SKIPPED when its `condition` is false), so independent steps run in
 * parallel. Manual steps wait for `execute` then `complete`; automated steps
 * (`configuration.action`) start at once: they publish to a subject and wait for the correlated
 * `workflow.step.reply`, or call a connector and wait for its `.done`/`.failed`, each attempt
 * bounded by a durable timeout (a delayed raise). A failure with retries left waits out its
 * backoff (another delayed raise) and becomes READY again; without, the workflow fails, and
 * `retry` re-runs the step.
 *
 * Workflows that depend on others ask each of them (`workflow.watch`) to report back; a
 * workflow tells its dependents when it completes, fails or is cancelled. No polling.
 * Time arrives in events (`at`); ids come from the caller. Every change is published on
 * `concord.events.workflow.*`.
 */

export const STEP_STATUSES = ['NOT_STARTED', 'READY', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
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

export interface WorkflowStep extends StepInit {
  status: StepStatus;
  actualDuration: number | null;
  startedAt: string | null;
  completedAt: string | null;
  errorMessage: string | null;
  retryCount: number;
  /** What completed the step (the reply's or the caller's `output`). */
  output: unknown;
  /** Attempts started; replies and timers of an older attempt are ignored. */
  attempt: number;
  correlationId: string | null;
  /** When a failed step with retries left becomes READY again. */
  retryAt: string | null;
}

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

export const WORKFLOW_EVENT_SUBJECT = 'concord.events.workflow';
const DEFAULT_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 3_600_000;

export const actionOf = (s: Pick<StepInit, 'configuration'>): StepAction | null => {
  const a = s.configuration?.action as StepAction | undefined;
  return a && typeof a === 'object' && (a.type === 'publish' || a.type === 'connector') ? a : null;
};
const conditionOf = (s: StepInit): string | null => (typeof s.configuration?.condition === 'string' ? s.configuration.condition : null);
const numberConf = (s: StepInit, key: string, def: number): number => {
  const v = s.configuration?.[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : def;
};
/** Retries allowed: the step's maxRetries, else 3 for automated steps and 0 for manual ones. */
export const retriesOf = (s: StepInit): number => s.maxRetries ?? (actionOf(s) ? 3 : 0);
const minutes = (from: string | null, to: string | null): number | null =>
  from && to ? Math.round(((Date.parse(to) - Date.parse(from)) / 60_000) * 100) / 100 : null;
const plus = (at: string, ms: number): string => new Date(Date.parse(at) + ms).toISOString();

/** What one reduction wants done besides the new context. */
interface Out {
  ctx: WorkflowContext;
  effects: ConcordEffect[];
  raise: Array<{ event: WorkflowEvent; delay: number; id: string }>;
  cancel: string[];
}

const timeoutId = (stepId: string) => `timeout.${stepId}`;
const retryId = (stepId: string) => `retry.${stepId}`;

function announce(o: Out, kind: string, step?: WorkflowStep): void {
  const c = o.ctx;
  o.effects.push(
    publish(step ? `${WORKFLOW_EVENT_SUBJECT}.step.${kind}` : `${WORKFLOW_EVENT_SUBJECT}.${kind}`, {
      workflowId: c.id,
      workflowType: c.workflowType,
      vendorId: c.vendorId,
      partnerId: c.partnerId,
      integrationId: c.integrationId,
      status: kind === 'blocked' ? 'BLOCKED' : statusOfContext(o),
      at: c.lastEventAt,
      ...(step
        ? { step: { id: step.id, stepNumber: step.stepNumber, name: step.name, status: step.status, retryCount: step.retryCount, attempt: step.attempt, errorMessage: step.errorMessage, retryAt: step.retryAt } }
        : { currentStep: c.currentStep, errorMessage: c.errorMessage }),
    }),
  );
}

// the workflow's status as the published events carry it (the state is not known to the reducer)
const statusOfContext = (o: Out): string => o.ctx.outcome ?? (o.ctx.startedAt ? 'IN_PROGRESS' : 'NOT_STARTED');

function conditionScope(c: WorkflowContext) {
  return {
    workflow: { id: c.id, name: c.name, workflowType: c.workflowType, vendorId: c.vendorId, partnerId: c.partnerId, integrationId: c.integrationId, metadata: c.metadata },
    steps: Object.fromEntries(c.steps.map((s) => [String(s.stepNumber), { status: s.status, output: s.output ?? null, retryCount: s.retryCount }])),
  };
}

function beginAttempt(o: Out, s: WorkflowStep, at: string): void {
  s.status = 'IN_PROGRESS';
  s.startedAt ??= at;
  s.attempt += 1;
  s.retryAt = null;
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
    const ms = numberConf(s, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    o.raise.push({ event: { type: 'workflow.step.timeout', stepId: s.id, attempt: s.attempt, at: plus(at, ms) }, delay: ms, id: timeoutId(s.id) });
  }
  announce(o, 'started', s);
}

/** Makes every step whose dependencies are done READY (or SKIPPED), starting automated ones. */
function advance(o: Out, at: string): void {
  const byNumber = new Map(o.ctx.steps.map((s) => [s.stepNumber, s]));
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of o.ctx.steps) {
      if (s.status !== 'NOT_STARTED') continue;
      const done = s.dependencies.every((n) => ['COMPLETED', 'SKIPPED'].includes(byNumber.get(n)?.status ?? ''));
      if (!done) continue;
      changed = true;
      const cond = conditionOf(s);
      if (cond !== null && !evaluateCondition(cond, conditionScope(o.ctx))) {
        s.status = 'SKIPPED';
        s.completedAt = at;
        announce(o, 'skipped', s);
        continue;
      }
      s.status = 'READY';
      announce(o, 'ready', s);
      if (actionOf(s)) beginAttempt(o, s, at);
    }
  }
  refreshCurrent(o.ctx);
}

function refreshCurrent(c: WorkflowContext): void {
  const pick = (st: StepStatus) => c.steps.filter((s) => s.status === st).map((s) => s.stepNumber).sort((a, b) => a - b)[0];
  c.currentStep = pick('IN_PROGRESS') ?? pick('READY') ?? pick('FAILED') ?? c.currentStep;
}

function completeStep(o: Out, s: WorkflowStep, output: unknown, at: string): void {
  s.status = 'COMPLETED';
  s.completedAt = at;
  s.actualDuration = minutes(s.startedAt, at);
  s.output = output ?? null;
  s.errorMessage = null;
  s.correlationId = null;
  o.cancel.push(timeoutId(s.id));
  announce(o, 'completed', s);
  advance(o, at);
}

function failStep(o: Out, s: WorkflowStep, message: string, at: string): void {
  o.cancel.push(timeoutId(s.id));
  s.status = 'FAILED';
  s.errorMessage = message;
  s.correlationId = null;
  if (s.retryCount < retriesOf(s)) {
    s.retryCount += 1;
    const base = numberConf(s, 'retryBackoffMs', DEFAULT_BACKOFF_MS);
    const delay = Math.min(MAX_BACKOFF_MS, base * 2 ** (s.retryCount - 1));
    s.retryAt = plus(at, delay);
    o.raise.push({ event: { type: 'workflow.step.retryDue', stepId: s.id, attempt: s.attempt, at: s.retryAt }, delay, id: retryId(s.id) });
    announce(o, 'retrying', s);
  } else {
    s.retryAt = null;
    o.ctx.errorMessage = `step ${s.stepNumber} (${s.name}) failed: ${message}`;
    announce(o, 'failed', s);
  }
  refreshCurrent(o.ctx);
}

function readyAgain(o: Out, s: WorkflowStep, at: string): void {
  s.status = 'READY';
  s.retryAt = null;
  announce(o, 'ready', s);
  if (actionOf(s)) beginAttempt(o, s, at);
  refreshCurrent(o.ctx);
}

const errorText = (e: unknown): string =>
  typeof e === 'string' ? e : e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : 'step failed';

const findStep = (c: WorkflowContext, id: string | undefined) => c.steps.find((s) => s.id === id);

/** `wfstep.<stepId>.<attempt>.done|failed` to its parts. */
function parseCallReply(type: string): { stepId: string; attempt: number; ok: boolean } | null {
  const m = /^wfstep\.([^.]+)\.(\d+)\.(done|failed)$/.exec(type);
  return m ? { stepId: m[1]!, attempt: Number(m[2]), ok: m[3] === 'done' } : null;
}

/** The step an event is about, when the event still applies to it. */
function stepOf(c: WorkflowContext, e: WorkflowEvent): WorkflowStep | undefined {
  switch (e.type) {
    case 'workflow.step.execute':
      return findStep(c, e.stepId)?.status === 'READY' ? findStep(c, e.stepId) : undefined;
    case 'workflow.step.complete':
    case 'workflow.step.fail':
      return findStep(c, e.stepId)?.status === 'IN_PROGRESS' ? findStep(c, e.stepId) : undefined;
    case 'workflow.step.retry':
      return findStep(c, e.stepId)?.status === 'FAILED' ? findStep(c, e.stepId) : undefined;
    case 'workflow.step.reply':
      return c.steps.find((s) => s.status === 'IN_PROGRESS' && s.correlationId !== null && s.correlationId === e.correlationId);
    case 'workflow.step.timeout': {
      const s = findStep(c, e.stepId);
      return s?.status === 'IN_PROGRESS' && s.attempt === e.attempt ? s : undefined;
    }
    case 'workflow.step.retryDue': {
      const s = findStep(c, e.stepId);
      return s?.status === 'FAILED' && s.retryAt !== null && s.attempt === e.attempt ? s : undefined;
    }
    default: {
      const r = parseCallReply(e.type);
      if (!r) return undefined;
      const s = findStep(c, r.stepId);
      return s?.status === 'IN_PROGRESS' && s.attempt === r.attempt ? s : undefined;
    }
  }
}

/** The pure heart of the machine: one event applied to a copy of the context. */
function reduce(context: WorkflowContext, e: WorkflowEvent): Out {
  const ctx = JSON.parse(JSON.stringify(context)) as WorkflowContext;
  const o: Out = { ctx, effects: [], raise: [], cancel: [] };
  const at = ('at' in e && typeof e.at === 'string' ? e.at : null) ?? ctx.lastEventAt ?? ctx.createdAt ?? new Date(0).toISOString();
  ctx.lastEventAt = at;
  const s = findStep(ctx, stepOf(context, e)?.id);
  switch (e.type) {
    case 'workflow.create':
      Object.assign(ctx, {
        name: e.name,
        description: e.description ?? null,
        workflowType: e.workflowType,
        vendorId: e.vendorId ?? null,
        partnerId: e.partnerId ?? null,
        integrationId: e.integrationId ?? null,
        dependencies: e.dependencies ?? [],
        estimatedDuration: e.estimatedDuration ?? null,
        metadata: e.metadata ?? null,
        createdAt: e.at,
        createdBy: e.by,
        steps: e.steps.map((st) => ({
          ...st,
          status: 'NOT_STARTED',
          actualDuration: null,
          startedAt: null,
          completedAt: null,
          errorMessage: null,
          retryCount: 0,
          output: null,
          attempt: 0,
          correlationId: null,
          retryAt: null,
        })),
      });
      announce(o, 'created');
      break;
    case 'workflow.start':
      if (ctx.dependencies.length > 0) {
        for (const dep of ctx.dependencies) o.effects.push(sendToActor({ type: 'workflow', id: dep }, { type: 'workflow.watch', dependent: ctx.id, at }));
        announce(o, 'blocked');
      }
      break;
    case 'workflow.watch':
      if (!ctx.dependents.includes(e.dependent)) ctx.dependents.push(e.dependent);
      if (ctx.outcome) o.effects.push(tell(ctx, e.dependent, at));
      break;
    case 'workflow.dependencyCompleted':
      if (!ctx.dependenciesCompleted.includes(e.workflowId)) ctx.dependenciesCompleted.push(e.workflowId);
      break;
    case 'workflow.dependencyFailed':
      ctx.errorMessage = `dependency workflow ${e.workflowId} is ${e.status}`;
      break;
    case 'workflow.step.execute':
      if (s) beginAttempt(o, s, at);
      refreshCurrent(ctx);
      break;
    case 'workflow.step.complete':
      if (s) completeStep(o, s, e.output, at);
      break;
    case 'workflow.step.fail':
      if (s) failStep(o, s, e.errorMessage, at);
      break;
    case 'workflow.step.reply':
      if (s) {
        if (e.status === 'succeeded') completeStep(o, s, e.output, at);
        else failStep(o, s, errorText(e.error), at);
      }
      break;
    case 'workflow.step.timeout':
      if (s) failStep(o, s, `no reply within ${numberConf(s, 'timeoutMs', DEFAULT_TIMEOUT_MS)} ms (attempt ${s.attempt})`, at);
      break;
    case 'workflow.step.retryDue':
      if (s) readyAgain(o, s, at);
      break;
    case 'workflow.step.retry':
      if (s) {
        if (s.retryAt !== null) o.cancel.push(retryId(s.id));
        else s.retryCount += 1;
        ctx.errorMessage = null;
        readyAgain(o, s, at);
      }
      break;
    case 'workflow.cancel':
      for (const st of ctx.steps) {
        o.cancel.push(timeoutId(st.id), retryId(st.id));
        if (['NOT_STARTED', 'READY', 'IN_PROGRESS'].includes(st.status) || (st.status === 'FAILED' && st.retryAt !== null)) {
          st.status = 'CANCELLED';
          st.retryAt = null;
          st.correlationId = null;
        }
      }
      ctx.cancelledAt = at;
      ctx.errorMessage = e.reason ? `cancelled: ${e.reason}` : ctx.errorMessage;
      break;
    default: {
      const r = parseCallReply(e.type);
      if (r && s) {
        if (r.ok) completeStep(o, s, (e as { output?: unknown }).output, at);
        else failStep(o, s, errorText((e as { error?: unknown }).error), at);
      }
    }
  }
  return o;
}

function tell(c: WorkflowContext, dependent: string, at: string): ConcordEffect {
  return c.outcome === 'COMPLETED'
    ? sendToActor({ type: 'workflow', id: dependent }, { type: 'workflow.dependencyCompleted', workflowId: c.id, at })
    : sendToActor({ type: 'workflow', id: dependent }, { type: 'workflow.dependencyFailed', workflowId: c.id, status: c.outcome ?? 'FAILED', at });
}

/** Entering a terminal state: stamp it, announce it and tell every dependent. */
function settle(context: WorkflowContext, outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED'): Out {
  const ctx = JSON.parse(JSON.stringify(context)) as WorkflowContext;
  const o: Out = { ctx, effects: [], raise: [], cancel: [] };
  const at = ctx.lastEventAt ?? ctx.createdAt!;
  ctx.outcome = outcome;
  if (outcome === 'COMPLETED') {
    ctx.completedAt = at;
    ctx.actualDuration = minutes(ctx.startedAt, at);
    ctx.currentStep = null;
    ctx.errorMessage = null;
  }
  if (outcome === 'CANCELLED') ctx.completedAt = at;
  announce(o, outcome.toLowerCase());
  for (const d of ctx.dependents) o.effects.push(tell(ctx, d, at));
  return o;
}

/** Entering running: the first time it stamps startedAt; every time it makes due steps READY. */
function enterRunning(context: WorkflowContext): Out {
  const ctx = JSON.parse(JSON.stringify(context)) as WorkflowContext;
  const o: Out = { ctx, effects: [], raise: [], cancel: [] };
  const at = ctx.lastEventAt ?? ctx.createdAt!;
  const first = ctx.startedAt === null;
  ctx.startedAt ??= at;
  ctx.outcome = null;
  if (first) announce(o, 'started');
  advance(o, at);
  return o;
}

const stepEvent = (type: string) => ({ [type]: { guard: 'appliesToStep', actions: 'apply' } });

export const workflowMachine = setup({
  types: {
    context: {} as WorkflowContext,
    events: {} as WorkflowEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as ConcordEffect,
  },
  guards: {
    hasDependencies: ({ context }) => context.dependencies.length > 0,
    dependenciesMet: ({ context }) => context.dependencies.every((d) => context.dependenciesCompleted.includes(d)),
    appliesToStep: ({ context, event }) => stepOf(context, event) !== undefined,
    allStepsDone: ({ context }) => context.steps.every((s) => s.status === 'COMPLETED' || s.status === 'SKIPPED'),
    aStepFailedForGood: ({ context }) => context.steps.some((s) => s.status === 'FAILED' && s.retryAt === null),
  },
  actions: {
    ignore: assign(() => ({})),
    // one reduction: the new context, then its timers and effects, all from the same pure step
    apply: enqueueActions(({ context, event, enqueue }) => {
      const o = reduce(context, event);
      enqueue.assign(() => o.ctx);
      for (const id of o.cancel) enqueue.cancel(id);
      for (const r of o.raise) enqueue.raise(r.event, { delay: r.delay, id: r.id });
      for (const e of o.effects) enqueue.emit(e);
    }),
    run: enqueueActions(({ context, enqueue }) => {
      const o = enterRunning(context);
      enqueue.assign(() => o.ctx);
      for (const r of o.raise) enqueue.raise(r.event, { delay: r.delay, id: r.id });
      for (const e of o.effects) enqueue.emit(e);
    }),
    settle: enqueueActions(({ context, enqueue }, params: { outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED' }) => {
      const o = settle(context, params.outcome);
      enqueue.assign(() => o.ctx);
      for (const e of o.effects) enqueue.emit(e);
    }),
  },
}).createMachine({
  id: 'workflow',
  context: ({ input }) => ({
    id: input.id,
    name: '',
    description: null,
    workflowType: null,
    vendorId: null,
    partnerId: null,
    integrationId: null,
    dependencies: [],
    dependenciesCompleted: [],
    dependents: [],
    estimatedDuration: null,
    actualDuration: null,
    startedAt: null,
    completedAt: null,
    cancelledAt: null,
    currentStep: null,
    errorMessage: null,
    metadata: null,
    steps: [],
    outcome: null,
    createdAt: null,
    createdBy: null,
    lastEventAt: null,
  }),
  initial: 'draft',
  on: {
    'workflow.watch': { actions: 'apply' },
    // a reply to an attempt that timed out or was cancelled, or a dependency reporting back after
    // this workflow stopped waiting: accepted (so the sender does not dead-letter it) and ignored
    'workflow.step.reply': { actions: 'ignore' },
    'wfstep.*': { actions: 'ignore' },
    'workflow.dependencyCompleted': { actions: 'ignore' },
    'workflow.dependencyFailed': { actions: 'ignore' },
  },
  states: {
    draft: {
      on: { 'workflow.create': { target: 'notStarted', actions: 'apply' } },
    },
    notStarted: {
      on: {
        'workflow.start': [
          { guard: 'hasDependencies', target: 'blocked', actions: 'apply' },
          { target: 'running', actions: 'apply' },
        ],
        'workflow.cancel': { target: 'cancelled', actions: 'apply' },
      },
    },
    blocked: {
      always: { guard: 'dependenciesMet', target: 'running' },
      on: {
        'workflow.dependencyCompleted': { actions: 'apply' },
        'workflow.dependencyFailed': { target: 'failed', actions: 'apply' },
        'workflow.cancel': { target: 'cancelled', actions: 'apply' },
      },
    },
    running: {
      entry: 'run',
      always: [
        { guard: 'allStepsDone', target: 'completed' },
        { guard: 'aStepFailedForGood', target: 'failed' },
      ],
      on: {
        ...stepEvent('workflow.step.execute'),
        ...stepEvent('workflow.step.complete'),
        ...stepEvent('workflow.step.fail'),
        ...stepEvent('workflow.step.reply'),
        ...stepEvent('workflow.step.timeout'),
        ...stepEvent('workflow.step.retryDue'),
        ...stepEvent('workflow.step.retry'),
        ...stepEvent('wfstep.*'),
        'workflow.cancel': { target: 'cancelled', actions: 'apply' },
      },
    },
    completed: { entry: { type: 'settle', params: { outcome: 'COMPLETED' } } },
    failed: {
      entry: { type: 'settle', params: { outcome: 'FAILED' } },
      on: {
        'workflow.step.retry': { guard: 'appliesToStep', target: 'running', actions: 'apply' },
        'workflow.cancel': { target: 'cancelled', actions: 'apply' },
      },
    },
    cancelled: { entry: { type: 'settle', params: { outcome: 'CANCELLED' } } },
  },
});

export const version = 1;
export const migrations: ActorTypeDefinition['migrations'] = {};

/** The spec's status word for a state value. */
export function statusOf(value: unknown): WorkflowStatus | 'DRAFT' {
  const top = typeof value === 'string' ? value : Object.keys(value as object)[0];
  switch (top) {
    case 'notStarted':
      return 'NOT_STARTED';
    case 'blocked':
      return 'BLOCKED';
    case 'running':
      return 'IN_PROGRESS';
    case 'completed':
      return 'COMPLETED';
    case 'failed':
      return 'FAILED';
    case 'cancelled':
      return 'CANCELLED';
    default:
      return 'DRAFT';
  }
}

/** Indexed columns: status, the vendor as tenant, and the parties and type for searches. */
export function project(snapshot: PersistedSnapshot) {
  const c = snapshot.context as unknown as WorkflowContext;
  return {
    status: statusOf(snapshot.value),
    tenant: c.vendorId ?? null,
    attrs: {
      vendorId: c.vendorId,
      partnerId: c.partnerId,
      integrationId: c.integrationId,
      workflowType: c.workflowType,
      dependencies: c.dependencies,
    },
  };
}

export const workflowType: ActorTypeDefinition<typeof workflowMachine> = {
  type: 'workflow',
  machine: workflowMachine,
  version,
  migrations,
  project,
};
