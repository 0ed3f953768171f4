import type pg from 'pg';
import type { ActorRef, PersistedSnapshot } from './registry.js';
import type { ForkMark, PauseMark } from './store.js';

/**
 * The engine's side of operator actions that are not transitions: pausing and resuming an
 * actor, changing a pending timer, and writing a forked actor. Each statement runs on the
 * caller's connection, so the application writes its audit record in the same transaction.
 * After a pause, resume or timer change, tell the host (`ActorHost.evict`) and, for timers, the
 * poller (`TimerPoller.wake`); a pause taken here holds in every process regardless, because the
 * commit statement refuses transitions of a paused actor.
 */

/** A connection or pool the statements run on (a transaction's client, for an audited action). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** The actor's row as an operator action sees it before and after. */
export interface ControlledActor {
  ref: ActorRef;
  tenant: string | null;
  version: number;
  status: string;
  paused: PauseMark | null;
}

interface Row {
  tenant: string | null;
  version: string;
  status: string;
  paused_at: Date | null;
  paused_by: string | null;
  paused_reason: string | null;
}

const toActor = (ref: ActorRef, r: Row): ControlledActor => ({
  ref,
  tenant: r.tenant,
  version: Number(r.version),
  status: r.status,
  paused: r.paused_at ? { at: r.paused_at.toISOString(), by: r.paused_by ?? 'unknown', reason: r.paused_reason } : null,
});

/** The actor's row, locked until the caller's transaction ends; null when it does not exist. */
export async function lockActor(db: Queryable, ref: ActorRef): Promise<ControlledActor | null> {
  const { rows } = await db.query<Row>(
    'SELECT tenant, version, status, paused_at, paused_by, paused_reason FROM actors WHERE type = $1 AND id = $2 FOR UPDATE',
    [ref.type, ref.id],
  );
  return rows[0] ? toActor(ref, rows[0]) : null;
}

/**
 * Sets (a mark) or clears (null) the actor's pause. Not a transition: the version, journal and
 * snapshot stay as they are. Returns the row after, or null when the actor does not exist.
 */
export async function setPaused(db: Queryable, ref: ActorRef, mark: PauseMark | null): Promise<ControlledActor | null> {
  const { rows } = await db.query<Row>(
    `UPDATE actors SET paused_at = $3, paused_by = $4, paused_reason = $5 WHERE type = $1 AND id = $2
     RETURNING tenant, version, status, paused_at, paused_by, paused_reason`,
    [ref.type, ref.id, mark?.at ?? null, mark?.by ?? null, mark?.reason ?? null],
  );
  return rows[0] ? toActor(ref, rows[0]) : null;
}

/** A pending timer as operators see it. `id` is stable for as long as the timer is pending. */
export interface PendingTimer {
  id: number;
  actorType: string;
  actorId: string;
  key: string;
  event: string;
  targetPath: string;
  dueAt: string;
  /** Claimed by a poller that is firing it now (until this time). */
  claimedUntil: string | null;
  actorPaused: boolean;
}

interface TimerRowDb {
  id: string;
  actor_type: string;
  actor_id: string;
  timer_key: string;
  event_type: string;
  target_path: string;
  due_at: Date;
  claimed_until: Date | null;
  actor_paused: boolean;
}

const TIMER_COLUMNS = `t.id, t.actor_type, t.actor_id, t.timer_key, t.event->>'type' AS event_type, t.target_path, t.due_at, t.claimed_until,
  EXISTS (SELECT 1 FROM actors a WHERE a.type = t.actor_type AND a.id = t.actor_id AND a.paused_at IS NOT NULL) AS actor_paused`;

const toTimer = (r: TimerRowDb): PendingTimer => ({
  id: Number(r.id),
  actorType: r.actor_type,
  actorId: r.actor_id,
  key: r.timer_key,
  event: r.event_type,
  targetPath: r.target_path,
  dueAt: r.due_at.toISOString(),
  claimedUntil: r.claimed_until?.toISOString() ?? null,
  actorPaused: r.actor_paused,
});

