import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import { getDeadLetter, listDeadLetters, replayDeadLetter, type DeadLetter } from '../../runtime/dead-letters.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { recordAudit } from '../common/audit.js';
import type { CommandContext } from '../common/command.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { assertOperator, type ActionContext } from './actions.js';

export interface DeadLetterQuery {
  reason?: string;
  /** An actor id is unique only within its type: `actorId` counts only with `actorType`. */
  actorType?: string;
  actorId?: string;
  includeReplayed: boolean;
  afterId: number;
  limit: number;
}

/**
 * What operators do with the engine's dead-letter store (`runtime/dead-letters.ts`): page
 * through it, read one, and replay one through the outbox, as it was or with an edited payload,
 * audited (`dead_letter.replay`, the payloads before and after) in the replay's transaction.
 */
/** Replays dead letters of one origin that are not messages (e.g. `outbound`: a provider call run again); null: not one of its open letters. */
export type Replayer = (id: number) => Promise<DeadLetter | null>;

export class DeadLetterService {
  constructor(
    private readonly pool: pg.Pool,
    /** The runtime's partition count: a replayed message keeps its source's partition. */
    private readonly partitions: number,
    private readonly clock: Clock,
    /** Replayers by `origin`; letters of other origins replay through the outbox. */
    private readonly replayers: Readonly<Record<string, Replayer>> = {},
  ) {}

  /** A page of dead letters, oldest first; `nextAfterId` is set when the page is full. */
  async list(q: DeadLetterQuery): Promise<{ data: DeadLetter[]; nextAfterId: number | null }> {
    const data = await listDeadLetters(this.pool, {
      reason: q.reason,
      actor: q.actorType ? { type: q.actorType, id: q.actorId } : undefined,
      includeReplayed: q.includeReplayed,
      afterId: q.afterId,
      limit: q.limit,
    });
    return { data, nextAfterId: data.length === q.limit ? data[data.length - 1]!.id : null };
  }

  /** One dead letter (replayed or not). Operators only. */
  async get({ principal }: CommandContext, id: number): Promise<DeadLetter> {
    if (principal.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'only operators may read dead letters');
    const dl = await getDeadLetter(this.pool, id);
    if (!dl) throw new DomainError(DomainCode.NotFound, `dead letter ${id} not found`, { id });
    return dl;
  }

  /**
   * Replays a dead letter once, with `payload` instead of the stored one when given (the row
   * keeps the original; the audit record has both). A second plain replay answers the row as it
   * is; a second replay with an edited payload is a 409, since nothing would be sent. A message
   * for an actor must stay an event: an object with a `type`. Operators only, with a reason.
   */
  async replay(cx: ActionContext, id: number, payload?: unknown): Promise<DeadLetter> {
    assertOperator(cx);
    const { rows } = await this.pool.query<{ origin: string }>('SELECT origin FROM dead_letters WHERE id = $1', [id]);
    const replayer = rows[0] ? this.replayers[rows[0].origin] : undefined;
    if (replayer) {
      // a provider call (or another origin with its own replayer) runs again as it was recorded
      if (payload !== undefined) throw new DomainError(DomainCode.ValidationFailed, `dead letter ${id} is a ${rows[0]!.origin} call: it is replayed as recorded, without an edited payload`, { issues: [{ path: ['payload'], message: 'not allowed for this dead letter' }] });
      const before = await getDeadLetter(this.pool, id);
      const replayed = (await replayer(id)) ?? (await getDeadLetter(this.pool, id));
      if (!replayed) throw new DomainError(DomainCode.NotFound, `dead letter ${id} not found`, { id });
      if (before && before.replayedAt === null) {
        await recordAudit(this.pool, {
          principal: cx.principal,
          action: 'dead_letter.replay',
          objectType: 'dead_letter',
          objectId: String(id),
          before: { replayedAt: null, payload: before.payload },
          after: { replayedAt: replayed.replayedAt, payload: before.payload, edited: false },
          at: new Date(this.clock.now()).toISOString(),
          requestId: cx.requestId,
          reason: cx.reason,
        });
      }
      return replayed;
    }
    return replayDeadLetter(this.pool, id, this.partitions, {
      payload,
      onReplayed: (dl) => {
        if (payload !== undefined) throw new ConcordError(ErrorCode.Conflict, `dead letter ${id} was replayed at ${dl.replayedAt}: an edited payload would not be sent`, { replayedAt: dl.replayedAt });
      },
      within: async (client, before, after) => {
        if (payload !== undefined && before.actorType !== null) assertEvent(payload);
        await recordAudit(client, {
          principal: cx.principal,
          action: 'dead_letter.replay',
          objectType: 'dead_letter',
          objectId: String(id),
          before: { replayedAt: null, payload: before.payload },
          after: { replayedAt: after.replayedAt, payload: payload === undefined ? before.payload : payload, edited: payload !== undefined },
          at: new Date(this.clock.now()).toISOString(),
          requestId: cx.requestId,
          reason: cx.reason,
        });
      },
    });
  }
}

/** An edited message for an actor is still one of its events. */
function assertEvent(payload: unknown): void {
  const type = typeof payload === 'object' && payload !== null && !Array.isArray(payload) ? (payload as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || type === '' || type.startsWith('xstate.')) {
    throw new DomainError(DomainCode.ValidationFailed, 'a message for an actor is an event: an object with a `type` (not xstate.*)', { issues: [{ path: ['payload', 'type'], message: 'required' }] });
  }
}
