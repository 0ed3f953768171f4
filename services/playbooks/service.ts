import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { CallContext as ConnectorCallContext, ConnectorInvoker } from '../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';
import { uuidFromHex } from '../../machines/lib/uuid.js';
import {
  executionType,
  scheduleType,
  stepStatusWord,
  type CompiledStep,
  type CronSpec,
  type ExecutionContext,
  type ExecutionEvent,
  type ExecutionStatus,
  type PlaybookStep,
  type PlaybookStepStatus,
  type Reuse,
  type TickAnswer,
  type TriggerInfo,
  type TriggerKind,
} from '../../machines/playbook/index.js';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { auditExtras, recordAudit, toAuditRow, type AuditRecord } from '../common/audit.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { decodeCursor, encodeCursor, transaction } from '../common/sql.js';
import { newSecret, verify } from '../events/signing.js';
import type { CredentialVault } from '../integrations/vault.js';
import { createHash } from 'node:crypto';
import { compileSteps, cronOf, DEFAULT_PARALLELISM, hasTrigger, resolveInputs } from './compile.js';
import { nextTick, ticksToRun } from './cron.js';
import { StepWork, type StepCall } from './runner.js';
import { playbookJsonSchema, type PlaybookDef } from './schema.js';
import type { Expressions, StepRunner } from './steps/types.js';
import { parsePlaybook } from './validate.js';

