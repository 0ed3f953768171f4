import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { auditExtras, recordAudit, toAuditRow, type AuditRecord, type AuditRow } from '../common/audit.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { KeyedCommand } from '../common/idempotency.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { pageActors } from '../common/sql.js';
import { statusOf, workflowType, type StepStatus, type WorkflowContext, type WorkflowEvent, type WorkflowStatus, type WorkflowStep } from '../../machines/workflow/index.js';
import type { WorkflowType } from '../../machines/workflow/templates.js';
import { resolveSteps, type StepInput } from './validate.js';

/** A workflow as clients see it: the spec's IntegrationWorkflow with its steps. */
export interface Workflow {
  id: string;
  name: string;
  description: string | null;
  workflowType: WorkflowType;
  vendorId: string | null;
  partnerId: string | null;
  integrationId: string | null;
  status: WorkflowStatus;
  currentStep: number | null;
  dependencies: string[];
  estimatedDuration: number | null;
  actualDuration: number | null;
  startedAt: string | null;
  completedAt: string | null;
  errorMessage: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  version: number;
  steps: Array<Omit<WorkflowStep, 'attempt' | 'correlationId'> & { workflowId: string; automated: boolean }>;
}

export interface CreateWorkflow {
  name: string;
  description?: string | null;
  workflowType: WorkflowType;
  vendorId?: string | null;
  partnerId?: string | null;
  integrationId?: string | null;
  dependencies?: string[];
  estimatedDuration?: number | null;
  metadata?: Record<string, unknown> | null;
  steps?: StepInput[];
}

export interface WorkflowFilter {
  status?: WorkflowStatus;
  workflowType?: WorkflowType;
  vendorId?: string;
  partnerId?: string;
  integrationId?: string;
  limit: number;
  cursor?: string;
}

export interface CallContext {
  principal: Principal;
  requestId?: string | null;
  /** The command's Idempotency-Key: its message id, and its answer stored with the commit. */
  key?: KeyedCommand;
}

export type StepCommand = 'execute' | 'complete' | 'retry';

const TYPE = 'workflow';

const canSee = (p: Principal, c: Pick<WorkflowContext, 'vendorId' | 'partnerId'>): boolean =>
  isPlatform(p) || (p.role === 'vendor' && c.vendorId === p.tenantId) || (p.role === 'partner' && c.partnerId === p.tenantId);

const notFound = (id: string) => new ConcordError(ErrorCode.ActorNotFound, `workflow ${id} not found`, { ref: { type: TYPE, id } });

function render(id: string, version: number, value: unknown, c: WorkflowContext): Workflow {
  return {
    id,
    name: c.name,
    description: c.description,
    workflowType: c.workflowType!,
    vendorId: c.vendorId,
    partnerId: c.partnerId,
    integrationId: c.integrationId,
    status: statusOf(value) as WorkflowStatus,
    currentStep: c.currentStep,
    dependencies: c.dependencies,
    estimatedDuration: c.estimatedDuration,
    actualDuration: c.actualDuration,
    startedAt: c.startedAt,
    completedAt: c.completedAt,
    errorMessage: c.errorMessage,
    metadata: c.metadata,
    createdAt: c.createdAt!,
    updatedAt: c.lastEventAt ?? c.createdAt!,
    version,
    steps: c.steps.map(({ attempt: _a, correlationId: _c, ...s }) => ({ ...s, workflowId: id, automated: Boolean(s.configuration?.action) })),
  };
}

/** Why a step command does not apply to a step in this status. */
const STEP_NEEDS: Record<StepCommand, StepStatus> = { execute: 'READY', complete: 'IN_PROGRESS', retry: 'FAILED' };

/**
 * Integration workflows are `workflow` actors (machines/workflow/): every command is an
 * event through the actor host, reads go to the `actors` table. A vendor or partner sees and
 * drives only the workflows it is party to; any other id is not found.
 */
export class WorkflowService {
  readonly #actors: ActorHandle<typeof workflowType>;

  constructor(
    host: ActorHost,
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
    /** The runtime's own first subject token (`NATS_PREFIX`), which steps may not publish under. */
    private readonly reservedPrefix: string,
  ) {
    this.#actors = host.actor(workflowType);
  }

