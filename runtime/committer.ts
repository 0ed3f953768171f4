import type pg from 'pg';
import { isRetryablePgError } from './errors.js';
import { Grouper } from './grouper.js';
import { CommitStatement, type CommitExtension, type CommitRecord } from './store.js';

/** What became of a transition's commit: `refusedBy` names the commit extension that refused it. */
export type CommitOutcome = 'committed' | 'conflict' | 'fenced' | { refusedBy: string };

/**
 * Group commit of transitions: transitions of different actors that are ready at the same
 * moment share one statement (see store.ts). A batch that fails for a non-transient reason is
 * retried one record at a time; a transient failure (a dropped connection, a serialization
 * failure) fails the batch and the host reloads and recomputes.
 *
 * The statement includes the commit extensions registered before the first commit (`extend`);
 * it is fixed from then on, so every transition of the process is the same prepared statement.
 */
export class Committer {
  readonly #writer: Grouper<CommitRecord, CommitOutcome>;
  readonly #extensions: CommitExtension[] = [];
  #statement: CommitStatement | undefined;

  /**
   * `tenantWeight`: batches are formed fairly across tenants (round-robin, this many of a tenant's
   * transitions per round), so one tenant's flood does not queue every other tenant's commits
   * behind it; without it, first come, first served.
   */
  constructor(pool: pg.Pool, maxBatch: number, concurrency: number, tenantWeight?: (tenant: string) => number) {
    this.#writer = new Grouper(
      async (recs) => {
        const done = await this.statement.run(pool, recs);
        return recs.map((r) => done.get(`${r.type}/${r.id}`) ?? 'conflict');
      },
      {
        maxBatch,
        concurrency,
        splitOnError: (err) => !isRetryablePgError(err),
        ...(tenantWeight ? { fairBy: (r: CommitRecord) => r.tenant ?? '', weightOf: tenantWeight } : {}),
      },
    );
  }

  /** Adds a commit extension; only before the first commit (the statement is composed then). */
  extend(ext: CommitExtension): void {
    if (this.#statement) throw new Error(`commit extension '${ext.name}' registered after the first commit: register extensions before the runtime starts`);
    new CommitStatement([...this.#extensions, ext]); // a bad name fails here, at registration
    this.#extensions.push(ext);
  }

  /** The one commit statement, composed on first use. */
  get statement(): CommitStatement {
    return (this.#statement ??= new CommitStatement(this.#extensions));
  }

  /**
   * `committed`; `conflict` when the version or message id had moved on; `fenced` when the
   * record's partition lease has passed to another process; `{ refusedBy }` when a commit
   * extension refused it.
   */
  commit(rec: CommitRecord): Promise<CommitOutcome> {
    return this.#writer.submit(rec);
  }

  get queued(): number {
    return this.#writer.queued;
  }
}
