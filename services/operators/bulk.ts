import type { Runtime } from '../../runtime/runtime.js';
import { isConcordError } from '../../runtime/errors.js';
import type { ActorRef } from '../../runtime/registry.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { assertOperator, type ActionContext, type OperatorActions } from './actions.js';

/** Which actors a bulk action works through. Every field narrows; at least one is required. */
export interface BulkFilter {
  type?: string;
  status?: string;
  /** A state path, e.g. `armed` or `active.open` (matches that state and any state inside it). */
  state?: string;
  tenant?: string;
  /** ISO time: only actors last changed before it. */
  updatedBefore?: string;
}

export type BulkRequest =
  | { action: 'pause' | 'resume'; filter: BulkFilter; dryRun: boolean; limit: number; ratePerSecond: number }
  | { action: 'send'; event: { type: string; [k: string]: unknown }; filter: BulkFilter; dryRun: boolean; limit: number; ratePerSecond: number };

export interface BulkAnswer {
  action: string;
  dryRun: boolean;
  /** How many actors match the filter now. */
  matched: number;
  /** Dry run: up to 10 of them. */
  sample?: ActorRef[];
  /** Real run: how many were worked through (at most `limit`), how many changed, which failed and why. */
  processed?: number;
  done?: number;
  unchanged?: number;
  failed?: Array<{ type: string; id: string; code: string; reason: string }>;
  /** Matching actors beyond `limit`, left for another run. */
  remaining?: number;
}

const SAMPLE = 10;

/** The filter as SQL conditions over `actors` (parameters from `$1`). */
function where(f: BulkFilter, values: unknown[]): string {
  const conds: string[] = [];
  const add = (sql: (p: string) => string, v: unknown) => {
    values.push(v);
    conds.push(sql(`$${values.length}`));
  };
  if (f.type) add((p) => `type = ${p}`, f.type);
  if (f.status) add((p) => `status = ${p}`, f.status);
  if (f.tenant) add((p) => `tenant = ${p}`, f.tenant);
  if (f.updatedBefore) add((p) => `updated_at < ${p}::timestamptz`, f.updatedBefore);
  if (f.state) {
    // `a.b` is the value {"a":"b"} (a leaf) or {"a":{"b":...}} (a compound state and its children)
    const path = f.state.split('.');
    values.push(path.slice(0, -1), path[path.length - 1], path);
    const n = values.length;
    conds.push(`(state_value #> $${n - 2}::text[] = to_jsonb($${n - 1}::text) OR state_value #> $${n}::text[] IS NOT NULL)`);
  }
  if (conds.length === 0) throw new DomainError(DomainCode.ValidationFailed, 'a bulk action needs a filter', { issues: [{ path: ['filter'], message: 'at least one of type, status, state, tenant, updatedBefore' }] });
  return conds.join(' AND ');
}

/**
 * One operator action over every actor a filter matches: a dry run answers the count and a
 * sample; a real run works through them (oldest change first, at most `limit`) at
 * `ratePerSecond`, each through the single-actor action, so each gets its own audit record and
 * its own outcome. It runs within the request: a larger set takes several runs (`remaining`).
 */
export class BulkActions {
  constructor(
    private readonly runtime: Runtime,
    private readonly actions: OperatorActions,
  ) {}

  async run(cx: ActionContext, req: BulkRequest): Promise<BulkAnswer> {
    assertOperator(cx);
    if (req.action === 'send' && !req.filter.type) {
      throw new DomainError(DomainCode.ValidationFailed, 'a bulk send needs filter.type: events belong to one machine', { issues: [{ path: ['filter', 'type'], message: 'required for send' }] });
    }
    if (req.filter.type && !this.runtime.host.registry.has(req.filter.type)) {
      throw new DomainError(DomainCode.NotFound, `actor type '${req.filter.type}' is not deployed`, { type: req.filter.type, deployed: this.runtime.host.registry.types() });
    }
    const pool = this.runtime.database.pool;
    const values: unknown[] = [];
    const cond = where(req.filter, values);
    // only deployed types: an action on another type could not be carried out here
    values.push(this.runtime.host.registry.types());
    // a pause matches only running actors and a resume only paused ones: the count is what would
    // change, and a run in several chunks (`remaining`) moves on instead of meeting the same ones
    const run = req.action === 'pause' ? ' AND paused_at IS NULL' : req.action === 'resume' ? ' AND paused_at IS NOT NULL' : '';
    const typed = `${cond} AND type = ANY($${values.length}::text[])${run}`;
    const count = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM actors WHERE ${typed}`, values);
    const matched = count.rows[0]!.n;
    const take = req.dryRun ? SAMPLE : req.limit;
    const { rows } = await pool.query<{ type: string; id: string }>(
      `SELECT type, id FROM actors WHERE ${typed} ORDER BY updated_at, type, id LIMIT $${values.length + 1}`,
      [...values, take],
    );
    if (req.dryRun) return { action: req.action, dryRun: true, matched, sample: rows.map((r) => ({ type: r.type, id: r.id })) };

    const failed: NonNullable<BulkAnswer['failed']> = [];
    let done = 0;
    let unchanged = 0;
    const start = performance.now();
    const gap = 1000 / req.ratePerSecond;
    for (const [i, r] of rows.entries()) {
      const due = start + i * gap;
      if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
      const ref = { type: r.type, id: r.id };
      try {
        if (req.action === 'send') {
          await this.actions.send(cx, ref, req.event);
          done++;
        } else {
          const out = req.action === 'pause' ? await this.actions.pause(cx, ref) : await this.actions.resume(cx, ref);
          if (out.changed) done++;
          else unchanged++;
        }
      } catch (err) {
        failed.push({ ...ref, code: isConcordError(err) ? err.code : 'INTERNAL', reason: isConcordError(err) ? err.message : 'unexpected error' });
      }
    }
    return { action: req.action, dryRun: false, matched, processed: rows.length, done, unchanged, failed, remaining: Math.max(0, matched - rows.length) };
  }
}
