import type pg from 'pg';
import { listDeadLetters, replayDeadLetter, type DeadLetter } from '../../runtime/dead-letters.js';
import type { CommandContext } from '../common/command.js';
import { DomainCode, DomainError } from '../common/errors.js';

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
 * through it and replay a message through the outbox.
 */
export class DeadLetterService {
  constructor(
    private readonly pool: pg.Pool,
    /** The runtime's partition count: a replayed message keeps its source's partition. */
    private readonly partitions: number,
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

  /** Replays a dead letter once (a second replay answers the row as it is). Operators only. */
  async replay({ principal }: CommandContext, id: number): Promise<DeadLetter> {
    if (principal.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'only operators may replay dead letters');
    return replayDeadLetter(this.pool, id, this.partitions);
  }
}
