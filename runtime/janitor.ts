import type pg from 'pg';
import type { Logger } from './logger.js';

/**
 * Housekeeping: inbox rows older than the dedupe window are deleted in small batches (a
 * duplicate older than the window would be applied again: size the window above the longest
 * redelivery delay of any producer). Runs every `everyMs`; stops with the runtime.
 */
export class Janitor {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: { pool: pg.Pool; log: Logger; inboxRetentionHours: number; everyMs: number }) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#running = this.runOnce().catch((err: unknown) => this.o.log.warn({ err }, 'janitor failed'));
    }, this.o.everyMs);
    this.#timer.unref();
  }

  /** Returns how many inbox rows were pruned. */
  async runOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.o.pool.query(
        `DELETE FROM inbox WHERE ctid IN (
           SELECT ctid FROM inbox WHERE created_at < now() - make_interval(hours => $1) LIMIT 5000)`,
        [this.o.inboxRetentionHours],
      );
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < 5000) break;
    }
    if (total > 0) this.o.log.info({ pruned: total }, 'inbox rows past the dedupe window pruned');
    return total;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
