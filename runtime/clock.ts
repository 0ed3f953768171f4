/** The runtime's only source of time. Machines never read a clock; tests drive this one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private t = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(t: number): void {
    this.t = t;
  }
}

/**
 * The database's time, kept locally: each `sync` reads PostgreSQL's `clock_timestamp()` and pairs
 * it with the monotonic clock at the middle of the round trip; `now()` is that reading advanced by
 * the monotonic clock. So a machine whose wall clock is minutes off (or jumps: NTP steps, a VM
 * resumed, an operator's `date -s`) agrees with the other processes to within half a round trip,
 * and the times the runtime writes and compares (timer due times, journal stamps) are the
 * database's. Before the first sync it answers the local clock.
 */
export class DatabaseClock implements Clock {
  #base: number | undefined;
  #at = 0;
  /** The local clock minus the database's, as of the last sync (positive: this machine runs ahead). */
  skewMs = 0;

  constructor(private readonly local: Clock = systemClock) {}

  now(): number {
    // whole milliseconds, as Date.now(): a fraction would leak into due times computed from two readings
    return this.#base === undefined ? this.local.now() : Math.round(this.#base + (performance.now() - this.#at));
  }

  /** Reads the database's time once; `query` answers `clock_timestamp()` in epoch milliseconds. */
  async sync(query: () => Promise<number>): Promise<void> {
    const t0 = performance.now();
    const localBefore = this.local.now();
    const db = await query();
    const t1 = performance.now();
    this.#base = db;
    this.#at = (t0 + t1) / 2;
    this.skewMs = Math.round(localBefore + (t1 - t0) / 2 - db);
  }
}
