import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Clock } from '../../runtime/clock.js';
import { recordAudit } from '../common/audit.js';
import { keyedTransaction, type Answer, type CommandContext } from '../common/command.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { queryBuilder, type Db } from '../common/schema.js';
import { iso, transaction, type Queryable } from '../common/sql.js';

export const DEPENDENCY_TYPES = ['REQUIRES', 'CONFLICTS', 'ENHANCES', 'DEPENDS_ON_DATA'] as const;
export type DependencyType = (typeof DEPENDENCY_TYPES)[number];
export const INTEGRATION_STATUSES = ['active', 'inactive', 'degraded'] as const;
export type IntegrationStatus = (typeof INTEGRATION_STATUSES)[number] | 'unknown';
export type RiskLevel = 'low' | 'medium' | 'high' | 'critical';

/** Edges that carry a requirement: they must form a DAG. */
const REQUIREMENT_TYPES: DependencyType[] = ['REQUIRES', 'DEPENDS_ON_DATA'];

export interface IntegrationDependency {
  id: string;
  integrationId: string;
  dependsOnIntegrationId: string;
  dependencyType: DependencyType;
  condition: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CreateDependency {
  integrationId: string;
  dependsOnIntegrationId: string;
  dependencyType: DependencyType;
  condition?: string | null;
}

export interface AnalysisIssue {
  severity: RiskLevel;
  kind: 'CYCLE' | 'MISSING_REQUIREMENT' | 'INACTIVE_REQUIREMENT' | 'DEGRADED_REQUIREMENT' | 'ACTIVE_CONFLICT' | 'WIDE_IMPACT';
  message: string;
  integrationIds: string[];
}

export interface DependencyAnalysis {
  integrationId: string;
  status: IntegrationStatus;
  riskLevel: RiskLevel;
  issues: AnalysisIssue[];
  recommendations: string[];
  requirements: Array<{ integrationId: string; dependencyType: DependencyType; depth: number; path: string[]; status: IntegrationStatus }>;
  cycles: string[][];
  conflicts: Array<{ integrationId: string; status: IntegrationStatus; dependencyId: string }>;
  missingRequirements: string[];
  inactiveRequirements: string[];
  impact: Array<{ integrationId: string; dependencyType: DependencyType; depth: number; effect: 'breaks' | 'degrades' }>;
  analyzedAt: string;
}

const RANK: Record<RiskLevel, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** `integration` actor statuses read as operational states. */
function actorStatus(status: string): IntegrationStatus {
  const s = status.toUpperCase();
  if (['ACTIVE', 'CONNECTED', 'RUNNING', 'SYNCING', 'HEALTHY', 'IDLE', 'READY'].includes(s)) return 'active';
  if (['DEGRADED', 'CIRCUIT_OPEN', 'THROTTLED', 'RETRYING', 'BACKOFF'].includes(s)) return 'degraded';
  return 'inactive';
}

function toDependency(r: Record<string, unknown>): IntegrationDependency {
  return {
    id: r.id as string,
    integrationId: r.integration_id as string,
    dependsOnIntegrationId: r.depends_on_integration_id as string,
    dependencyType: r.dependency_type as DependencyType,
    condition: (r.condition as string | null) ?? null,
    createdAt: iso(r.created_at as Date)!,
    updatedAt: iso(r.updated_at as Date)!,
  };
}

/** Serialises writes to the requirement graph, so two edges cannot close a cycle together. */
const GRAPH_LOCK = 7_201_002;

/**
 * The integration dependency graph: a plain table of typed edges. Writes are platform
 * functions (operator, service). Requirement edges (REQUIRES, DEPENDS_ON_DATA) must stay
 * acyclic: an edge that would close a cycle is refused, naming the cycle.
 */
export class DependencyService {
  readonly #db: Db;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {
    this.#db = queryBuilder(pool);
  }

