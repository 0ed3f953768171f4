import type pg from 'pg';
import { isRetryablePgError } from './errors.js';
import { commitBatch, type CommitRecord } from './store.js';

interface Pending {
  rec: CommitRecord;
  resolve: (committed: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit. Transitions of different actors that are ready at the same moment share one
 * statement (and one WAL flush). Under light load a transition is flushed at once, alone; a
 * batch forms only while `concurrency` flushes are already in flight, so batching never adds
 * latency. A batch that fails for a non-transient reason is retried one record at a time, so
 * one bad transition cannot fail its neighbours.
 */
export class Committer {
  readonly #queue: Pending[] = [];
  #inflight = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly maxBatch: number,
    private readonly concurrency: number,
  ) {}

  /** Resolves true when committed, false when the version or message id had moved on. */
  commit(rec: CommitRecord): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ rec, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inflight < this.concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      this.#inflight++;
      void this.#flush(batch).finally(() => {
        this.#inflight--;
        this.#pump();
      });
    }
  }

  async #flush(batch: Pending[]): Promise<void> {
    try {
      const ok = await commitBatch(
        this.pool,
        batch.map((p) => p.rec),
      );
      for (const p of batch) p.resolve(ok.has(`${p.rec.type}/${p.rec.id}`));
    } catch (err) {
      if (batch.length > 1 && !isRetryablePgError(err)) {
        for (const p of batch) await this.#flush([p]);
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }

  get queued(): number {
    return this.#queue.length;
  }
}
