import type pg from 'pg';
import type { ActorHost } from './actor-host.js';
import type { Clock } from './clock.js';
import { isPaused } from './errors.js';
import type { Logger } from './logger.js';

/**
 * Fires due timers. Rows are claimed with `FOR UPDATE SKIP LOCKED` (a claim is a short lease,
 * so a poller that dies mid-fire leaves the timer to another after `claimMs`) and fired through
 * the actor host like any event, deduped by timer key and due time: a timer fires once.
 * Due is judged by the runtime clock, never by Postgres' `now()`, so tests drive it. A paused
 * actor's timers are not claimed: they stay due, and fire in due order once it is resumed.
 */
export class TimerPoller {
  #timer: NodeJS.Timeout | undefined;
  /** When the scheduled tick runs (performance.now() time): a wake only ever brings it forward. */
  #tickAt = Infinity;
  #running = false;
  /** The earliest due time a wake asked for while a poll was running. */
  #missed: number | undefined;
  /** The earliest timer not yet due at the last poll (any process's): the next tick comes by then. */
  #nextDue: number | undefined;
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
    if (ms < this.o.pollMs) this.#schedule(Math.max(0, ms), true);
  }

  /** Schedules the next tick in `ms`; with `sooner`, only if that is before the one scheduled. */
  #schedule(ms: number, sooner = false): void {
    if (this.#stopped) return;
    const at = performance.now() + ms;
    // a later wake must not push back an earlier one (nor the regular poll)
    if (sooner && at >= this.#tickAt) return;
    clearTimeout(this.#timer);
    this.#tickAt = at;
    this.#timer = setTimeout(() => void this.#tick(), ms);
  }

  async #tick(): Promise<void> {
    this.#tickAt = Infinity;
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
      // a full batch means more are due: go again at once; else at the next poll, or sooner when
      // a timer is due before it (known from the poll itself, or from a wake while it ran)
      const next = claimed >= (this.o.batch ?? 256) ? 0 : this.o.pollMs;
      const due = Math.min(this.#missed ?? Infinity, this.#nextDue ?? Infinity);
      this.#missed = undefined;
      this.#schedule(Math.min(next, Math.max(0, due - this.o.clock.now())));
    }
  }

  /** Claims and fires every timer due now; returns how many were claimed. */
  async pollOnce(): Promise<number> {
    const now = this.o.clock.now();
    // one row at least (the next due time), plus one per claimed timer
    const { rows: all } = await this.o.pool.query<{ actor_type: string | null; actor_id: string; timer_key: string; due: string; traceparent: string | null; next_due: string | null }>({
      name: 'concord_claim_timers',
      text: `WITH claimed AS (
          UPDATE timers SET claimed_until = to_timestamp($2 / 1000.0)
          WHERE id IN (
            SELECT id FROM timers
            WHERE due_at <= to_timestamp($1 / 1000.0) AND (claimed_until IS NULL OR claimed_until < to_timestamp($1 / 1000.0))
              -- a paused actor's due timers stay where they are, and fire after its resume
              AND NOT EXISTS (SELECT 1 FROM actors a WHERE a.type = timers.actor_type AND a.id = timers.actor_id AND a.paused_at IS NOT NULL)
            ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
          RETURNING actor_type, actor_id, timer_key, round(extract(epoch FROM due_at) * 1000)::text AS due, traceparent),
        upcoming AS (SELECT round(extract(epoch FROM min(due_at)) * 1000)::text AS next_due FROM timers WHERE due_at > to_timestamp($1 / 1000.0))
        SELECT c.actor_type, c.actor_id, c.timer_key, c.due, c.traceparent, u.next_due FROM upcoming u LEFT JOIN claimed c ON true`,
      values: [now, now + this.o.claimMs, this.o.batch ?? 256],
    });
    this.#nextDue = all[0]?.next_due == null ? undefined : Number(all[0].next_due);
    const rows = all.filter((r): r is typeof r & { actor_type: string } => r.actor_type !== null);
    rows.sort((a, b) => Number(a.due) - Number(b.due));
    await Promise.all(
      rows.map(async (r) => {
        try {
          const res = await this.o.host.fireTimer({ type: r.actor_type, id: r.actor_id }, r.timer_key, Number(r.due), r.traceparent);
          if (res && !res.duplicate) this.fired++;
        } catch (err) {
          if (isPaused(err)) {
            // paused after the claim: hand the timer back at once, so the resume fires it promptly
            await this.#release(r.actor_type, r.actor_id, r.timer_key);
            return;
          }
          this.o.log.error({ err, actor: `${r.actor_type}/${r.actor_id}`, timer: r.timer_key }, 'timer failed to fire; retried after its claim expires');
        }
      }),
    );
    return rows.length;
  }

  async #release(type: string, id: string, key: string): Promise<void> {
    await this.o.pool
      .query('UPDATE timers SET claimed_until = NULL WHERE actor_type = $1 AND actor_id = $2 AND timer_key = $3', [type, id, key])
      .catch((err: unknown) => this.o.log.warn({ err, actor: `${type}/${id}`, timer: key }, 'releasing the claim of a paused actor\'s timer failed; it waits for the claim to expire'));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inflight.catch(() => undefined);
  }
}
