import type pg from 'pg';
import { isRetryablePgError } from './errors.js';
import { Grouper } from './grouper.js';
import { commitBatch, type CommitRecord } from './store.js';

/**
 * Group commit of transitions: transitions of different actors that are ready at the same
 * moment share one statement (see store.ts). A batch that fails for a non-transient reason is
 * retried one record at a time; a transient failure (a dropped connection, a serialization
 * failure) fails the batch and the host reloads and recomputes.
 */
export class Committer {
  readonly #writer: Grouper<CommitRecord, boolean>;

  constructor(pool: pg.Pool, maxBatch: number, concurrency: number) {
    this.#writer = new Grouper(
      async (recs) => {
        const ok = await commitBatch(pool, recs);
        return recs.map((r) => ok.has(`${r.type}/${r.id}`));
      },
      { maxBatch, concurrency, splitOnError: (err) => !isRetryablePgError(err) },
    );
  }

  /** Resolves true when committed, false when the version or message id had moved on. */
  commit(rec: CommitRecord): Promise<boolean> {
    return this.#writer.submit(rec);
  }

  get queued(): number {
    return this.#writer.queued;
  }
}