/** A playbook as clients see it: the current version's definition and its source. */
export interface Playbook {
  id: string;
  name: string;
  description: string | null;
  tenantId: string;
  version: number;
  format: 'yaml' | 'json';
  source: string;
  definition: PlaybookDef;
  triggers: string[];
  webhookUrl: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

export interface ExecutionStep {
  id: string;
  phase: 'main' | 'finally';
  type: string;
  status: PlaybookStepStatus;
  dependsOn: string[];
  attempts: number;
  retryCount: number;
  retryAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  output: unknown;
  error: { code: string | null; message: string } | null;
  skipReason: 'condition' | 'error' | null;
  reused: boolean;
  logs: ExecutionContext['steps'][number]['logs'];
}

export interface Execution {
  id: string;
  playbookId: string;
  playbookName: string;
  playbookVersion: number;
  tenantId: string | null;
  status: ExecutionStatus;
  trigger: TriggerKind;
  triggerInfo: TriggerInfo;
  inputs: Record<string, unknown>;
  error: string | null;
  createdAt: string;
  createdBy: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
  version: number;
  steps: ExecutionStep[];
}

/** How many of an execution's steps are in each status (main and finally steps together). */
export type StepCounts = Record<PlaybookStepStatus | 'total', number>;

/** An execution as the list shows it: no inputs, outputs nor logs (`GET /executions/{id}` has them). */
export type ExecutionSummary = Omit<Execution, 'inputs' | 'steps'> & { stepCounts: StepCounts };

export interface ExecutionFilter {
  playbookId?: string;
  status?: ExecutionStatus;
  trigger?: TriggerKind;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

export interface Caller {
  principal: Principal;
  requestId?: string | null;
}

export interface PlaybookServiceOptions {
  host: ActorHost;
  pool: pg.Pool;
  clock: Clock;
  log: Logger;
  vault: CredentialVault;
  /** Step runners by type key (`createStepRunners` of `./steps/`). */
  runners: Partial<Record<string, StepRunner>>;
  /** CEL and Liquid (`createExpressions` of `./steps/`): `if`, `forEach` and syntax checks. */
  expressions?: Expressions;
  /** Where the webhook URL of a playbook points (`PUBLIC_BASE_URL`). */
  publicBaseUrl: string;
}

interface Row {
  id: string;
  tenant: string;
  name: string;
  version: number;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  format: 'yaml' | 'json';
  source: string;
  definition: PlaybookDef;
}

const TYPE = 'playbook';
/** Playbook versions kept compiled for `execute` (per process). */
const VERSIONS_CACHED = 256;
const EXECUTION = executionType.type;
export const WEBHOOK_SERVICE = 'playbook-webhook';
/** Webhook-ids are remembered this long (a timestamp older than 5 minutes is refused anyway). */
const WEBHOOK_ID_RETENTION_MS = 24 * 3_600_000;
const TOLERANCE_SEC = 300;

const canSee = (p: Principal, tenant: string | null): boolean => isPlatform(p) || (tenant !== null && tenant === p.tenantId);
const notFound = (what: string, id: string) => new DomainError(DomainCode.NotFound, `${what} ${id} not found`, { id });
const iso = (d: Date | string) => new Date(d).toISOString();
const hashId = (s: string) => uuidFromHex(createHash('sha256').update(s).digest('hex'));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id of the execution a cron tick starts: the same in every process, so a tick starts it once. */
export const cronExecutionId = (playbookId: string, tickMs: number): string => hashId(`cron\n${playbookId}\n${tickMs}`);

function renderExecution(version: number, c: ExecutionContext): Execution {
  const byNumber = new Map(c.steps.map((s) => [s.stepNumber, s.id]));
  return {
    id: c.id,
    playbookId: c.playbookId,
    playbookName: c.playbookName,
    playbookVersion: c.playbookVersion,
    tenantId: c.tenant,
    status: c.status,
    trigger: c.trigger.kind,
    triggerInfo: c.trigger,
    inputs: c.inputs,
    error: c.error,
    createdAt: c.createdAt!,
    createdBy: c.createdBy,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
    updatedAt: c.lastEventAt ?? c.createdAt!,
    version,
    steps: c.steps.map((s) => ({
      id: s.id,
      phase: s.phase,
      type: s.type,
      status: stepStatusWord(s),
      dependsOn: s.dependencies.map((n) => byNumber.get(n)!),
      attempts: s.attempt,
      retryCount: s.retryCount,
      retryAt: s.retryAt,
      startedAt: s.startedAt,
      completedAt: s.completedAt,
      output: s.output ?? null,
      error: s.errorMessage ? { code: s.errorCode, message: s.errorMessage } : null,
      skipReason: s.skipReason,
      reused: s.reused,
      logs: s.logs,
    })),
  };
}

type SummaryHead = Pick<ExecutionContext, 'playbookId' | 'playbookName' | 'playbookVersion' | 'tenant' | 'status' | 'trigger' | 'error' | 'createdAt' | 'createdBy' | 'startedAt' | 'finishedAt' | 'lastEventAt'>;

function renderSummary(id: string, version: number, h: SummaryHead, byStatus: Record<string, number>): ExecutionSummary {
  const stepCounts: StepCounts = { total: 0, pending: 0, queued: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const [status, n] of Object.entries(byStatus)) {
    stepCounts[stepStatusWord({ status: status as PlaybookStep['status'] })] += Number(n);
    stepCounts.total += Number(n);
  }
  return {
    id,
    playbookId: h.playbookId,
    playbookName: h.playbookName,
    playbookVersion: h.playbookVersion,
    tenantId: h.tenant,
    status: h.status,
    trigger: h.trigger.kind,
    triggerInfo: h.trigger,
    error: h.error,
    createdAt: h.createdAt!,
    createdBy: h.createdBy,
    startedAt: h.startedAt,
    finishedAt: h.finishedAt,
    updatedAt: h.lastEventAt ?? h.createdAt!,
    version,
    stepCounts,
  };
}

/**
 * Playbooks (issue 19): definitions in plain tables, versioned; executions and cron schedules
 * as actors. The step work runs here, as the `playbook` connector the runtime's effect workers
 * call (`invoker()`): `step` runs one attempt (`runner.ts`), `tick` starts a cron tick's
 * executions, `abort` stops running attempts. A vendor or partner sees only its own playbooks
 * and executions (another's answer 404).
 */
export class PlaybookService {
  readonly #executions: ActorHandle<typeof executionType>;
  readonly #schedules: ActorHandle<typeof scheduleType>;
  readonly work: StepWork;
  readonly #listeners = new Set<() => void>();
  /** Playbook versions (immutable) as executions use them, by `<id>@<version>`, least recently used first. */
  readonly #versions = new Map<string, { definition: PlaybookDef; steps: CompiledStep[] }>();

  constructor(private readonly o: PlaybookServiceOptions) {
    this.#executions = o.host.actor(executionType);
    this.#schedules = o.host.actor(scheduleType);
    this.work = new StepWork(o.runners, o.expressions, o.clock, o.log);
  }