  /** Creates an edge (201), in one transaction with its audit record and, when keyed, its stored answer. */
  async create(cx: CommandContext, input: CreateDependency): Promise<Answer<IntegrationDependency>> {
    return keyedTransaction(this.pool, cx, 201, (client) => this.#create(client, cx, input));
  }

  async #create(client: pg.PoolClient, { principal, requestId }: CommandContext, input: CreateDependency): Promise<IntegrationDependency> {
    assertPlatformWrite(principal, 'integration dependencies');
    if (input.integrationId === input.dependsOnIntegrationId) {
      throw new DomainError(DomainCode.DependencyCycle, 'an integration cannot depend on itself', { cycle: [input.integrationId, input.integrationId] });
    }
    await client.query('SELECT pg_advisory_xact_lock($1)', [GRAPH_LOCK]);
    if (REQUIREMENT_TYPES.includes(input.dependencyType)) {
      const path = await requirementPath(client, input.dependsOnIntegrationId, input.integrationId);
      if (path) {
        const cycle = [input.integrationId, ...path];
        throw new DomainError(DomainCode.DependencyCycle, `this dependency would close a cycle: ${cycle.join(' -> ')}`, { cycle });
      }
    }
    const now = new Date(this.clock.now());
    const id = randomUUID();
    const { rows } = await client.query(
      `INSERT INTO integration_dependencies (id, integration_id, depends_on_integration_id, dependency_type, condition, created_by, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (integration_id, depends_on_integration_id, dependency_type) DO NOTHING RETURNING *`,
      [id, input.integrationId, input.dependsOnIntegrationId, input.dependencyType, input.condition ?? null, principal.sub, now],
    );
    if (!rows[0]) {
      throw new DomainError(DomainCode.DuplicateDependency, `${input.integrationId} already has a ${input.dependencyType} dependency on ${input.dependsOnIntegrationId}`);
    }
    const dep = toDependency(rows[0]);
    await recordAudit(client, { principal, action: 'dependency.create', objectType: 'dependency', objectId: id, before: null, after: dep, at: now.toISOString(), requestId });
    return dep;
  }

  /** Deletes an edge, with its audit record in the same transaction. */
  async delete({ principal, requestId }: CommandContext, id: string): Promise<IntegrationDependency> {
    assertPlatformWrite(principal, 'integration dependencies');
    return transaction(this.pool, async (client) => {
      const { rows } = await client.query('DELETE FROM integration_dependencies WHERE id = $1 RETURNING *', [id]);
      if (!rows[0]) throw notFound('dependency', id);
      const dep = toDependency(rows[0]);
      await recordAudit(client, {
        principal,
        action: 'dependency.delete',
        objectType: 'dependency',
        objectId: id,
        before: dep,
        after: null,
        at: new Date(this.clock.now()).toISOString(),
        requestId,
      });
      return dep;
    });
  }

  /** What `integrationId` depends on (its direct edges), oldest first. */
  dependencies(integrationId: string): Promise<IntegrationDependency[]> {
    return this.#edges('integration_id', integrationId);
  }

  /** What depends on `integrationId` (direct edges), oldest first. */
  dependents(integrationId: string): Promise<IntegrationDependency[]> {
    return this.#edges('depends_on_integration_id', integrationId);
  }

