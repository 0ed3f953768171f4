import type pg from 'pg';
import {
  ACTIVE_SAGA_STATUSES,
  RUNNING_SAGA_STATUSES,
  compensationNames,
  currentStepName,
  type SagaContext,
  type SagaStartEvent,
  type SagaStatus,
} from '../../machines/saga/index.js';
import { sagaType } from '../../machines/saga/index.js';
import { SAGA_TYPES, type SagaType } from '../../machines/saga/definitions.js';
import { formatDuration } from '../../machines/lib/duration.js';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import type { Config } from '../../runtime/config.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { KeyedCommand } from '../common/idempotency.js';
import { ConcordError, ErrorCode, isConcordError, isRejected } from '../../runtime/errors.js';
import { definitionOf, planFor, workflowIdFor } from './plan.js';

export const SAGA_ACTOR = 'saga';

export interface StartResult {
  workflowId: string;
  /** False when the saga for this correlation id existed already. */
  created: boolean;
  context: SagaContext;
}

export interface CancelResult {
  workflowId: string;
  status: SagaStatus;
  compensationSteps: string[];
}

export interface SagaStatusView {
  workflowId: string;
  type: SagaType;
  status: SagaStatus;
  currentStep: string | null;
  steps: Array<Record<string, unknown>>;
  metadata: Record<string, unknown>;
  startedAt: string | null;
  completedAt: string | null;
  compensationSteps: string[];
  error: { failedStep: string | null; code: string; message: string; details: Record<string, unknown> } | null;
  cancellation: { reason: string; initiatedBy: string; at: string } | null;
}

export interface SagaMetrics {
  activeWorkflows: number;
  completedToday: number;
  failedToday: number;
  averageCompletionTime: string | null;
  successRate: number;
  workflowsByType: Record<SagaType, number>;
}

export interface SagaHealth {
  status: 'up' | 'degraded';
  active: number;
  stuck: number;
  stuckAfterMinutes: number;
  degradedAbove: number;
}

const FAILED_STATUSES: SagaStatus[] = ['FAILED', 'COMPENSATION_FAILED'];

const notFound = (id: string) => new DomainError(DomainCode.NotFound, `workflow ${id} not found`, { id });

/**
 * Sagas as the API and the intake see them: start (once per correlation id), status, cancel,
 * the active list and the metrics. Every saga is a `saga` actor; the lists and counts read its
 * indexed columns (status, attrs), never the snapshots of finished sagas.
 */
export class SagaService {
  readonly #sagas: ActorHandle<typeof sagaType>;

  constructor(
    host: ActorHost,
    private readonly pool: pg.Pool,
    private readonly config: Config,
    private readonly clock: Clock,
  ) {
    this.#sagas = host.actor(sagaType);
  }

  /** Starts a saga of `type` for `data` (its correlation field is required), or finds the one that exists. */
  async start(type: SagaType, data: Record<string, unknown>, opts: { messageId?: string } = {}): Promise<StartResult> {
    const def = definitionOf(type);
    const correlationId = data[def.correlationField];
    if (typeof correlationId !== 'string' || correlationId === '') {
      throw new DomainError(DomainCode.ValidationFailed, `a ${type} saga needs a string '${def.correlationField}'`, {
        issues: [{ path: [def.correlationField], message: 'required' }],
      });
    }
    const workflowId = workflowIdFor(type, correlationId);
    const metadata = Object.fromEntries(def.metadataFields.filter((k) => data[k] !== undefined).map((k) => [k, data[k]]));
    const event: SagaStartEvent = {
      type: 'saga.start',
      at: new Date(this.clock.now()).toISOString(),
      workflowType: type,
      correlationId,
      data,
      metadata,
      plan: planFor(this.config, type),
    };
    try {
      // a start is almost always of a new saga (one per correlation id): no read before the insert
      const r = await this.#sagas.send(workflowId, event, { messageId: opts.messageId ?? `saga.start:${workflowId}`, expectNew: true });
      if (!r.duplicate && r.context) return { workflowId, created: true, context: r.context };
    } catch (err) {
      if (!isRejected(err)) throw err; // it exists and is past `new`: a repeated start
    }
    return { workflowId, created: false, context: await this.context(workflowId) };
  }

