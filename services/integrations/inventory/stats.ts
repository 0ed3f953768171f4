/**
 * Keeps PostgreSQL's planner statistics of the tables the sync and the webhook apply read by key
 * (`integration_mappings`, `inventory_items`) current while a sync fills them.
 *
 * Why: a table that was never analyzed has no column statistics, and the planner then takes
 * `service = $1 AND connection_id = $2` for one row. A lookup of one mapping by external key (the
 * webhook apply), the baseline update and our versioned stock update were then planned as a scan
 * of every mapping or item of the connection: about 85 ms per webhook with 10,000 SKUs, so at
 * 100 webhooks/s none was applied within 30 s (bench/sync.ts). Autovacuum analyzes eventually,
 * but it may be off (the shared server here), and it wakes once a minute at best, while a full
 * sync creates thousands of mappings in seconds and the webhooks of those SKUs arrive meanwhile.
 *
 * `nudge()` is cheap and may be called often (after a page created mappings, on every webhook
 * apply): at most one check runs at a time, at most one per `MIN_INTERVAL_MS`, and a nudge in
 * between leaves one check for the end of the interval. A check analyzes a table that was never
 * analyzed, or one that grew since its last analyze by more than autovacuum's own rule would wait
 * for (50 rows + 10%), counting both PostgreSQL's live-row counter and the rows this process told
 * it of (the counter reaches the statistics view a second or so late). Updates do not count: the
 * webhook applies update the same rows all day, which moves no estimate a key lookup depends on
 * (counting them analyzed both tables every few seconds at 200 webhooks/s, 30-60 ms of a core each).
 */
import type pg from 'pg';
import type { Logger } from '../../../runtime/logger.js';

export const STATS_TABLES = ['integration_mappings', 'inventory_items'] as const;
export type StatsTable = (typeof STATS_TABLES)[number];

const MIN_INTERVAL_MS = 1_000;
const BASE_THRESHOLD = 50;
const SCALE_FACTOR = 0.1;

export class PlannerStats {
  #running = false;
  #last = 0;
  #trailing: NodeJS.Timeout | undefined;
  #disabled = false;
  /** Rows this process changed per table since it last analyzed it. */
  readonly #changed = new Map<StatsTable, number>();
  #idle: Array<() => void> = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** Rows this process added to a table (a full sync's new mappings). */
  changed(table: StatsTable, rows: number): void {
    if (rows <= 0) return;
    this.#changed.set(table, (this.#changed.get(table) ?? 0) + rows);
    this.nudge();
  }

  /** Asks for a check soon (never more than one at a time, nor more than one a second). */
  nudge(): void {
    if (this.#disabled || this.#running || this.#trailing) return;
    const wait = this.#last + MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#trailing = setTimeout(() => {
        this.#trailing = undefined;
        this.nudge();
      }, wait);
      this.#trailing.unref();
      return;
    }
    this.#running = true;
    void this.check()
      .catch((err: unknown) => {
        // not the owner of the tables (a read-only role): the planner is left to autovacuum
        if ((err as { code?: string }).code === '42501') this.#disabled = true;
        this.log.warn({ err }, 'refreshing the planner statistics of the inventory tables failed');
      })
      .finally(() => {
        this.#running = false;
        this.#last = performance.now();
        if (!this.#trailing) for (const w of this.#idle.splice(0)) w();
      });
  }

  /** Analyzes each table whose statistics are missing or behind; answers the tables analyzed. */
  async check(): Promise<StatsTable[]> {
    const { rows } = await this.pool.query<{ table: StatsTable; tuples: number; live: string | null }>(
      `SELECT c.relname AS table, c.reltuples::float8 AS tuples, s.n_live_tup::text AS live
         FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.oid = ANY(ARRAY[${STATS_TABLES.map((t) => `to_regclass('${t}')`).join(', ')}]::oid[])`,
    );
    const done: StatsTable[] = [];
    for (const r of rows) {
      const local = this.#changed.get(r.table) ?? 0;
      const live = Math.max(Number(r.live ?? 0), Math.max(0, r.tuples) + local);
      // reltuples -1: never analyzed (nor vacuumed)
      const due = r.tuples < 0 ? live > 0 : live > BASE_THRESHOLD + (1 + SCALE_FACTOR) * r.tuples;
      if (!due) continue;
      this.#changed.set(r.table, 0);
      await this.pool.query(`ANALYZE ${r.table}`);
      done.push(r.table);
    }
    return done;
  }

  /** Resolves when no check runs or waits (tests). */
  async idle(): Promise<void> {
    if (!this.#running && !this.#trailing) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  stop(): void {
    clearTimeout(this.#trailing);
    this.#trailing = undefined;
    for (const w of this.#idle.splice(0)) w();
  }
}
