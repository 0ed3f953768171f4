import type { Clock } from '../../runtime/clock.js';
import { deleteTimer, listTimers, lockTimer, makeTimerDue, type PendingTimer } from '../../runtime/control.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import type { Runtime } from '../../runtime/runtime.js';
import { recordAudit } from '../common/audit.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { decodeCursor, encodeCursor, transaction } from '../common/sql.js';
import { assertOperator, type ActionContext } from './actions.js';

export interface TimerQuery {
  type?: string;
  /** ISO time: only timers due before it. */
  dueBefore?: string;
  limit: number;
  cursor?: string;
}

/**
 * Pending durable timers across actors, for operators: list them, fire one now (through the
 * normal path: made due now, then claimed by a poller and applied exactly once), cancel one.
 * Firing and cancelling are audited in the transaction that changes the timer.
 */
export class TimerControl {
  constructor(
    private readonly runtime: Runtime,
    private readonly clock: Clock,
  ) {}

  /** A page of pending timers, soonest first. */
  async list(q: TimerQuery): Promise<{ data: PendingTimer[]; nextCursor: string | null }> {
    const cur = decodeCursor(q.cursor);
    if (q.cursor && (!cur || !/^\d+$/.test(cur.id))) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    const rows = await listTimers(this.runtime.database.pool, {
      type: q.type,
      dueBefore: q.dueBefore,
      after: cur ? { dueAt: cur.at, id: Number(cur.id) } : undefined,
      limit: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { data: page, nextCursor: rows.length > q.limit && last ? encodeCursor(last.dueAt, String(last.id)) : null };
  }

  /**
   * Makes the timer due now and wakes this process's poller: it fires through the normal path,
   * exactly once (deduped by its key and due time). A paused actor's timer answers ACTOR_PAUSED.
   */
  async fire(cx: ActionContext, id: number): Promise<PendingTimer> {
    assertOperator(cx);
    const now = this.clock.now();
    const timer = await transaction(this.runtime.database.pool, async (client) => {
      const locked = await lockTimer(client, id);
      if (!locked) throw notFound('timer', String(id));
      const { timer: before, actor } = locked;
      const ref = { type: before.actorType, id: before.actorId };
      if (actor?.paused) throw new ConcordError(ErrorCode.ActorPaused, `${ref.type}/${ref.id} is paused: resume it to fire its timers`, { ref });
      const after = (await makeTimerDue(client, id, now))!;
      await recordAudit(client, {
        principal: cx.principal,
        action: 'timer.fire',
        objectType: ref.type,
        objectId: ref.id,
        before: { version: actor?.version ?? null, timer: { id, key: before.key, dueAt: before.dueAt } },
        after: { version: actor?.version ?? null, timer: { id, key: after.key, dueAt: after.dueAt } },
        at: new Date(now).toISOString(),
        requestId: cx.requestId,
        reason: cx.reason,
      });
      return after;
    });
    this.runtime.timers.wake(now);
    return timer;
  }

  /** Cancels a pending timer: it never fires. */
  async cancel(cx: ActionContext, id: number): Promise<PendingTimer> {
    assertOperator(cx);
    const now = this.clock.now();
    const timer = await transaction(this.runtime.database.pool, async (client) => {
      const locked = await lockTimer(client, id);
      if (!locked) throw notFound('timer', String(id));
      const { actor } = locked;
      const gone = (await deleteTimer(client, id))!;
      await recordAudit(client, {
        principal: cx.principal,
        action: 'timer.cancel',
        objectType: gone.actorType,
        objectId: gone.actorId,
        before: { version: actor?.version ?? null, timer: { id, key: gone.key, event: gone.event, dueAt: gone.dueAt } },
        after: { version: actor?.version ?? null, timer: null },
        at: new Date(now).toISOString(),
        requestId: cx.requestId,
        reason: cx.reason,
      });
      return gone;
    });
    // this process's cached copy still holds the timer: its next transition must start without it
    this.runtime.host.evict({ type: timer.actorType, id: timer.actorId });
    return timer;
  }
}