  async #edges(end: 'integration_id' | 'depends_on_integration_id', integrationId: string): Promise<IntegrationDependency[]> {
    const rows = await this.#db.selectFrom('integration_dependencies').selectAll().where(end, '=', integrationId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toDependency);
  }

  /** Records an integration's reported status, with its audit record in the same transaction. */
  async setStatus({ principal, requestId }: CommandContext, integrationId: string, status: (typeof INTEGRATION_STATUSES)[number]) {
    assertPlatformWrite(principal, 'integration status');
    const now = new Date(this.clock.now());
    return transaction(this.pool, async (client) => {
      const prev = await client.query('SELECT status FROM integration_status WHERE integration_id = $1 FOR UPDATE', [integrationId]);
      await client.query(
        `INSERT INTO integration_status (integration_id, status, updated_by, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (integration_id) DO UPDATE SET status = EXCLUDED.status, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at`,
        [integrationId, status, principal.sub, now],
      );
      const after = { integrationId, status, updatedAt: now.toISOString(), updatedBy: principal.sub };
      await recordAudit(client, {
        principal,
        action: 'integration.status',
        objectType: 'integration',
        objectId: integrationId,
        before: prev.rows[0] ? { integrationId, status: prev.rows[0].status } : null,
        after,
        at: now.toISOString(),
        requestId,
      });
      return after;
    });
  }

  /** Status per integration: its `integration` actor when there is one, else the reported status. */
  async statuses(db: Queryable, ids: string[]): Promise<Map<string, IntegrationStatus>> {
    const out = new Map<string, IntegrationStatus>(ids.map((id) => [id, 'unknown']));
    if (ids.length === 0) return out;
    const reported = await db.query<{ integration_id: string; status: IntegrationStatus }>(
      'SELECT integration_id, status FROM integration_status WHERE integration_id = ANY($1)',
      [ids],
    );
    for (const r of reported.rows) out.set(r.integration_id, r.status);
    const actors = await db.query<{ id: string; status: string }>(`SELECT id, status FROM actors WHERE type = 'integration' AND id = ANY($1)`, [ids]);
    for (const r of actors.rows) out.set(r.id, actorStatus(r.status));
    return out;
  }

  /**
   * Transitive requirements, cycles, conflicts with active integrations, missing or inactive
   * requirements, the impact set (what breaks or degrades if this one goes down), and a risk
   * level that is the worst issue found.
   */
  async analyze(integrationId: string): Promise<DependencyAnalysis> {
    const forward = await this.pool.query<{ integration_id: string; depends_on_integration_id: string; dependency_type: DependencyType }>(
      `WITH RECURSIVE reach(node) AS (
         SELECT $1::text
         UNION
         SELECT d.depends_on_integration_id FROM integration_dependencies d JOIN reach r ON d.integration_id = r.node
         WHERE d.dependency_type = ANY($2)
       )
       SELECT d.integration_id, d.depends_on_integration_id, d.dependency_type FROM integration_dependencies d
       JOIN reach r ON d.integration_id = r.node WHERE d.dependency_type = ANY($2) ORDER BY d.created_at, d.id`,
      [integrationId, REQUIREMENT_TYPES],
    );
    const reverse = await this.pool.query<{ integration_id: string; depends_on_integration_id: string; dependency_type: DependencyType }>(
      `WITH RECURSIVE reach(node) AS (
         SELECT $1::text
         UNION
         SELECT d.integration_id FROM integration_dependencies d JOIN reach r ON d.depends_on_integration_id = r.node
         WHERE d.dependency_type = ANY($2)
       )
       SELECT d.integration_id, d.depends_on_integration_id, d.dependency_type FROM integration_dependencies d
       JOIN reach r ON d.depends_on_integration_id = r.node WHERE d.dependency_type <> 'CONFLICTS' ORDER BY d.created_at, d.id`,
      [integrationId, REQUIREMENT_TYPES],
    );
    const conflictRows = await this.pool.query<{ id: string; other: string }>(
      `SELECT id, CASE WHEN integration_id = $1 THEN depends_on_integration_id ELSE integration_id END AS other
       FROM integration_dependencies WHERE dependency_type = 'CONFLICTS' AND (integration_id = $1 OR depends_on_integration_id = $1)`,
      [integrationId],
    );

    // requirements: breadth first, shortest path to each
    const out = new Map<string, Array<{ to: string; type: DependencyType }>>();
    for (const e of forward.rows) {
      const list = out.get(e.integration_id) ?? [];
      list.push({ to: e.depends_on_integration_id, type: e.dependency_type });
      out.set(e.integration_id, list);
    }
    for (const list of out.values()) list.sort((a, b) => a.to.localeCompare(b.to)); // a stable order for clients
    const requirements: Array<{ integrationId: string; dependencyType: DependencyType; depth: number; path: string[] }> = [];
    const seen = new Set([integrationId]);
    let frontier: Array<{ node: string; path: string[] }> = [{ node: integrationId, path: [integrationId] }];
    for (let depth = 1; frontier.length; depth++) {
      const next: typeof frontier = [];
      for (const f of frontier) {
        for (const e of out.get(f.node) ?? []) {
          if (seen.has(e.to)) continue;
          seen.add(e.to);
          const path = [...f.path, e.to];
          requirements.push({ integrationId: e.to, dependencyType: e.type, depth, path });
          next.push({ node: e.to, path });
        }
      }
      frontier = next;
    }
    const cycles = findCycles(out);

    // impact: who depends on this one, transitively through requirements; ENHANCES only degrade
    const inbound = new Map<string, Array<{ from: string; type: DependencyType }>>();
    for (const e of reverse.rows) {
      const list = inbound.get(e.depends_on_integration_id) ?? [];
      list.push({ from: e.integration_id, type: e.dependency_type });
      inbound.set(e.depends_on_integration_id, list);
    }
    for (const list of inbound.values()) list.sort((a, b) => a.from.localeCompare(b.from));
    const impact: DependencyAnalysis['impact'] = [];
    const hit = new Set([integrationId]);
    let wave = [integrationId];
    for (let depth = 1; wave.length; depth++) {
      const next: string[] = [];
      for (const node of wave) {
        for (const e of inbound.get(node) ?? []) {
          if (hit.has(e.from)) continue;
          const breaks = REQUIREMENT_TYPES.includes(e.type);
          if (!breaks && depth > 1) continue;
          hit.add(e.from);
          impact.push({ integrationId: e.from, dependencyType: e.type, depth, effect: breaks ? 'breaks' : 'degrades' });
          if (breaks) next.push(e.from);
        }
      }
      wave = next;
    }

    const ids = [integrationId, ...requirements.map((r) => r.integrationId), ...conflictRows.rows.map((c) => c.other)];
    const status = await this.statuses(this.pool, [...new Set(ids)]);
    const statusOf = (id: string) => status.get(id) ?? 'unknown';
    const issues: AnalysisIssue[] = [];
    const recommendations: string[] = [];

    for (const c of cycles) {
      issues.push({ severity: 'critical', kind: 'CYCLE', message: `circular requirement: ${c.join(' -> ')}`, integrationIds: c });
      recommendations.push(`Break the cycle ${c.join(' -> ')} by removing one of its REQUIRES/DEPENDS_ON_DATA edges or turning it into ENHANCES.`);
    }
    const missing = requirements.filter((r) => statusOf(r.integrationId) === 'unknown');
    const inactive = requirements.filter((r) => statusOf(r.integrationId) === 'inactive');
    for (const r of missing) {
      const severity: RiskLevel = r.dependencyType === 'REQUIRES' ? (r.depth === 1 ? 'critical' : 'high') : r.depth === 1 ? 'high' : 'medium';
      issues.push({ severity, kind: 'MISSING_REQUIREMENT', message: `required integration ${r.integrationId} (${r.path.join(' -> ')}) is not known to the platform`, integrationIds: r.path });
      recommendations.push(`Register and activate ${r.integrationId}, or remove the ${r.dependencyType} dependency on it.`);
    }
    for (const r of inactive) {
      const severity: RiskLevel = r.dependencyType === 'REQUIRES' ? (r.depth === 1 ? 'critical' : 'high') : 'medium';
      issues.push({ severity, kind: 'INACTIVE_REQUIREMENT', message: `required integration ${r.integrationId} (${r.path.join(' -> ')}) is inactive`, integrationIds: r.path });
      recommendations.push(`Activate ${r.integrationId} before ${integrationId} goes live.`);
    }
    for (const r of requirements.filter((q) => statusOf(q.integrationId) === 'degraded')) {
      issues.push({ severity: 'medium', kind: 'DEGRADED_REQUIREMENT', message: `required integration ${r.integrationId} is degraded`, integrationIds: r.path });
      recommendations.push(`Check the health of ${r.integrationId}; ${integrationId} depends on it.`);
    }
    const conflicts = conflictRows.rows.map((c) => ({ integrationId: c.other, status: statusOf(c.other), dependencyId: c.id }));
    for (const c of conflicts.filter((x) => x.status === 'active' || x.status === 'degraded')) {
      const severity: RiskLevel = statusOf(integrationId) === 'active' ? 'critical' : 'high';
      issues.push({ severity, kind: 'ACTIVE_CONFLICT', message: `${integrationId} conflicts with ${c.integrationId}, which is active`, integrationIds: [integrationId, c.integrationId] });
      recommendations.push(`Deactivate ${c.integrationId} or keep ${integrationId} inactive: they cannot both be active.`);
    }
    const breaking = impact.filter((i) => i.effect === 'breaks').length;
    if (breaking >= 5) {
      issues.push({ severity: 'medium', kind: 'WIDE_IMPACT', message: `${breaking} integrations break if ${integrationId} goes down`, integrationIds: impact.map((i) => i.integrationId) });
      recommendations.push(`Add redundancy or a fallback for ${integrationId}: ${breaking} integrations require it.`);
    }
    const riskLevel = issues.reduce<RiskLevel>((worst, i) => (RANK[i.severity] > RANK[worst] ? i.severity : worst), 'low');
    if (issues.length === 0) recommendations.push(`No action needed: every requirement of ${integrationId} is present and active.`);

    return {
      integrationId,
      status: statusOf(integrationId),
      riskLevel,
      issues,
      recommendations: [...new Set(recommendations)],
      requirements: requirements.map((r) => ({ ...r, status: statusOf(r.integrationId) })),
      cycles,
      conflicts,
      missingRequirements: missing.map((r) => r.integrationId),
      inactiveRequirements: inactive.map((r) => r.integrationId),
      impact,
      analyzedAt: new Date(this.clock.now()).toISOString(),
    };
  }
}

