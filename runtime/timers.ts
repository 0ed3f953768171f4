import type pg from 'pg';
import type { ActorHost } from './actor-host.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/**
 * Fires due timers. Rows are claimed with `FOR UPDATE SKIP LOCKED` (a claim is a short lease,
 * so a poller that dies mid-fire leaves the timer to another after `claimMs`) and fired through
 * the actor host like any event, deduped by timer key and due time: a timer fires once.
 * Due is judged by the runtime clock, never by Postgres' `now()`, so tests drive it.
 */
export class TimerPoller {
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** The earliest due time a wake asked for while a poll was running. */
  #missed: number | undefined;
  #stopped = true;
  #inflight: Promise<unknown> = Promise.resolve();
  fired = 0;

  constructor(
    private readonly o: {
      pool: pg.Pool;
      host: ActorHost;
      clock: Clock;
      log: Logger;
      pollMs: number;
      claimMs: number;
      batch?: number;
    },
  ) {}

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Wakes the poller early when a timer is due sooner than the next poll. */
  wake(dueAt: number): void {
    if (this.#stopped) return;
    // a poll running now may have read before this timer was written: look again right after it
    if (this.#running) {
      this.#missed = Math.min(this.#missed ?? Infinity, dueAt);
      return;
    }
    const ms = dueAt - this.o.clock.now();
    if (ms < this.o.pollMs) this.#schedule(Math.max(0, ms));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    let claimed = 0;
    try {
      const p = this.pollOnce();
      this.#inflight = p;
      claimed = await p;
    } catch (err) {
      this.o.log.warn({ err }, 'timer poll failed');
    } finally {
      this.#running = false;
      // a full batch means more are due: go again at once
      const next = claimed >= (this.o.batch ?? 256) ? 0 : this.o.pollMs;
      const missed = this.#missed;
      this.#missed = undefined;
      this.#schedule(missed === undefined ? next : Math.min(next, Math.max(0, missed - this.o.clock.now())));
    }
  }

  /** Claims and fires every timer due now; returns how many were claimed. */
  async pollOnce(): Promise<number> {
    const now = this.o.clock.now();
    const { rows } = await this.o.pool.query<{ actor_type: string; actor_id: string; timer_key: string; due: string }>({
      name: 'concord_claim_timers',
      text: `UPDATE timers SET claimed_until = to_timestamp($2 / 1000.0)
        WHERE id IN (
          SELECT id FROM timers
          WHERE due_at <= to_timestamp($1 / 1000.0) AND (claimed_until IS NULL OR claimed_until < to_timestamp($1 / 1000.0))
          ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING actor_type, actor_id, timer_key, round(extract(epoch FROM due_at) * 1000)::text AS due`,
      values: [now, now + this.o.claimMs, this.o.batch ?? 256],
    });
    rows.sort((a, b) => Number(a.due) - Number(b.due));
    await Promise.all(
      rows.map(async (r) => {
        try {
          const res = await this.o.host.fireTimer({ type: r.actor_type, id: r.actor_id }, r.timer_key, Number(r.due));
          if (res && !res.duplicate) this.fired++;
        } catch (err) {
          this.o.log.error({ err, actor: `${r.actor_type}/${r.actor_id}`, timer: r.timer_key }, 'timer failed to fire; retried after its claim expires');
        }
      }),
    );
    return rows.length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inflight.catch(() => undefined);
  }
}
