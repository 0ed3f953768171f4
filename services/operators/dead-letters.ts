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
/** Replays dead letters of one origin that are not messages (e.g. `outbound`: a provider call run again); null: not one of its open letters. */
export type Replayer = (id: number) => Promise<DeadLetter | null>;

export class DeadLetterService {
  constructor(
    private readonly pool: pg.Pool,
    /** The runtime's partition count: a replayed message keeps its source's partition. */
    private readonly partitions: number,
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

  /** Replays a dead letter once (a second replay answers the row as it is). Operators only. */
  async replay({ principal }: CommandContext, id: number): Promise<DeadLetter> {
    if (principal.role !== 'operator') throw new DomainError(DomainCode.Forbidden, 'only operators may replay dead letters');
    const { rows } = await this.pool.query<{ origin: string }>('SELECT origin FROM dead_letters WHERE id = $1', [id]);
    const replayer = rows[0] ? this.replayers[rows[0].origin] : undefined;
    if (replayer) {
      const replayed = await replayer(id);
      if (replayed) return replayed;
      // already replayed: answer the row as it is, as the outbox replay does
      const [row] = await listDeadLetters(this.pool, { includeReplayed: true, afterId: id - 1, limit: 1 });
      if (row && row.id === id) return row;
    }
    return replayDeadLetter(this.pool, id, this.partitions);
  }
}