function assertPlatformWrite(p: Principal, what: string): void {
  if (!isPlatform(p)) throw new DomainError(DomainCode.Forbidden, `${what} are platform objects: only operator and service tokens may change them`);
}

/** A requirement path from `from` to `to`, if one exists (then the new edge to->from closes a cycle). */
async function requirementPath(db: Queryable, from: string, to: string): Promise<string[] | null> {
  const { rows } = await db.query<{ path: string[] }>(
    `WITH RECURSIVE walk(node, path) AS (
       SELECT $1::text, ARRAY[$1::text]
       UNION ALL
       SELECT d.depends_on_integration_id, w.path || d.depends_on_integration_id
       FROM integration_dependencies d JOIN walk w ON d.integration_id = w.node
       WHERE d.dependency_type = ANY($3) AND NOT d.depends_on_integration_id = ANY(w.path)
     )
     SELECT path FROM walk WHERE node = $2 ORDER BY array_length(path, 1) LIMIT 1`,
    [from, to, REQUIREMENT_TYPES],
  );
  return rows[0]?.path ?? null;
}

/** Elementary cycles in a small adjacency map (each reported once, from its smallest id). */
function findCycles(adj: Map<string, Array<{ to: string }>>): string[][] {
  const cycles: string[][] = [];
  const keys = new Set<string>();
  const visit = (start: string, node: string, path: string[], onPath: Set<string>) => {
    for (const e of adj.get(node) ?? []) {
      if (e.to === start) {
        const cyc = [...path, start];
        const key = [...path].sort().join('|');
        if (!keys.has(key)) {
          keys.add(key);
          cycles.push(cyc);
        }
      } else if (!onPath.has(e.to) && e.to > start) {
        onPath.add(e.to);
        visit(start, e.to, [...path, e.to], onPath);
        onPath.delete(e.to);
      }
      if (cycles.length >= 20) return;
    }
  };
  for (const start of adj.keys()) visit(start, start, [start], new Set([start]));
  return cycles;
}