  async #row(id: string): Promise<{ version: number; state_value: unknown; context: WorkflowContext } | undefined> {
    const { rows } = await this.pool.query<{ version: number; state_value: unknown; context: WorkflowContext }>(
      `SELECT version, state_value, snapshot->'context' AS context FROM actors WHERE type = $1 AND id = $2`,
      [TYPE, id],
    );
    return rows[0];
  }

  async get(principal: Principal, id: string): Promise<Workflow> {
    const row = await this.#row(id);
    if (!row || !canSee(principal, row.context) || statusOf(row.state_value) === 'DRAFT') throw notFound(id);
    return render(id, row.version, row.state_value, row.context);
  }

  /** The workflow as the host holds it (no read when cached), for the checks before a command. */
  async #current(principal: Principal, id: string): Promise<Workflow> {
    const now = await this.#actors.current(id);
    if (!now || !canSee(principal, now.context) || statusOf(now.value) === 'DRAFT') throw notFound(id);
    return render(id, now.version, now.value, now.context);
  }

  async list(principal: Principal, f: WorkflowFilter): Promise<{ data: Workflow[]; nextCursor: string | null }> {
    const { rows, nextCursor } = await pageActors<WorkflowContext>(this.pool, {
      type: TYPE,
      attrs: { vendorId: f.vendorId, partnerId: f.partnerId, integrationId: f.integrationId, workflowType: f.workflowType },
      status: f.status,
      principal,
      cursor: f.cursor,
      limit: f.limit,
    });
    return { data: rows.map((r) => render(r.id, r.version, r.state_value, r.context)), nextCursor };
  }

  /** Creates the workflow actor with its steps (given, or the type's template). */
  async create(cx: CallContext, id: string, input: CreateWorkflow): Promise<Workflow> {
    const p = cx.principal;
    if (!isPlatform(p) && !canSee(p, { vendorId: input.vendorId ?? null, partnerId: input.partnerId ?? null })) {
      throw new DomainError(DomainCode.Forbidden, `a ${p.role} may only create workflows it is party to`);
    }
    // an automated step publishes to services or calls connectors in the platform's name (a
    // publish on `svc.events.…` could pass for any saga's or workflow's reply): platform roles only
    if (!isPlatform(p) && (input.steps ?? []).some((s) => s.configuration?.action !== undefined)) {
      throw new DomainError(DomainCode.Forbidden, `a ${p.role} may not give steps an action (publish or connector): only operator and service may`);
    }
    const steps = resolveSteps(input.workflowType, input.steps, randomUUID, this.reservedPrefix);
    const deps = [...new Set(input.dependencies ?? [])];
    if (deps.includes(id)) throw new DomainError(DomainCode.DependencyCycle, `workflow ${id} cannot depend on itself`, { cycle: [id, id] });
    if (deps.length) {
      // dependencies are fixed at creation and must already exist, so they can never close a cycle
      const { rows } = await this.pool.query<{ id: string; context: WorkflowContext; status: string }>(
        `SELECT id, snapshot->'context' AS context, status FROM actors WHERE type = $1 AND id = ANY($2) AND status <> 'DRAFT'`,
        [TYPE, deps],
      );
      const found = new Set(rows.filter((r) => canSee(p, r.context)).map((r) => r.id));
      const missing = deps.filter((d) => !found.has(d));
      if (missing.length) {
        throw new DomainError(DomainCode.ValidationFailed, `dependencies name workflows that do not exist: ${missing.join(', ')}`, {
          issues: missing.map((m) => ({ path: ['dependencies'], message: `workflow ${m} not found` })),
        });
      }
    }
    const at = new Date(this.clock.now()).toISOString();
    const event: WorkflowEvent = {
      type: 'workflow.create',
      name: input.name,
      description: input.description ?? null,
      workflowType: input.workflowType,
      vendorId: input.vendorId ?? null,
      partnerId: input.partnerId ?? null,
      integrationId: input.integrationId ?? null,
      dependencies: deps,
      estimatedDuration: input.estimatedDuration ?? steps.reduce((sum, s) => sum + (s.estimatedDuration ?? 0), 0),
      metadata: input.metadata ?? null,
      steps,
      events: `${this.reservedPrefix}.events`,
      at,
      by: p.sub,
    };
    let after: Workflow | undefined;
    const res = await this.#actors.send(id, event, {
      messageId: cx.key?.messageId,
      extras: (t) => {
        after = render(id, t.version, t.value, t.context);
        return { ...auditExtras(this.#auditRow(cx, 'workflow.create', null, after, at)), ...cx.key?.answer(after) };
      },
      rejected: () => new DomainError(DomainCode.IdempotencyKeyReused, `workflow ${id} already exists`),
    });
    return res.duplicate ? this.get(p, id) : after!;
  }

  start(cx: CallContext, id: string): Promise<Workflow> {
    return this.#send(cx, id, 'start', (at, by) => ({ type: 'workflow.start', at, by }));
  }

  cancel(cx: CallContext, id: string, reason?: string): Promise<Workflow> {
    return this.#send(cx, id, 'cancel', (at, by) => ({ type: 'workflow.cancel', at, by, ...(reason ? { reason } : {}) }));
  }

  /**
   * `execute` (READY -> IN_PROGRESS), `complete` (IN_PROGRESS -> COMPLETED, or FAILED with
   * `errorMessage`), `retry` (FAILED -> READY). A step in another status is a 409 naming it.
   */
  async step(cx: CallContext, id: string, stepId: string, command: StepCommand, body: { output?: unknown; status?: 'COMPLETED' | 'FAILED'; errorMessage?: string } = {}): Promise<Workflow> {
    const before = await this.#current(cx.principal, id);
    const step = before.steps.find((s) => s.id === stepId);
    if (!step) throw new DomainError(DomainCode.NotFound, `workflow ${id} has no step ${stepId}`, { id: stepId });
    const needs = STEP_NEEDS[command];
    if (step.status !== needs) {
      throw new ConcordError(ErrorCode.EventRejected, `step ${step.stepNumber} (${step.name}) is ${step.status}: '${command}' needs ${needs}`, {
        currentStatus: step.status,
        action: command,
        allowedActions: (Object.keys(STEP_NEEDS) as StepCommand[]).filter((k) => STEP_NEEDS[k] === step.status),
      });
    }
    return this.#send(cx, id, `step.${command}`, (at, by) => {
      if (command === 'complete' && body.status === 'FAILED') return { type: 'workflow.step.fail', stepId, errorMessage: body.errorMessage ?? 'failed', at, by };
      if (command === 'complete') return { type: 'workflow.step.complete', stepId, output: body.output ?? null, at, by };
      return { type: `workflow.step.${command}`, stepId, at, by } as WorkflowEvent;
    }, before);
  }

  async #send(cx: CallContext, id: string, action: string, make: (at: string, by: string) => WorkflowEvent, known?: Workflow): Promise<Workflow> {
    const before = known ?? (await this.#current(cx.principal, id));
    const at = new Date(this.clock.now()).toISOString();
    let after: Workflow | undefined;
    // the record commits with the change when `before` is the version just before it; otherwise
    // (another process moved the workflow on meanwhile) it is written right after the commit
    const res = await this.#actors.send(id, make(at, cx.principal.sub), {
      messageId: cx.key?.messageId,
      extras: (t) => {
        after = render(id, t.version, t.value, t.context);
        return { ...auditExtras(before.version === t.version - 1 ? this.#auditRow(cx, `workflow.${action}`, before, after, at) : null), ...cx.key?.answer(after) };
      },
      rejected: (r) => new ConcordError(ErrorCode.EventRejected, `workflow ${id} is ${r.status}: '${action}' is not allowed now`, { currentStatus: r.status, action }),
    });
    if (res.duplicate) return this.get(cx.principal, id);
    if (before.version !== res.version - 1) await recordAudit(this.pool, this.#auditRecord(cx, `workflow.${action}`, null, after!, at));
    return after!;
  }

  /** The audit record of a change, as the row its transition commits with. */
  #auditRow(cx: CallContext, action: string, before: Workflow | null, after: Workflow, at: string): AuditRow {
    return toAuditRow(this.#auditRecord(cx, action, before, after, at));
  }

  #auditRecord(cx: CallContext, action: string, before: Workflow | null, after: Workflow, at: string): AuditRecord {
    return {
      principal: cx.principal,
      action,
      objectType: TYPE,
      objectId: after.id,
      before,
      after,
      at,
      requestId: cx.requestId ?? null,
      dedupeKey: `${TYPE}/${after.id}@${after.version}`,
    };
  }
}
