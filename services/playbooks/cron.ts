import { Cron } from 'croner';
import type { CronSpec } from '../../machines/playbook/schedule.js';

/**
 * Due times of a cron trigger, computed with croner in the trigger's IANA time zone (croner only
 * computes: the durable timer of the `playbook-schedule` actor does the waiting). Across a
 * daylight-saving change a daily tick neither disappears nor doubles: a wall time that does not
 * exist (spring) fires at the first instant after the gap, one that exists twice (autumn) fires
 * at its first occurrence.
 */

/** A tick later than this after its due time counts as missed (its catch-up policy applies). */
export const ON_TIME_MS = 60_000;
/** Most ticks one catch-up starts. */
export const MAX_CATCH_UP = 100;

const crons = new Map<string, Cron>();

function cronOf(spec: Pick<CronSpec, 'schedule' | 'timezone'>): Cron {
  const key = `${spec.timezone}\n${spec.schedule}`;
  let c = crons.get(key);
  if (!c) {
    c = new Cron(spec.schedule, { timezone: spec.timezone, paused: true });
    if (crons.size > 10_000) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** The first tick strictly after `afterMs`; null when the schedule has none. */
export function nextTick(spec: Pick<CronSpec, 'schedule' | 'timezone'>, afterMs: number): number | null {
  const d = cronOf(spec).nextRun(new Date(afterMs));
  return d ? d.getTime() : null;
}

/** Ticks in [fromMs, toMs], oldest first, at most `limit` (the newest kept when there are more). */
export function ticksBetween(spec: Pick<CronSpec, 'schedule' | 'timezone'>, fromMs: number, toMs: number, limit = MAX_CATCH_UP): number[] {
  const out: number[] = [];
  for (let t = nextTick(spec, fromMs - 1); t !== null && t <= toMs; t = nextTick(spec, t)) {
    out.push(t);
    if (out.length > limit) out.shift();
  }
  return out;
}

/**
 * Which ticks to start when the timer of tick `dueMs` fires at `nowMs`: every tick from `dueMs`
 * to now is due; those on time run, the missed ones by the catch-up policy (none: skipped; last:
 * the newest within the window; all: each within the window).
 */
export function ticksToRun(spec: CronSpec, dueMs: number, nowMs: number): { run: number[]; missed: number } {
  const due = ticksBetween(spec, dueMs, Math.max(dueMs, nowMs), 10_000);
  const onTime = due.filter((t) => nowMs - t <= ON_TIME_MS);
  const late = due.filter((t) => nowMs - t > ON_TIME_MS && nowMs - t <= spec.catchUpWindowMs);
  let caught: number[] = [];
  if (spec.catchUp === 'last' && onTime.length === 0) caught = late.slice(-1);
  if (spec.catchUp === 'all') caught = late.slice(-MAX_CATCH_UP);
  const run = [...caught, ...onTime];
  return { run, missed: due.length - run.length };
}
