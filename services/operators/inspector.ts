import { sql } from 'kysely';
import type { AnyStateMachine } from 'xstate';
import { toDirectedGraph } from 'xstate/graph';
import type { Runtime } from '../../runtime/runtime.js';
import { DomainCode, DomainError } from '../common/errors.js';
import { queryBuilder, type Db } from '../common/schema.js';
import { decodeCursor, encodeCursor, iso } from '../common/sql.js';

/** The actor types operators may inspect (those deployed in this process are resolved per call). */
export const INSPECTABLE_TYPES = ['relationship', 'workflow', 'saga', 'integration'] as const;

export interface ChartNode {
  id: string;
  key: string;
  type: string;
  initial: string | null;
  current: boolean;
  transitions: Array<{ event: string; target: string; guard: string | null; actions: string[]; reenter: boolean }>;
  states: ChartNode[];
}

interface GraphNode {
  id: string;
  stateNode: { key: string; type: string; config: { initial?: unknown } };
  edges: Array<{ label: { text: string }; target: { id: string }; transition: { guard?: { type?: string } | null; actions?: unknown[]; reenter?: boolean } }>;
  children: GraphNode[];
}

/** Active state node ids for a state value, e.g. `{ active: 'open' }` -> relationship, relationship.active, relationship.active.open. */
export function activeIds(machineId: string, value: unknown): Set<string> {
  const out = new Set([machineId]);
  const walk = (prefix: string, v: unknown) => {
    if (typeof v === 'string') out.add(`${prefix}.${v}`);
    else if (v && typeof v === 'object') {
      for (const [k, sub] of Object.entries(v)) {
        out.add(`${prefix}.${k}`);
        walk(`${prefix}.${k}`, sub);
      }
    }
  };
  walk(machineId, value);
  return out;
}

const chartCache = new WeakMap<AnyStateMachine, GraphNode>();

function actionName(a: unknown): string {
  if (typeof a === 'string') return a;
  const t = (a as { type?: unknown } | null)?.type;
  return typeof t === 'string' ? t : 'inline';
}

/** The statechart's states and transitions as JSON, with the current state marked. */
export function chartOf(machine: AnyStateMachine, value: unknown): ChartNode {
  let graph = chartCache.get(machine);
  if (!graph) {
    graph = toDirectedGraph(machine) as unknown as GraphNode;
    chartCache.set(machine, graph);
  }
  const active = activeIds(machine.id, value);
  const map = (n: GraphNode): ChartNode => ({
    id: n.id,
    key: n.stateNode.key,
    type: n.stateNode.type,
    initial: typeof n.stateNode.config.initial === 'string' ? n.stateNode.config.initial : null,
    current: active.has(n.id),
    transitions: n.edges.map((e) => ({
      event: e.label.text,
      target: e.target.id,
      guard: e.transition.guard?.type ?? null,
      actions: (e.transition.actions ?? []).map(actionName),
      reenter: Boolean(e.transition.reenter),
    })),
    states: n.children.map(map),
  });
  return map(graph);
}

/** Operator inspection of any actor: snapshot, journal, chart and search over the indexed columns. */
export class ActorInspector {
  readonly #db: Db;

  constructor(private readonly runtime: Runtime) {
    this.#db = queryBuilder(runtime.database.pool);
  }

  #assertType(type: string): void {
    if (!this.runtime.host.registry.has(type)) {
      throw new DomainError(DomainCode.NotFound, `actor type '${type}' is not deployed`, { type, deployed: this.runtime.host.registry.types() });
    }
  }

  async view(type: string, id: string) {
    this.#assertType(type);
    const v = await this.runtime.host.get({ type, id });
    return { ...v, type, id };
  }

  async history(type: string, id: string, afterVersion: number, limit: number) {
    this.#assertType(type);
    await this.runtime.host.get({ type, id }); // not-found for an unknown actor, not an empty page
    const entries = await this.runtime.host.history({ type, id }, { afterVersion, limit: limit + 1 });
    const page = entries.slice(0, limit);
    return { data: page, nextAfterVersion: entries.length > limit ? (page[page.length - 1]?.version ?? null) : null };
  }

  async chart(type: string, id: string) {
    this.#assertType(type);
    const v = await this.runtime.host.get({ type, id });
    const def = this.runtime.host.registry.get(type);
    return { type, id, machineId: def.machine.id, machineVersion: def.version, value: v.value, status: v.status, chart: chartOf(def.machine, v.value) };
  }

  async search(q: { type?: string; status?: string; tenant?: string; paused?: boolean; limit: number; cursor?: string }) {
    // the key as one sortable value: actors changed in the same instant keep a stable order
    const key = sql<string>`type || '/' || id`;
    let query = this.#db
      .selectFrom('actors')
      .select(['type', 'id', 'tenant', 'version', 'machine_version', 'state_value', 'status', 'attrs', 'created_at', 'updated_at', 'paused_at', 'paused_by', 'paused_reason', 'forked_from']);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.tenant) query = query.where('tenant', '=', q.tenant);
    if (q.paused !== undefined) query = query.where('paused_at', q.paused ? 'is not' : 'is', null);
    const cur = decodeCursor(q.cursor);
    if (q.cursor && !cur) throw new DomainError(DomainCode.ValidationFailed, 'invalid cursor', { issues: [{ path: ['cursor'], message: 'invalid cursor' }] });
    if (cur) query = query.where(sql<boolean>`(updated_at, ${key}) < (${cur.at}::timestamptz, ${cur.id})`);
    const rows = await query.orderBy('updated_at', 'desc').orderBy(key, 'desc').limit(q.limit + 1).execute();
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      data: page.map((r) => ({
        type: r.type,
        id: r.id,
        tenant: r.tenant,
        version: Number(r.version),
        machineVersion: r.machine_version,
        value: r.state_value,
        status: r.status,
        attrs: r.attrs,
        paused: r.paused_at ? { at: iso(r.paused_at)!, by: r.paused_by ?? 'unknown', reason: r.paused_reason } : null,
        forkedFrom: r.forked_from,
        createdAt: iso(r.created_at)!,
        updatedAt: iso(r.updated_at)!,
      })),
      nextCursor: rows.length > q.limit && last ? encodeCursor(last.updated_at, `${last.type}/${last.id}`) : null,
    };
  }
}