  /** Told when a playbook's triggers may have changed (the NATS intake reloads its subjects). */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  schema(): unknown {
    return playbookJsonSchema();
  }

  #now(): string {
    return new Date(this.o.clock.now()).toISOString();
  }

  #render(r: Row): Playbook {
    return {
      id: r.id,
      name: r.name,
      description: r.definition.description ?? null,
      tenantId: r.tenant,
      version: r.version,
      format: r.format,
      source: r.source,
      definition: r.definition,
      triggers: (r.definition.triggers ?? [{ manual: {} }]).map((t) => Object.keys(t)[0]!),
      webhookUrl: `${this.o.publicBaseUrl}/api/partnerships/playbooks/${r.id}/webhook`,
      createdAt: iso(r.created_at),
      createdBy: r.created_by,
      updatedAt: iso(r.updated_at),
    };
  }

  async #row(id: string, db: pg.Pool | pg.PoolClient = this.o.pool, lock = false): Promise<Row | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await db.query<Row>(
      `SELECT p.id, p.tenant, p.name, p.version, p.created_at, p.created_by, p.updated_at, v.format, v.source, v.definition
         FROM playbooks p JOIN playbook_versions v ON v.playbook_id = p.id AND v.version = p.version
        WHERE p.id = $1 AND p.deleted_at IS NULL ${lock ? 'FOR UPDATE OF p' : ''}`,
      [id],
    );
    return rows[0];
  }

  /**
   * What an execution needs of a playbook: its current version (read every time: an update, a
   * delete from any process counts at once), and that version's definition and compiled steps,
   * cached by id and version (a version never changes once written).
   */
  async #runnable(p: Principal, id: string): Promise<Pick<Row, 'id' | 'tenant' | 'name' | 'version' | 'definition'> & { steps: CompiledStep[] }> {
    if (!UUID.test(id)) throw notFound('playbook', id);
    const { rows } = await this.o.pool.query<Pick<Row, 'tenant' | 'name' | 'version'>>({
      name: 'concord_playbook_current',
      text: `SELECT tenant, name, version FROM playbooks WHERE id = $1 AND deleted_at IS NULL`,
      values: [id],
    });
    const r = rows[0];
    if (!r || !canSee(p, r.tenant)) throw notFound('playbook', id);
    const key = `${id}@${r.version}`;
    let hit = this.#versions.get(key);
    if (hit) {
      this.#versions.delete(key); // most recently used last
    } else {
      const { rows: v } = await this.o.pool.query<{ definition: PlaybookDef }>({
        name: 'concord_playbook_version',
        text: `SELECT definition FROM playbook_versions WHERE playbook_id = $1 AND version = $2`,
        values: [id, r.version],
      });
      if (!v[0]) throw notFound('playbook', id);
      hit = { definition: v[0].definition, steps: compileSteps(v[0].definition) };
      if (this.#versions.size >= VERSIONS_CACHED) this.#versions.delete(this.#versions.keys().next().value!);
    }
    this.#versions.set(key, hit);
    // the event carries its own copy of the steps (the cached ones stay as compiled)
    return { id, tenant: r.tenant, name: r.name, version: r.version, definition: hit.definition, steps: structuredClone(hit.steps) };
  }

  async #visible(p: Principal, id: string, db?: pg.PoolClient, lock = false): Promise<Row> {
    const r = await this.#row(id, db, lock);
    if (!r || !canSee(p, r.tenant)) throw notFound('playbook', id);
    return r;
  }

  /** Vendors and partners own what they create; operators create for `tenantId` (else `platform`). */
  #tenantOf(p: Principal, requested?: string): string {
    if (isPlatform(p)) return requested ?? 'platform';
    if (requested && requested !== p.tenantId) throw new DomainError(DomainCode.Forbidden, `a ${p.role} creates playbooks for itself only`);
    return p.tenantId!;
  }

  #audit(cx: Caller, action: string, objectType: string, objectId: string, before: unknown, after: unknown, dedupeKey?: string): AuditRecord {
    return { principal: cx.principal, action, objectType, objectId, before, after, at: this.#now(), requestId: cx.requestId ?? null, ...(dedupeKey ? { dedupeKey } : {}) };
  }

  async get(p: Principal, id: string): Promise<Playbook> {
    return this.#render(await this.#visible(p, id));
  }

  async list(p: Principal, q: { limit: number; cursor?: string; name?: string }): Promise<{ data: Playbook[]; nextCursor: string | null }> {
    const cur = decodeCursor(q.cursor);
    if (q.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    const { rows } = await this.o.pool.query<Row>(
      `SELECT p.id, p.tenant, p.name, p.version, p.created_at, p.created_by, p.updated_at, v.format, v.source, v.definition
         FROM playbooks p JOIN playbook_versions v ON v.playbook_id = p.id AND v.version = p.version
        WHERE p.deleted_at IS NULL AND ($1::text IS NULL OR p.tenant = $1) AND ($2::text IS NULL OR p.name = $2)
          AND ($3::timestamptz IS NULL OR (p.created_at, p.id) < ($3, $4::uuid))
        ORDER BY p.created_at DESC, p.id DESC LIMIT $5`,
      [isPlatform(p) ? null : p.tenantId, q.name ?? null, cur?.at ?? null, cur?.id ?? null, q.limit + 1],
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { data: page.map((r) => this.#render(r)), nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.id) : null };
  }

  /** Creates a playbook (version 1); its webhook secret is answered here, once. */
  async create(cx: Caller, source: string, format: 'yaml' | 'json', tenantId?: string): Promise<Playbook & { webhookSecret: string | null }> {
    const def = parsePlaybook(source, format, this.o.expressions);
    const tenant = this.#tenantOf(cx.principal, tenantId);
    const id = randomUUID();
    const at = this.#now();
    const row = await transaction(this.o.pool, async (db) => {
      try {
        await db.query(`INSERT INTO playbooks (id, tenant, name, version, created_at, created_by, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $4)`, [id, tenant, def.name, at, cx.principal.sub]);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new ConcordError(ErrorCode.Conflict, `a playbook named '${def.name}' exists already`);
        throw err;
      }
      await this.#insertVersion(db, id, 1, format, source, def, at, cx.principal.sub);
      const r = (await this.#row(id, db))!;
      await recordAudit(db, this.#audit(cx, 'playbook.create', TYPE, id, null, this.#summary(r)));
      return r;
    });
    let webhookSecret: string | null = null;
    if (this.o.vault.ring.primary) {
      webhookSecret = newSecret();
      await this.o.vault.put({ tenantId: tenant, service: WEBHOOK_SERVICE, connectionId: id }, { secret: webhookSecret });
    } else {
      this.o.log.warn({ playbookId: id }, 'no credentials key: the playbook has no webhook secret (its webhook trigger refuses every call)');
    }
    await this.#syncSchedule(row, def);
    this.#changed();
    return { ...this.#render(row), webhookSecret };
  }

  /** A new version; executions already started keep theirs. */
  async update(cx: Caller, id: string, source: string, format: 'yaml' | 'json'): Promise<Playbook> {
    await this.#visible(cx.principal, id);
    const def = parsePlaybook(source, format, this.o.expressions);
    const at = this.#now();
    const row = await transaction(this.o.pool, async (db) => {
      const before = await this.#visible(cx.principal, id, db, true);
      const version = before.version + 1;
      try {
        await db.query(`UPDATE playbooks SET version = $2, name = $3, updated_at = $4 WHERE id = $1`, [id, version, def.name, at]);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new ConcordError(ErrorCode.Conflict, `a playbook named '${def.name}' exists already`);
        throw err;
      }
      await this.#insertVersion(db, id, version, format, source, def, at, cx.principal.sub);
      const r = (await this.#row(id, db))!;
      await recordAudit(db, this.#audit(cx, 'playbook.update', TYPE, id, this.#summary(before), this.#summary(r)));
      return r;
    });
    await this.#syncSchedule(row, def);
    this.#changed();
    return this.#render(row);
  }

  async delete(cx: Caller, id: string): Promise<void> {
    const row = await transaction(this.o.pool, async (db) => {
      const before = await this.#visible(cx.principal, id, db, true);
      await db.query(`UPDATE playbooks SET deleted_at = $2 WHERE id = $1`, [id, this.#now()]);
      await recordAudit(db, this.#audit(cx, 'playbook.delete', TYPE, id, this.#summary(before), null));
      return before;
    });
    await this.#syncSchedule(row, null);
    await this.o.vault.delete({ tenantId: row.tenant, service: WEBHOOK_SERVICE, connectionId: id }).catch(() => false);
    this.#changed();
  }

  #summary(r: Row) {
    return { id: r.id, name: r.name, tenantId: r.tenant, version: r.version };
  }

  async #insertVersion(db: pg.PoolClient, id: string, version: number, format: string, source: string, def: PlaybookDef, at: string, by: string): Promise<void> {
    const subjects = (def.triggers ?? []).flatMap((t) => (t.nats ? [t.nats.subject] : []));
    await db.query(
      `INSERT INTO playbook_versions (playbook_id, version, format, source, definition, nats_subjects, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [id, version, format, source, JSON.stringify(def), subjects, at, by],
    );
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
  }

  /** Points the playbook's schedule actor at its cron trigger (or stops it). */
  async #syncSchedule(r: Row, def: PlaybookDef | null): Promise<void> {
    const cron = def ? cronOf(def) : null;
    if (!cron) {
      const existing = await this.#schedules.current(r.id);
      if (!existing || !existing.context.cron) return;
    }
    const now = this.o.clock.now();
    const next = cron ? nextTick(cron, now) : null;
    await this.#schedules.send(
      r.id,
      { type: 'schedule.set', tenant: r.tenant, cron, nextAt: next === null ? null : new Date(next).toISOString(), at: new Date(now).toISOString() },
      { messageId: `schedule:${r.id}@${r.version}${def ? '' : ':deleted'}` },
    );
  }

  /** The schedule of a playbook (operators and owners): next tick, running and queued executions. */
  async schedule(p: Principal, id: string) {
    await this.#visible(p, id);
    const s = await this.#schedules.current(id);
    if (!s?.context.cron) return null;
    const c = s.context;
    return { cron: c.cron, nextAt: c.nextAt, active: c.active, queued: c.queue, started: c.started, skipped: c.skipped, lastTickAt: c.lastTickAt };
  }

  // ---- executions ------------------------------------------------------------------------

  /** `POST /playbooks/{id}/execute`: inputs checked against the declared ones; answers the new execution. */
  async execute(cx: Caller, id: string, inputs: unknown, idempotencyKey?: string): Promise<Execution> {
    const r = await this.#runnable(cx.principal, id);
    if (!hasTrigger(r.definition, 'manual')) throw new ConcordError(ErrorCode.EventRejected, `playbook ${id} has no manual trigger`, { action: 'execute' });
    // the defaults come from the cached definition: the execution gets its own copy
    const resolved = structuredClone(resolveInputs(r.definition, inputs));
    const executionId = idempotencyKey ? hashId(`manual\n${id}\n${cx.principal.sub}\n${idempotencyKey}`) : randomUUID();
    return this.#start(cx, r, { kind: 'manual' }, resolved, { executionId, steps: r.steps });
  }

  async #start(
    cx: Caller,
    r: Pick<Row, 'id' | 'tenant' | 'name' | 'version' | 'definition'>,
    trigger: TriggerInfo,
    inputs: Record<string, unknown>,
    o: { executionId: string; hold?: boolean; notify?: { type: string; id: string }; reuse?: Reuse; steps?: ReturnType<typeof compileSteps>; parallelism?: number },
  ): Promise<Execution> {
    const at = this.#now();
    const event: ExecutionEvent = {
      type: 'execution.create',
      tenant: r.tenant,
      playbookId: r.id,
      playbookName: r.name,
      playbookVersion: r.version,
      trigger,
      inputs,
      parallelism: o.parallelism ?? r.definition.parallelism ?? DEFAULT_PARALLELISM,
      steps: o.steps ?? compileSteps(r.definition),
      hold: o.hold ?? false,
      notify: o.notify ?? null,
      ...(o.reuse ? { reuse: o.reuse } : {}),
      at,
      by: cx.principal.sub,
    };
    let after: Execution | undefined;
    const res = await this.#executions.send(o.executionId, event, {
      messageId: `create:${o.executionId}`,
      // its id is new (random, or new per idempotency key, tick, message): the create is not preceded
      // by a read of the actor; a repeat is refused by the commit and answered from the inbox
      expectNew: true,
      extras: (t) => {
        after = renderExecution(t.version, t.context);
        return auditExtras(toAuditRow({ ...this.#audit(cx, 'playbook.execute', EXECUTION, o.executionId, null, { id: o.executionId, playbookId: r.id, playbookVersion: r.version, trigger: trigger.kind, status: after.status }), dedupeKey: `${EXECUTION}/${o.executionId}@${t.version}` }));
      },
      rejected: () => new ConcordError(ErrorCode.Conflict, `execution ${o.executionId} exists already`),
    });
    if (res.duplicate) return this.getExecution(cx.principal, o.executionId);
    return after!;
  }

  async getExecution(p: Principal, id: string): Promise<Execution> {
    if (!UUID.test(id)) throw notFound('execution', id);
    const s = await this.#executions.current(id);
    if (!s || !s.context.createdAt || !canSee(p, s.context.tenant)) throw notFound('execution', id);
    return renderExecution(s.version, s.context);
  }

  /**
   * `GET /executions`: summaries, newest first. The projection is made by Postgres (step counts
   * by status, no inputs, outputs nor logs), so a page of large executions stays a small answer.
   */
  async listExecutions(p: Principal, f: ExecutionFilter): Promise<{ data: ExecutionSummary[]; nextCursor: string | null }> {
    const cur = decodeCursor(f.cursor);
    if (f.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    const attrs = Object.fromEntries(Object.entries({ playbookId: f.playbookId, trigger: f.trigger }).filter(([, v]) => v !== undefined));
    const { rows } = await this.o.pool.query<{ id: string; version: number; head: SummaryHead; counts: Record<string, number> | null; created_at: Date }>({
      name: 'concord_playbook_executions_list',
      text: `SELECT a.id, a.version, a.created_at,
          jsonb_build_object('playbookId', c->'playbookId', 'playbookName', c->'playbookName', 'playbookVersion', c->'playbookVersion',
            'tenant', c->'tenant', 'status', c->'status', 'trigger', c->'trigger', 'error', c->'error', 'createdAt', c->'createdAt',
            'createdBy', c->'createdBy', 'startedAt', c->'startedAt', 'finishedAt', c->'finishedAt', 'lastEventAt', c->'lastEventAt') AS head,
          (SELECT jsonb_object_agg(k, n) FROM (SELECT s->>'status' AS k, count(*) AS n FROM jsonb_array_elements(c->'steps') s GROUP BY 1) t) AS counts
        FROM actors a CROSS JOIN LATERAL (SELECT a.snapshot->'context' AS c) x
        WHERE a.type = $1 AND a.status <> 'DRAFT' AND ($2::text IS NULL OR a.tenant = $2) AND a.attrs @> $3::jsonb
          AND ($4::text IS NULL OR a.status = $4)
          AND ($5::timestamptz IS NULL OR a.created_at >= $5) AND ($6::timestamptz IS NULL OR a.created_at < $6)
          AND ($7::timestamptz IS NULL OR (a.created_at, a.id) < ($7, $8))
        ORDER BY a.created_at DESC, a.id DESC LIMIT $9`,
      values: [EXECUTION, isPlatform(p) ? null : (p.tenantId ?? '\u0000'), JSON.stringify(attrs), f.status ?? null, f.from ?? null, f.to ?? null, cur?.at ?? null, cur?.id ?? null, f.limit + 1],
    });
    const page = rows.slice(0, f.limit);
    const last = page[page.length - 1];
    return { data: page.map((r) => renderSummary(r.id, Number(r.version), r.head, r.counts ?? {})), nextCursor: rows.length > f.limit && last ? encodeCursor(last.created_at, last.id) : null };
  }

  async cancel(cx: Caller, id: string, reason?: string): Promise<Execution> {
    const before = await this.getExecution(cx.principal, id);
    const at = this.#now();
    let after: Execution | undefined;
    await this.#executions.send(id, { type: 'execution.cancel', at, by: cx.principal.sub, ...(reason ? { reason } : {}) }, {
      extras: (t) => {
        after = renderExecution(t.version, t.context);
        return auditExtras(toAuditRow({ ...this.#audit(cx, 'execution.cancel', EXECUTION, id, { status: before.status }, { status: after.status, reason: reason ?? null }), dedupeKey: `${EXECUTION}/${id}@${t.version}` }));
      },
      rejected: () => new ConcordError(ErrorCode.EventRejected, `execution ${id} is ${before.status}: it cannot be cancelled`, { currentStatus: before.status, action: 'cancel' }),
    });
    return after!;
  }

  /**
   * A new execution of the same playbook version with the same inputs, reusing the outputs of
   * the main steps that succeeded and running the rest (from the first that did not).
   */
  async retry(cx: Caller, id: string): Promise<Execution> {
    const before = await this.getExecution(cx.principal, id);
    if (before.status !== 'failed' && before.status !== 'cancelled') {
      throw new ConcordError(ErrorCode.EventRejected, `execution ${id} is ${before.status}: only a failed or cancelled one is retried`, { currentStatus: before.status, action: 'retry' });
    }
    const s = (await this.#executions.current(id))!.context;
    const reuse: Reuse = Object.fromEntries(s.steps.filter((st) => st.phase === 'main' && st.status === 'COMPLETED').map((st) => [st.id, { output: st.output }]));
    const steps = s.steps.map((st) => ({
      id: st.id,
      stepNumber: st.stepNumber,
      dependencies: st.dependencies,
      phase: st.phase,
      type: st.type,
      spec: st.spec,
      if: st.if,
      forEach: st.forEach,
      timeoutMs: st.timeoutMs,
      retry: st.retry,
      onError: st.onError,
    }));
    const { rows } = await this.o.pool.query<{ definition: PlaybookDef }>(`SELECT definition FROM playbook_versions WHERE playbook_id = $1 AND version = $2`, [s.playbookId, s.playbookVersion]);
    const definition = rows[0]?.definition ?? { name: s.playbookName, steps: [] };
    return this.#start(
      cx,
      { id: s.playbookId, tenant: s.tenant ?? '', name: s.playbookName, version: s.playbookVersion, definition },
      { kind: 'retry', retryOf: id },
      s.inputs,
      { executionId: randomUUID(), reuse, steps, parallelism: s.parallelism },
    );
  }

  // ---- triggers ----------------------------------------------------------------------------

  /**
   * `POST /playbooks/{id}/webhook`, Standard Webhooks: the signature over the raw body with the
   * playbook's secret, a timestamp within 5 minutes, a webhook-id not seen before; the JSON body
   * is the inputs.
   */
  async webhook(id: string, raw: string, headers: { id?: string; timestamp?: string; signature?: string }): Promise<Execution> {
    const r = await this.#row(id);
    // an unknown playbook and a bad signature look alike to the caller
    const refuse = (why: string) => new DomainError(DomainCode.Unauthenticated, why);
    if (!r || !hasTrigger(r.definition, 'webhook')) throw notFound('playbook', id);
    if (!headers.id || !headers.timestamp || !headers.signature) throw refuse('webhook-id, webhook-timestamp and webhook-signature are required');
    if (headers.id.length > 200) throw refuse('webhook-id is too long');
    let secret: string | undefined;
    try {
      secret = (await this.o.vault.get({ tenantId: r.tenant, service: WEBHOOK_SERVICE, connectionId: id })).secret.secret;
    } catch {
      secret = undefined;
    }
    const nowSec = Math.floor(this.o.clock.now() / 1000);
    if (!secret || !verify(secret, { id: headers.id, timestamp: headers.timestamp, signature: headers.signature }, raw, nowSec, TOLERANCE_SEC)) {
      throw refuse('the webhook signature does not verify, or its timestamp is more than 5 minutes off');
    }
    let body: unknown;
    try {
      body = raw.trim() === '' ? {} : JSON.parse(raw);
    } catch {
      throw new DomainError(DomainCode.MalformedJson, 'the webhook body is not valid JSON');
    }
    const inputs = resolveInputs(r.definition, body);
    const executionId = hashId(`webhook\n${id}\n${headers.id}`);
    const { rowCount } = await this.o.pool.query(
      `INSERT INTO playbook_webhook_ids (playbook_id, webhook_id, received_at, execution_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      [id, headers.id, this.#now(), executionId],
    );
    if (rowCount === 0) throw new ConcordError(ErrorCode.Conflict, `webhook-id ${headers.id} was used already`);
    const system: Principal = { sub: `webhook:${headers.id}`, role: 'service', tenantId: null };
    return this.#start({ principal: system }, r, { kind: 'webhook', webhookId: headers.id }, inputs, { executionId });
  }

  /** A NATS message on a playbook's subject: one execution per message id. */
  async fromNats(playbookId: string, subject: string, messageId: string, data: unknown): Promise<Execution | null> {
    const r = await this.#row(playbookId);
    if (!r || !hasTrigger(r.definition, 'nats')) return null;
    const inputs = resolveInputs(r.definition, data);
    const system: Principal = { sub: `nats:${subject}`, role: 'service', tenantId: null };
    return this.#start({ principal: system }, r, { kind: 'nats', subject, messageId }, inputs, { executionId: hashId(`nats\n${playbookId}\n${messageId}`) });
  }

  /** Subjects of every live playbook's nats triggers. */
  async natsSubjects(): Promise<Array<{ playbookId: string; subject: string }>> {
    const { rows } = await this.o.pool.query<{ id: string; subject: string }>(
      `SELECT p.id, unnest(v.nats_subjects) AS subject FROM playbooks p JOIN playbook_versions v ON v.playbook_id = p.id AND v.version = p.version WHERE p.deleted_at IS NULL`,
    );
    return rows.map((r) => ({ playbookId: r.id, subject: r.subject }));
  }

  /** A cron tick: starts the tick's executions (catch-up and overlap applied), answers the next due time. */
  async tick(input: { playbookId: string; due: string; cron: CronSpec; busy: boolean }): Promise<TickAnswer> {
    const now = this.o.clock.now();
    const r = await this.#row(input.playbookId);
    const cron = r ? cronOf(r.definition) : null;
    const next = cron ? nextTick(cron, now) : null;
    const answer: TickAnswer = { started: [], held: [], skipped: 0, nextAt: next === null ? null : new Date(next).toISOString() };
    if (!r || !cron) return answer;
    const { run, missed } = ticksToRun(cron, Date.parse(input.due), now);
    answer.skipped = missed;
    let busy = input.busy;
    const system: Principal = { sub: 'cron', role: 'service', tenantId: null };
    for (const t of run) {
      if (busy && cron.overlap === 'skip') {
        answer.skipped += 1;
        continue;
      }
      const hold = busy && cron.overlap === 'queue';
      const inputs = resolveInputs(r.definition, {});
      const e = await this.#start({ principal: system }, r, { kind: 'cron', scheduledAt: new Date(t).toISOString() }, inputs, {
        executionId: cronExecutionId(r.id, t),
        hold,
        notify: { type: scheduleType.type, id: r.id },
      });
      (hold ? answer.held : answer.started).push(e.id);
      busy = true;
    }
    return answer;
  }

  /** Forgets webhook-ids past their use (a timestamp that old is refused anyway). */
  async prune(): Promise<number> {
    const { rowCount } = await this.o.pool.query(`DELETE FROM playbook_webhook_ids WHERE received_at < $1`, [new Date(this.o.clock.now() - WEBHOOK_ID_RETENTION_MS)]);
    return rowCount ?? 0;
  }

  /** The `playbook` connector: what the execution and schedule actors' calls run. */
  invoker(): ConnectorInvoker {
    return async (operation: string, input: unknown, ctx: ConnectorCallContext) => {
      switch (operation) {
        case 'step':
          return this.work.run(input as StepCall, ctx);
        case 'abort': {
          const i = input as { executionId: string; stepIds: string[] };
          return { aborted: this.work.abort(i.executionId, i.stepIds) };
        }
        case 'tick':
          return this.tick(input as { playbookId: string; due: string; cron: CronSpec; busy: boolean });
        default:
          throw new ConnectorError(ConnectorCode.Validation, `connector 'playbook' has no operation '${operation}'`);
      }
    };
  }
}
