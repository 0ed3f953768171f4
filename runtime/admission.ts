/**
 * Fair admission of work by tenant: at most `limit` pieces of work run at once; past that, each
 * waits in its tenant's queue, and a freed place goes to the tenants in turn (weighted
 * round-robin: a tenant at the front of the rotation takes up to its weight of places, then goes
 * to the back). So a tenant with a thousand requests waiting and one with a single request share
 * the next places instead of the single one queueing behind the thousand: the wait is where the
 * queue forms (in front of the database pool and the group commit), not inside them, where every
 * tenant's work is first come, first served.
 *
 * A tenant's own work keeps its order (first come, first served within the tenant).
 */
export interface FairAdmissionOptions {
  /** Pieces of work running at once, all tenants together. */
  limit: number;
  /** Places a tenant takes per turn (default 1); a tier can set it higher. */
  weightOf?: (tenant: string) => number;
}

/** Gives back the place `admit` took; calling it again does nothing. */
export type Release = () => void;

export class FairAdmission {
  /** Waiting work per tenant, in rotation order (the first key is served next). */
  readonly #queues = new Map<string, Array<() => void>>();
  /** Places the tenant at the front of the rotation has taken this turn. */
  #taken = 0;
  #running = 0;
  #waiting = 0;

  constructor(private readonly o: FairAdmissionOptions) {
    if (!(o.limit >= 1)) throw new RangeError(`admission limit must be at least 1, got ${o.limit}`);
  }

  /** Resolves with the release once the work may run (at once while fewer than `limit` run). */
  admit(tenant: string): Promise<Release> {
    if (this.#running < this.o.limit && this.#waiting === 0) {
      this.#running++;
      return Promise.resolve(this.#release());
    }
    return new Promise((resolve) => {
      let q = this.#queues.get(tenant);
      if (!q) this.#queues.set(tenant, (q = []));
      q.push(() => resolve(this.#release()));
      this.#waiting++;
      this.#next();
    });
  }

  /** Runs `work` once admitted, and gives the place back when it settles. */
  async run<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    const release = await this.admit(tenant);
    try {
      return await work();
    } finally {
      release();
    }
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting;
  }

  #release(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#running--;
      this.#next();
    };
  }

  /** Hands free places to the waiting tenants in turn. */
  #next(): void {
    while (this.#running < this.o.limit && this.#waiting > 0) {
      const [tenant, q] = this.#queues.entries().next().value!;
      const go = q.shift()!;
      this.#waiting--;
      this.#running++;
      this.#taken++;
      const weight = Math.max(1, Math.floor(this.o.weightOf?.(tenant) ?? 1));
      if (q.length === 0 || this.#taken >= weight) {
        // to the back of the rotation (or gone when it has nothing waiting)
        this.#queues.delete(tenant);
        if (q.length > 0) this.#queues.set(tenant, q);
        this.#taken = 0;
      }
      go();
    }
  }
}
