interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Round trips shared by items ready at the same moment: group commit for writes (one statement,
 * one WAL flush for many) and coalesced point reads (one `= ANY($1)` for many). A lone item goes
 * at once; a batch forms only while `concurrency` round trips are already in flight, so grouping
 * never adds latency. A batch that fails is retried one item at a time (when `splitOnError`
 * allows), so one bad item cannot fail its neighbours.
 */
export class Grouper<T, R> {
  readonly #queue: Pending<T, R>[] = [];
  #inflight = 0;

  constructor(
    private readonly write: (items: readonly T[]) => Promise<R[]>,
    private readonly o: { maxBatch: number; concurrency: number; splitOnError?: (err: unknown) => boolean },
  ) {}

  /** Resolves with the item's result once its batch's round trip is done. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  get queued(): number {
    return this.#queue.length;
  }

  #pump(): void {
    while (this.#inflight < this.o.concurrency && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.o.maxBatch);
      this.#inflight++;
      void this.#flush(batch).finally(() => {
        this.#inflight--;
        this.#pump();
      });
    }
  }

  async #flush(batch: Pending<T, R>[]): Promise<void> {
    try {
      const results = await this.write(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length > 1 && (this.o.splitOnError?.(err) ?? true)) {
        for (const p of batch) await this.#flush([p]);
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }
}
