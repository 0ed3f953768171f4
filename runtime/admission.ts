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
 *
 * Work-conserving: the limit is there to share the database between tenants, and it costs the
 * batching of the group commit (at most `limit` transitions in flight, about five per commit
 * statement at 16). While one tenant alone has asked for places within `soloWindowMs`, it may
 * take up to `soloLimit`; as soon as another asks, the fair `limit` holds again (the newcomer
 * waits for the running work to fall below it: a commit or two), and keeps holding until the
 * other has been quiet for the window, so a tenant at a modest steady rate is not met by a full
 * solo load at each of its requests.
 */
export interface FairAdmissionOptions {
  /** Pieces of work running at once, all tenants together, while more than one tenant is active. */
  limit: number;
  /** Pieces of work running at once while one tenant alone is active (default: `limit`). */
  soloLimit?: number;
  /** How long a tenant counts as active after it last asked for a place (default 1,000 ms). */
  soloWindowMs?: number;
  /** Monotonic milliseconds (default `performance.now`). */
  now?: () => number;
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
  /** The tenant that asked last and when, and until when more than one tenant counts as active. */
  #last: string | undefined;
  #lastAt = -Infinity;
  #sharedUntil = -Infinity;
  readonly #soloLimit: number;
  readonly #window: number;
  readonly #now: () => number;

  constructor(private readonly o: FairAdmissionOptions) {
    if (!(o.limit >= 1)) throw new RangeError(`admission limit must be at least 1, got ${o.limit}`);
    this.#soloLimit = Math.max(o.limit, o.soloLimit ?? o.limit);
    this.#window = o.soloWindowMs ?? 1_000;
    this.#now = o.now ?? (() => performance.now());
  }

  /** The places of the moment: `soloLimit` while one tenant alone is active, else `limit`. */
  get limit(): number {
    return this.#limitAt(this.#now());
  }

  #limitAt(now: number): number {
    return now < this.#sharedUntil ? this.o.limit : this.#soloLimit;
  }

  /** Resolves with the release once the work may run (at once while fewer than the limit run). */
  admit(tenant: string): Promise<Release> {
    const now = this.#now();
    // another tenant asked within the window, or has work waiting: fair sharing until it is quiet
    if ((tenant !== this.#last && now - this.#lastAt < this.#window) || (now < this.#sharedUntil && this.#waitingOthers(tenant))) this.#sharedUntil = now + this.#window;
    this.#last = tenant;
    this.#lastAt = now;
    if (this.#running < this.#limitAt(now) && this.#waiting === 0) {
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

  /** Whether a tenant other than `tenant` has work waiting. */
  #waitingOthers(tenant: string): boolean {
    for (const t of this.#queues.keys()) if (t !== tenant) return true;
    return false;
  }

  /** Hands free places to the waiting tenants in turn. */
  #next(): void {
    const limit = this.limit;
    while (this.#running < limit && this.#waiting > 0) {
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
