import { randomUUID } from 'node:crypto';
import type { Clock } from '../../runtime/clock.js';
import { lockActor, setPaused, writeFork, type ControlledActor } from '../../runtime/control.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { assertRef, upgradeSnapshot, type ActorRef } from '../../runtime/registry.js';
import type { Runtime } from '../../runtime/runtime.js';
import { replay } from '../../runtime/step.js';
import { auditExtras, recordAudit, toAuditRow, type AuditRecord } from '../common/audit.js';
import type { CommandContext } from '../common/command.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { planRetry } from './retry.js';
import { transaction } from '../common/sql.js';

/** What every operator action takes besides its target: who asks (in `cx`) and why. */
export interface ActionContext extends CommandContext {
  reason: string;
}

/** The actor's run state after a pause or resume. */
export interface PauseResult {
  type: string;
  id: string;
  version: number;
  status: string;
  paused: ControlledActor['paused'];
  /** False when the actor already was in the asked state (nothing changed, nothing audited). */
  changed: boolean;
}

export interface SendAnswer {
  type: string;
  id: string;
  version: number;
  value: unknown;
  status: string;
}

export interface RetryAnswer extends SendAnswer {
  /** The step retried: a workflow step's id and name, or a saga step's name. */
  step: { id: string; name: string | null };
  /** The event sent for it. */
  event: string;
}

export interface ForkResult {
  type: string;
  id: string;
  version: number;
  value: unknown;
  status: string;
  forkedFrom: { type: string; id: string; version: number };
}

/** Operators only, always with a reason: checked here as well as at the edge. */
export function assertOperator(cx: ActionContext): void {
  if (cx.principal.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'only operators may act on actors');
  if (typeof cx.reason !== 'string' || cx.reason.trim() === '') {
    throw new DomainError(DomainCode.ValidationFailed, 'every operator action needs a reason', { issues: [{ path: ['reason'], message: 'required' }] });
  }
}

/**
 * Operator actions on one actor: pause, resume, send an event, fork from a journal entry. Each
 * writes an audit record (who, what, why, the versions before and after) with the change itself:
 * in the same transaction, or for `send` in the transition's own commit statement.
 */
export class OperatorActions {
  constructor(
    private readonly runtime: Runtime,
    private readonly clock: Clock,
  ) {}

