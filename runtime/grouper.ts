interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export interface GrouperOptions<T> {
  maxBatch: number;
  concurrency: number;
  splitOnError?: (err: unknown) => boolean;
  /**
   * Fair queuing: items are queued per key (the tenant of a transition) and a batch takes them
   * round-robin across keys, `weightOf(key)` at a time (default 1), so a key with thousands
   * queued shares each batch with a key that has one waiting instead of going ahead of it.
   * Without it the queue is first come, first served.
   */
  fairBy?: (item: T) => string;
  weightOf?: (key: string) => number;
}

/**
 * Round trips shared by items ready at the same moment: group commit for writes (one statement,
 * one WAL flush for many) and coalesced point reads (one `= ANY($1)` for many). A lone item goes
 * at once; a batch forms only while `concurrency` round trips are already in flight, so grouping
 * never adds latency. A batch that fails is retried one item at a time (when `splitOnError`
 * allows), so one bad item cannot fail its neighbours.
 */
export class Grouper<T, R> {
  /** Queues per fairness key, in the order keys were first seen; one queue ('') without `fairBy`. */
  readonly #queues = new Map<string, Pending<T, R>[]>();
  #queued = 0;
  #inflight = 0;

  constructor(
    private readonly write: (items: readonly T[]) => Promise<R[]>,
    private readonly o: GrouperOptions<T>,
  ) {}

  /** Resolves with the item's result once its batch's round trip is done. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      const key = this.o.fairBy ? this.o.fairBy(item) : '';
      let q = this.#queues.get(key);
      if (!q) this.#queues.set(key, (q = []));
      q.push({ item, resolve, reject });
      this.#queued++;
      this.#pump();
    });
  }

  get queued(): number {
    return this.#queued;
  }

  #pump(): void {
    while (this.#inflight < this.o.concurrency && this.#queued > 0) {
      const batch = this.#take();
      this.#inflight++;
      void this.#flush(batch).finally(() => {
        this.#inflight--;
        this.#pump();
      });
    }
  }

  /**
   * The next batch: first come, first served within a key; across keys, rounds in which each
   * key gives up to its weight. A key served goes to the back of the rotation, so the next batch
   * starts with the keys this one reached last.
   */
  #take(): Pending<T, R>[] {
    const max = this.o.maxBatch;
    if (this.#queues.size === 1) {
      const [key, q] = this.#queues.entries().next().value!;
      const batch = q.splice(0, max);
      if (q.length === 0) this.#queues.delete(key);
      this.#queued -= batch.length;
      return batch;
    }
    const batch: Pending<T, R>[] = [];
    while (batch.length < max && this.#queued > batch.length) {
      for (const [key, q] of [...this.#queues]) {
        if (batch.length >= max) break;
        const share = Math.max(1, Math.floor(this.o.weightOf?.(key) ?? 1));
        batch.push(...q.splice(0, Math.min(share, max - batch.length)));
        // to the back of the rotation (or gone when empty)
        this.#queues.delete(key);
        if (q.length > 0) this.#queues.set(key, q);
      }
    }
    this.#queued -= batch.length;
    return batch;
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
