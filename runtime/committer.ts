import type pg from 'pg';
import { isRetryablePgError } from './errors.js';
import { Grouper } from './grouper.js';
import { commitBatch, type CommitRecord } from './store.js';

export type CommitOutcome = 'committed' | 'conflict' | 'fenced';

/**
 * Group commit of transitions: transitions of different actors that are ready at the same
 * moment share one statement (see store.ts). A batch that fails for a non-transient reason is
 * retried one record at a time; a transient failure (a dropped connection, a serialization
 * failure) fails the batch and the host reloads and recomputes.
 */
export class Committer {
  readonly #writer: Grouper<CommitRecord, CommitOutcome>;

  constructor(pool: pg.Pool, maxBatch: number, concurrency: number) {
    this.#writer = new Grouper(
      async (recs) => {
        const done = await commitBatch(pool, recs);
        return recs.map((r) => done.get(`${r.type}/${r.id}`) ?? 'conflict');
      },
      { maxBatch, concurrency, splitOnError: (err) => !isRetryablePgError(err) },
    );
  }

  /**
   * `committed`; `conflict` when the version or message id had moved on; `fenced` when the
   * record's partition lease has passed to another process.
   */
  commit(rec: CommitRecord): Promise<CommitOutcome> {
    return this.#writer.submit(rec);
  }

  get queued(): number {
    return this.#writer.queued;
  }
}