  /** The saga's context, or 404. */
  async context(workflowId: string): Promise<SagaContext> {
    try {
      const ctx = (await this.#sagas.get(workflowId)).context;
      if (ctx.status === 'NEW') throw notFound(workflowId);
      return ctx;
    } catch (err) {
      if (isConcordError(err, ErrorCode.ActorNotFound)) throw notFound(workflowId);
      throw err;
    }
  }

  async status(workflowId: string): Promise<SagaStatusView> {
    return statusView(await this.context(workflowId));
  }

  /** The saga as the host holds it (no read when cached), or 404: the check before a command. */
  async #current(workflowId: string): Promise<SagaContext> {
    const now = await this.#sagas.current(workflowId);
    if (!now || now.context.status === 'NEW') throw notFound(workflowId);
    return now.context;
  }

  /**
   * Cancels a running saga: CANCELLING with the compensations that will run, in order. A saga
   * that is no longer running (finished, or already compensating) answers 409. With an
   * Idempotency-Key (`key`), the answer commits with the cancellation.
   */
  async cancel(workflowId: string, body: { reason: string; initiatedBy: string }, opts: { key?: KeyedCommand } = {}): Promise<CancelResult> {
    await this.#current(workflowId);
    const at = new Date(this.clock.now()).toISOString();
    const answer = (ctx: SagaContext): CancelResult => ({ workflowId, status: ctx.status as SagaStatus, compensationSteps: compensationNames(ctx) });
    let after: CancelResult | undefined;
    const r = await this.#sagas.send(workflowId, { type: 'saga.cancel', at, reason: body.reason, initiatedBy: body.initiatedBy }, {
      messageId: opts.key?.messageId,
      extras: (t) => {
        after = answer(t.context);
        return opts.key?.answer(after);
      },
      rejected: (why) => new ConcordError(ErrorCode.EventRejected, `workflow ${workflowId} is ${why.status}: only an IN_PROGRESS workflow can be cancelled`, { currentStatus: why.status }),
    });
    return r.duplicate ? answer(await this.context(workflowId)) : after!;
  }

  /** Operator action: a saga in COMPENSATION_FAILED tries its failed compensation again. */
  async retryCompensation(workflowId: string, by: string): Promise<SagaStatusView> {
    await this.#current(workflowId);
    const at = new Date(this.clock.now()).toISOString();
    await this.#sagas.send(workflowId, { type: 'saga.retryCompensation', at, by }, {
      rejected: (why) => new ConcordError(ErrorCode.EventRejected, `workflow ${workflowId} is ${why.status}: only COMPENSATION_FAILED can be retried`, { currentStatus: why.status }),
    });
    return this.status(workflowId);
  }

  /** Workflows not finished (IN_PROGRESS, COMPENSATING, CANCELLING, COMPENSATION_FAILED), newest first. */
  async active(page: number, size: number) {
    const statuses = [...ACTIVE_SAGA_STATUSES];
    const [rows, count] = await Promise.all([
      this.pool.query<{ id: string; status: string; wt: string; metadata: Record<string, unknown> | null; started_at: string | null; created_at: Date }>(
        `SELECT id, status, attrs->>'workflowType' AS wt, snapshot->'context'->'metadata' AS metadata, attrs->>'startedAt' AS started_at, created_at
           FROM actors WHERE type = $1 AND status = ANY($2::text[])
          ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`,
        [SAGA_ACTOR, statuses, size, page * size],
      ),
      this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = $1 AND status = ANY($2::text[])`, [SAGA_ACTOR, statuses]),
    ]);
    const total = count.rows[0]!.n;
    return {
      content: rows.rows.map((r) => ({
        workflowId: r.id,
        type: r.wt,
        status: r.status,
        startedAt: r.started_at ?? r.created_at.toISOString(),
        metadata: r.metadata ?? {},
      })),
      totalElements: total,
      totalPages: Math.ceil(total / size),
      number: page,
      size,
    };
  }

  /** The spec's metrics: "today" is the current UTC day by the runtime clock. */
  async metrics(): Promise<SagaMetrics> {
    const now = this.clock.now();
    const today = new Date(now);
    today.setUTCHours(0, 0, 0, 0);
    const since = today.toISOString();
    const [byType, day] = await Promise.all([
      this.pool.query<{ t: string | null; n: number }>(
        `SELECT attrs->>'workflowType' AS t, count(*)::int AS n FROM actors WHERE type = $1 AND status = ANY($2::text[]) GROUP BY 1`,
        [SAGA_ACTOR, [...ACTIVE_SAGA_STATUSES]],
      ),
      this.pool.query<{ completed: number; failed: number; avg_ms: number | null }>(
        `SELECT count(*) FILTER (WHERE status = 'COMPLETED' AND attrs->>'completedAt' >= $3)::int AS completed,
                count(*) FILTER (WHERE status = ANY($2::text[]) AND attrs->>'failedAt' >= $3 AND attrs->>'cancelledAt' IS NULL)::int AS failed,
                avg((attrs->>'durationMs')::float8) FILTER (WHERE status = 'COMPLETED' AND attrs->>'completedAt' >= $3) AS avg_ms
           FROM actors
          WHERE type = $1 AND status IN ('COMPLETED', 'FAILED', 'COMPENSATION_FAILED') AND updated_at >= $4`,
        [SAGA_ACTOR, FAILED_STATUSES, since, today],
      ),
    ]);
    const workflowsByType = Object.fromEntries(SAGA_TYPES.map((t) => [t, 0])) as Record<SagaType, number>;
    let active = 0;
    for (const r of byType.rows) {
      active += r.n;
      if (r.t && r.t in workflowsByType) workflowsByType[r.t as SagaType] += r.n;
    }
    const { completed, failed, avg_ms } = day.rows[0]!;
    const finished = completed + failed;
    return {
      activeWorkflows: active,
      completedToday: completed,
      failedToday: failed,
      averageCompletionTime: avg_ms === null ? null : formatDuration(avg_ms),
      successRate: finished === 0 ? 100 : Math.round((completed / finished) * 1000) / 10,
      workflowsByType,
    };
  }

  /** Sagas still moving (IN_PROGRESS, COMPENSATING, CANCELLING) that started longer ago than the threshold. */
  async stuck(): Promise<number> {
    const cutoff = new Date(this.clock.now() - this.config.saga.stuckAfterMs);
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM actors WHERE type = $1 AND status = ANY($2::text[]) AND created_at < $3`,
      [SAGA_ACTOR, [...RUNNING_SAGA_STATUSES], cutoff],
    );
    return rows[0]!.n;
  }

  /** Degraded when more than SAGA_STUCK_DEGRADED_ABOVE sagas are stuck (the spec's health indicator). */
  async health(): Promise<SagaHealth> {
    const [stuck, active] = await Promise.all([
      this.stuck(),
      this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE type = $1 AND status = 'IN_PROGRESS'`, [SAGA_ACTOR]),
    ]);
    const s = this.config.saga;
    return {
      status: stuck > s.stuckDegradedAbove ? 'degraded' : 'up',
      active: active.rows[0]!.n,
      stuck,
      stuckAfterMinutes: s.stuckAfterMs / 60_000,
      degradedAbove: s.stuckDegradedAbove,
    };
  }
}

/** The spec's status document, plus attempts, results and errors where there are some. */
export function statusView(ctx: SagaContext): SagaStatusView {
  const compensationOf = (i: number) => ctx.plan.steps[i]?.compensation;
  return {
    workflowId: ctx.workflowId,
    type: ctx.workflowType!,
    status: ctx.status as SagaStatus,
    currentStep: currentStepName(ctx),
    steps: ctx.steps.map((s, i) => {
      const comp = compensationOf(i);
      return {
        name: s.name,
        status: s.status,
        ...(s.startedAt ? { startedAt: s.startedAt } : {}),
        ...(s.completedAt ? { completedAt: s.completedAt } : {}),
        ...(s.attempt > 0 ? { attempts: s.attempt } : {}),
        ...(s.result ? { result: s.result } : {}),
        ...(s.error ? { error: s.error } : {}),
        ...(comp && s.compensation
          ? {
              compensation: {
                name: comp.name,
                status: s.compensation.status,
                attempts: s.compensation.attempt,
                ...(s.compensation.startedAt ? { startedAt: s.compensation.startedAt } : {}),
                ...(s.compensation.completedAt ? { completedAt: s.compensation.completedAt } : {}),
              },
            }
          : {}),
      };
    }),
    metadata: ctx.metadata,
    startedAt: ctx.startedAt,
    completedAt: ctx.completedAt,
    compensationSteps: ctx.status === 'COMPLETED' ? [] : compensationNames(ctx),
    error: ctx.failure ? { failedStep: ctx.failure.step, ...ctx.failure.error } : null,
    cancellation: ctx.cancel,
  };
}