  #assertType(type: string): void {
    if (!this.runtime.host.registry.has(type)) {
      throw new DomainError(DomainCode.NotFound, `actor type '${type}' is not deployed`, { type, deployed: this.runtime.host.registry.types() });
    }
  }

  #audit(cx: ActionContext, action: string, ref: ActorRef, before: unknown, after: unknown): AuditRecord {
    return {
      principal: cx.principal,
      action: `actor.${action}`,
      objectType: ref.type,
      objectId: ref.id,
      before,
      after,
      at: new Date(this.clock.now()).toISOString(),
      requestId: cx.requestId,
      reason: cx.reason,
    };
  }

  /** Pauses the actor: it applies nothing (HTTP commands get ACTOR_PAUSED; messages and timers wait) until resumed. */
  pause(cx: ActionContext, ref: ActorRef): Promise<PauseResult> {
    return this.#setPaused(cx, ref, true);
  }

  /** Resumes a paused actor: what waited (messages in order, due timers) is applied now. */
  async resume(cx: ActionContext, ref: ActorRef): Promise<PauseResult> {
    const out = await this.#setPaused(cx, ref, false);
    // this process's poller looks at once; others within their poll (TIMER_POLL_MS)
    if (out.changed) this.runtime.timers.wake(this.clock.now());
    return out;
  }

  async #setPaused(cx: ActionContext, ref: ActorRef, pause: boolean): Promise<PauseResult> {
    assertOperator(cx);
    this.#assertType(ref.type);
    const out = await transaction(this.runtime.database.pool, async (client) => {
      const before = await lockActor(client, ref);
      if (!before) throw new ConcordError(ErrorCode.ActorNotFound, `actor ${ref.type}/${ref.id} not found`, { ref });
      if (Boolean(before.paused) === pause) return { actor: before, changed: false };
      const mark = pause ? { at: new Date(this.clock.now()).toISOString(), by: cx.principal.sub, reason: cx.reason } : null;
      const after = (await setPaused(client, ref, mark))!;
      const view = (a: ControlledActor) => ({ version: a.version, status: a.status, paused: a.paused !== null });
      await recordAudit(client, this.#audit(cx, pause ? 'pause' : 'resume', ref, view(before), view(after)));
      return { actor: after, changed: true };
    });
    this.runtime.host.evict(ref);
    const a = out.actor;
    return { type: ref.type, id: ref.id, version: a.version, status: a.status, paused: a.paused, changed: out.changed };
  }

  /**
   * Sends an event the actor's current state accepts. One the state does not accept is the usual
   * EVENT_REJECTED (409) naming the accepted events; a paused actor answers ACTOR_PAUSED. The
   * audit record commits in the transition's own statement.
   */
  async send(cx: ActionContext, ref: ActorRef, event: { type: string; [k: string]: unknown }): Promise<SendAnswer> {
    assertOperator(cx);
    this.#assertType(ref.type);
    // an operator's send never creates an actor: it must exist
    const current = await this.runtime.host.current(ref);
    if (!current) throw new ConcordError(ErrorCode.ActorNotFound, `actor ${ref.type}/${ref.id} not found`, { ref });
    const r = await this.runtime.host.send(ref, event, {
      messageId: `operator:${cx.requestId ?? randomUUID()}`,
      extras: (t) => {
        const rec = this.#audit(cx, 'send', ref, { version: t.version - 1 }, { version: t.version, status: t.status, event });
        return auditExtras(toAuditRow({ ...rec, dedupeKey: `operator/${ref.type}/${ref.id}@${t.version}` }));
      },
      rejected: (why) =>
        new ConcordError(ErrorCode.EventRejected, `${ref.type}/${ref.id} in state ${JSON.stringify(why.value)} does not accept '${why.event}'`, {
          accepts: why.accepts,
          currentStatus: why.status,
        }),
    });
    return { type: ref.type, id: ref.id, version: r.version, value: r.value, status: r.status };
  }

  /**
   * A new actor of the same type whose snapshot is the replay of this actor's journal up to
   * `version`, marked as forked from it. The original is untouched. The effects and timers of the
   * replayed events are NOT carried out again: the fork starts with no pending timers and
   * nothing in the outbox. Its context is the original's as of that version (an id the machine
   * keeps in its context is the original's).
   */
  async fork(cx: ActionContext, ref: ActorRef, version: number, newId?: string): Promise<ForkResult> {
    assertOperator(cx);
    this.#assertType(ref.type);
    const def = this.runtime.host.registry.get(ref.type);
    const source = await this.runtime.host.get(ref); // not found for an unknown actor
    if (!Number.isInteger(version) || version < 1 || version > source.version) {
      throw new DomainError(DomainCode.ValidationFailed, `version must be between 1 and ${source.version}`, { issues: [{ path: ['version'], message: `1..${source.version}` }] });
    }
    const entries = await this.runtime.host.history(ref, { limit: version });
    const snapshot = upgradeSnapshot(def, ref, replay(def.machine, entries[0]?.input ?? { id: ref.id, tenant: source.tenant }, entries), def.version);
    const projection = def.project(snapshot);
    const id = newId ?? `${ref.id.slice(0, 180)}.fork-${randomUUID().slice(0, 8)}`;
    assertRef({ type: ref.type, id }); // ids the engine accepts (they travel in NATS subjects)
    const at = new Date(this.clock.now()).toISOString();
    const from = { type: ref.type, id: ref.id, version };
    await transaction(this.runtime.database.pool, async (client) => {
      const written = await writeFork(client, {
        ref: { type: ref.type, id },
        tenant: source.tenant,
        machineVersion: def.version,
        version,
        value: snapshot.value,
        status: projection.status,
        attrs: projection.attrs ?? {},
        snapshot,
        from,
        at,
      });
      if (!written) throw new ConcordError(ErrorCode.Conflict, `actor ${ref.type}/${id} exists already`, { id });
      await recordAudit(client, this.#audit(cx, 'fork', { type: ref.type, id }, { ...from, sourceVersion: source.version }, { id, version, status: projection.status }));
    });
    return { type: ref.type, id, version, value: snapshot.value, status: projection.status, forkedFrom: from };
  }

  /**
   * Retries a failed step where the actor's machine allows it by hand (`retry.ts`: a workflow's
   * FAILED step, a saga's failed compensation): the event it plans goes through the normal path
   * with its audit record (`actor.retry`, the step named) in the transition's commit.
   */
  async retry(cx: ActionContext, ref: ActorRef, step: string | undefined): Promise<RetryAnswer> {
    assertOperator(cx);
    this.#assertType(ref.type);
    // read fresh from Postgres: the plan names the step that failed as of now
    const view = await this.runtime.host.get(ref);
    const plan = planRetry(ref.type, view.context, step, { at: new Date(this.clock.now()).toISOString(), by: cx.principal.sub });
    const r = await this.runtime.host.send(ref, plan.event, {
      messageId: `operator:${cx.requestId ?? randomUUID()}`,
      extras: (t) => {
        const rec = this.#audit(cx, 'retry', ref, { version: t.version - 1, status: view.status, step: plan.step }, { version: t.version, status: t.status, event: plan.event.type });
        return auditExtras(toAuditRow({ ...rec, dedupeKey: `operator/${ref.type}/${ref.id}@${t.version}` }));
      },
      rejected: (why) =>
        new ConcordError(ErrorCode.EventRejected, `${ref.type}/${ref.id} in state ${JSON.stringify(why.value)} does not accept a retry of ${plan.step.name ?? plan.step.id} now`, {
          accepts: why.accepts,
          currentStatus: why.status,
        }),
    });
    return { type: ref.type, id: ref.id, version: r.version, value: r.value, status: r.status, step: plan.step, event: plan.event.type };
  }
}
