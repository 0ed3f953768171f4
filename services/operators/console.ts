import type pg from 'pg';
import type { PendingTimer } from '../../runtime/control.js';
import { iso } from '../common/sql.js';

/** The console's actor search: every field narrows; `state` is a state path, `id` an id prefix. */
export interface ConsoleFilter {
  type?: string;
  status?: string;
  /** `active.open`: that state and any state inside it. */
  state?: string;
  tenant?: string;
  /** A prefix of the actor id. */
  id?: string;
  paused?: boolean;
}

export interface ConsoleActorRow {
  type: string;
  id: string;
  tenant: string | null;
  status: string;
  value: unknown;
  version: number;
  paused: boolean;
  updatedAt: string;
}

export interface ConsoleSearch {
  rows: ConsoleActorRow[];
  /** Actors matching the whole filter (at most COUNT_CAP + 1 when `capped`). */
  total: number;
  /** More than COUNT_CAP match a filter no index answers: counted no further. */
  capped: boolean;
  /** `recent`: most recently changed first; `key`: by type and id (too many matches to sort by change). */
  order: 'recent' | 'key';
  /** Matching actors per type and status (the facets beside the list). */
  counts: Array<{ type: string; status: string; n: number }>;
}

/** Past this many matches the list is by key and a filter no index answers is counted no further. */
export const COUNT_CAP = 10_000;

/** The filter as SQL over `ops_actors` (parameters appended to `values`). */
function where(f: ConsoleFilter, values: unknown[]): string {
  const conds: string[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    conds.push(sql(`$${values.length}`));
  };
  if (f.type) add((p) => `type = ${p}`, f.type);
  if (f.status) add((p) => `status = ${p}`, f.status);
  if (f.tenant) add((p) => `tenant = ${p}`, f.tenant);
  // a prefix: LIKE's wildcards in the input are literal
  if (f.id) add((p) => `id LIKE ${p} || '%'`, f.id.replace(/[\\%_]/g, (m) => `\\${m}`));
  if (f.paused !== undefined) conds.push(f.paused ? 'paused' : 'NOT paused');
  if (f.state) {
    // `a.b` is the value {"a":"b"} (a leaf) or {"a":{"b":...}} (a compound state and what is inside it)
    const path = f.state.split('.');
    const leaf = path.slice(0, -1).reduceRight<unknown>((acc, k) => ({ [k]: acc }), path[path.length - 1]);
    values.push(JSON.stringify(leaf), path);
    conds.push(`(state_value @> $${values.length - 1}::jsonb OR state_value #> $${values.length}::text[] IS NOT NULL)`);
  }
  return conds.length ? `WHERE ${conds.join(' AND ')}` : '';
}

/**
 * What the operator console reads beyond the API's own services: actor search with counts over
 * the stable `ops_actors` view, an actor's pending timers with their ids (`ops_timers`), and the
 * version/pause mark the live page watches. Read-only; every action goes through the services
 * the API uses.
 */
export class ConsoleQueries {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * A page of matching actors, their count and the counts per type and status. Made to stay fast
   * on a large table without an index on `updated_at` (which would make every transition a
   * non-HOT update): a filter on indexed columns only (type, status, tenant, paused) is counted
   * exactly from the indexes; one on the state or an id prefix is counted up to COUNT_CAP matches.
   * Up to COUNT_CAP matches are listed most recently changed first; more are listed by type and id,
   * which the primary key answers at once.
   */
  async search(f: ConsoleFilter, limit: number): Promise<ConsoleSearch> {
    const values: unknown[] = [];
    const cond = where(f, values);
    const indexed = !f.state && !f.id;
    type Row = { type: string; id: string; tenant: string | null; status: string; state_value: unknown; version: string; paused: boolean; updated_at: Date | string };
    let counts: Array<{ type: string; status: string; n: number }>;
    let list: Row[] | null = null;
    if (indexed) {
      counts = (await this.pool.query<{ type: string; status: string; n: number }>(`SELECT type, status, count(*)::int AS n FROM ops_actors ${cond} GROUP BY type, status ORDER BY type, status`, values)).rows;
    } else {
      // the filter needs the heap: one pass counts up to the cap and keeps the most recent rows
      const one = await this.pool.query<{ counts: typeof counts; rows: Row[] }>(
        `WITH m AS MATERIALIZED (SELECT type, id, tenant, status, state_value, version, paused, updated_at FROM ops_actors ${cond} LIMIT ${COUNT_CAP + 1})
         SELECT (SELECT coalesce(json_agg(c), '[]') FROM (SELECT type, status, count(*)::int AS n FROM m GROUP BY type, status ORDER BY type, status) c) AS counts,
                (SELECT coalesce(json_agg(r), '[]') FROM (SELECT * FROM m ORDER BY updated_at DESC, type, id LIMIT $${values.length + 1}) r) AS rows`,
        [...values, limit],
      );
      counts = one.rows[0]!.counts;
      list = one.rows[0]!.rows;
    }
    const total = counts.reduce((sum, r) => sum + r.n, 0);
    const order = total > COUNT_CAP ? 'key' : 'recent';
    if (!list || order === 'key') {
      list = (
        await this.pool.query<Row>(
          `SELECT type, id, tenant, status, state_value, version, paused, updated_at FROM ops_actors ${cond}
            ORDER BY ${order === 'key' ? 'type, id' : 'updated_at DESC, type, id'} LIMIT $${values.length + 1}`,
          [...values, limit],
        )
      ).rows;
    }
    return {
      rows: list.map((r) => ({
        type: r.type,
        id: r.id,
        tenant: r.tenant,
        status: r.status,
        value: r.state_value,
        version: Number(r.version),
        paused: r.paused,
        updatedAt: iso(r.updated_at)!,
      })),
      total,
      capped: !indexed && total > COUNT_CAP,
      order,
      counts,
    };
  }

  /** The actor's pending timers, soonest first, with the ids the timer actions take. */
  async timersOf(ref: { type: string; id: string }): Promise<PendingTimer[]> {
    const { rows } = await this.pool.query<{ id: string; actor_type: string; actor_id: string; timer_key: string; event_type: string; target_path: string; due_at: Date; claimed_until: Date | null; actor_paused: boolean }>(
      `SELECT id, actor_type, actor_id, timer_key, event_type, target_path, due_at, claimed_until, actor_paused
         FROM ops_timers WHERE actor_type = $1 AND actor_id = $2 ORDER BY due_at, id LIMIT 100`,
      [ref.type, ref.id],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      actorType: r.actor_type,
      actorId: r.actor_id,
      key: r.timer_key,
      event: r.event_type,
      targetPath: r.target_path,
      dueAt: iso(r.due_at)!,
      claimedUntil: iso(r.claimed_until),
      actorPaused: r.actor_paused,
    }));
  }

  /** Version and pause mark of each of `refs` that exists (one statement). */
  async marks(refs: Array<{ type: string; id: string }>): Promise<Map<string, { version: number; paused: boolean }>> {
    const { rows } = await this.pool.query<{ type: string; id: string; version: string; paused: boolean }>(
      `SELECT a.type, a.id, a.version, a.paused_at IS NOT NULL AS paused
         FROM unnest($1::text[], $2::text[]) AS k(type, id) JOIN actors a ON a.type = k.type AND a.id = k.id`,
      [refs.map((r) => r.type), refs.map((r) => r.id)],
    );
    return new Map(rows.map((r) => [`${r.type}/${r.id}`, { version: Number(r.version), paused: r.paused }]));
  }
}