/** Pending timers, soonest first, after the `(dueAt, id)` cursor; filters by actor type and due time. */
export async function listTimers(
  db: Queryable,
  q: { type?: string; dueBefore?: string; after?: { dueAt: string; id: number }; limit: number },
): Promise<PendingTimer[]> {
  const { rows } = await db.query<TimerRowDb>(
    `SELECT ${TIMER_COLUMNS} FROM timers t
     WHERE ($1::text IS NULL OR t.actor_type = $1) AND ($2::timestamptz IS NULL OR t.due_at < $2)
       AND ($3::timestamptz IS NULL OR (t.due_at, t.id) > ($3::timestamptz, $4::bigint))
     ORDER BY t.due_at, t.id LIMIT $5`,
    [q.type ?? null, q.dueBefore ?? null, q.after?.dueAt ?? null, q.after?.id ?? 0, q.limit],
  );
  return rows.map(toTimer);
}

/**
 * One pending timer, locked until the caller's transaction ends (and with it its actor's row,
 * taken first, in the order a commit takes them, so the two never deadlock). Null when it is not
 * pending.
 */
export async function lockTimer(db: Queryable, id: number): Promise<{ timer: PendingTimer; actor: ControlledActor | null } | null> {
  const read = async (lock: string) => (await db.query<TimerRowDb>(`SELECT ${TIMER_COLUMNS} FROM timers t WHERE t.id = $1 ${lock}`, [id])).rows[0];
  const seen = await read('');
  if (!seen) return null;
  const actor = await lockActor(db, { type: seen.actor_type, id: seen.actor_id });
  const row = await read('FOR UPDATE OF t');
  return row ? { timer: toTimer(row), actor } : null;
}

/**
 * Makes a pending timer due at `nowMs` (never later than it was). It then fires through the
 * normal path, exactly once: the poller claims it and the host applies it deduped by key and due
 * time. A timer already due keeps its due time and claim (a poller may be firing it now).
 */
export async function makeTimerDue(db: Queryable, id: number, nowMs: number): Promise<PendingTimer | null> {
  const { rows } = await db.query<TimerRowDb>(
    `UPDATE timers t SET
       claimed_until = CASE WHEN t.due_at > to_timestamp($2 / 1000.0) THEN NULL ELSE t.claimed_until END,
       due_at = LEAST(t.due_at, to_timestamp($2 / 1000.0))
     WHERE t.id = $1
     RETURNING ${TIMER_COLUMNS}`,
    [id, nowMs],
  );
  return rows[0] ? toTimer(rows[0]) : null;
}

/**
 * Cancels a pending timer: its row goes, and only rows fire. A process holding the actor in
 * memory must forget it (`ActorHost.evict`), so its next transition starts without the timer.
 */
export async function deleteTimer(db: Queryable, id: number): Promise<PendingTimer | null> {
  const { rows } = await db.query<TimerRowDb>(`DELETE FROM timers t WHERE t.id = $1 RETURNING ${TIMER_COLUMNS}`, [id]);
  return rows[0] ? toTimer(rows[0]) : null;
}

/** A new actor made from another's journal up to one version (see `writeFork`). */
export interface ForkRecord {
  ref: ActorRef;
  tenant: string | null;
  machineVersion: number;
  version: number;
  value: unknown;
  status: string;
  attrs: Record<string, unknown>;
  snapshot: PersistedSnapshot;
  from: ForkMark;
  at: string;
}

/**
 * Writes a forked actor: its row at the fork's version, and the source's journal entries up to
 * that version as its own history (so its history and replay read like the source's). No inbox,
 * outbox or timer rows: the effects and timers of the replayed events are not carried out again.
 * False when an actor with the new id exists already.
 */
export async function writeFork(db: Queryable, f: ForkRecord): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `WITH ins AS (
       INSERT INTO actors (type, id, tenant, machine_version, version, state_value, status, attrs, snapshot, created_at, updated_at, forked_from)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
       ON CONFLICT (type, id) DO NOTHING
       RETURNING type, id),
     jn AS (
       INSERT INTO journal (actor_type, actor_id, version, message_id, kind, target_path, event, input, state_value, at)
       SELECT ins.type, ins.id, j.version, j.message_id, j.kind, j.target_path, j.event, j.input, j.state_value, j.at
       FROM ins JOIN journal j ON j.actor_type = $12 AND j.actor_id = $13 AND j.version <= $5)
     SELECT count(*)::int AS n FROM ins`,
    [
      f.ref.type,
      f.ref.id,
      f.tenant,
      f.machineVersion,
      f.version,
      JSON.stringify(f.value),
      f.status,
      JSON.stringify(f.attrs),
      JSON.stringify(f.snapshot),
      f.at,
      JSON.stringify(f.from),
      f.from.type,
      f.from.id,
    ],
  );
  return rows[0]!.n === 1;
}
