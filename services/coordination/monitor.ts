import type { Clock } from '../../runtime/clock.js';
import type { Runtime } from '../../runtime/runtime.js';

export type ComponentStatus = 'up' | 'degraded' | 'down';

export interface ComponentHealth {
  status: ComponentStatus;
  details: Record<string, unknown>;
}

export interface CoordinationHealth {
  status: ComponentStatus;
  timestamp: string;
  components: {
    workflowEngine: ComponentHealth;
    dependencyResolution: ComponentHealth;
    resourceSharing: ComponentHealth;
    eventCoordination: ComponentHealth;
    database: ComponentHealth;
    messaging: ComponentHealth;
  };
}

const STUCK_AFTER_MS = 60 * 60 * 1000;
const NEW_WINDOW_DAYS = 7;
const worst = (a: ComponentStatus, b: ComponentStatus): ComponentStatus => (a === 'down' || b === 'down' ? 'down' : a === 'degraded' || b === 'degraded' ? 'degraded' : 'up');

/**
 * Health and metrics of the coordination layer, computed from Postgres and the runtime. A
 * component whose query fails is `down`; the document as a whole is as bad as its worst part.
 */
export class CoordinationMonitor {
  constructor(
    private readonly runtime: Runtime,
    private readonly clock: Clock,
  ) {}

  async #component(probe: () => Promise<ComponentHealth>): Promise<ComponentHealth> {
    try {
      return await probe();
    } catch (err) {
      return { status: 'down', details: { error: (err as Error).message } };
    }
  }

  async health(): Promise<CoordinationHealth> {
    const pool = this.runtime.database.pool;
    const now = new Date(this.clock.now());
    const rt = await this.runtime.health();
    const database: ComponentHealth = { status: rt.database.status, details: rt.database.error ? { error: rt.database.error } : {} };
    const workflowEngine = await this.#component(async () => {
      const deployed = this.runtime.host.registry.has('workflow');
      const { rows } = await pool.query<{ running: number; stuck: number }>(
        `SELECT count(*) FILTER (WHERE status = 'IN_PROGRESS')::int AS running,
                count(*) FILTER (WHERE status = 'IN_PROGRESS' AND updated_at < $1)::int AS stuck
         FROM actors WHERE type = 'workflow'`,
        [new Date(now.getTime() - STUCK_AFTER_MS)],
      );
      const r = rows[0]!;
      const status: ComponentStatus = !deployed || r.stuck > 0 || rt.timers.overdue > 0 ? 'degraded' : 'up';
      return { status, details: { deployed, inProgress: r.running, stuck: r.stuck, stuckAfterMs: STUCK_AFTER_MS, timersPending: rt.timers.pending, timersOverdue: rt.timers.overdue } };
    });
    const dependencyResolution = await this.#component(async () => {
      const { rows } = await pool.query<{ edges: number; integrations: number }>(
        `SELECT count(*)::int AS edges,
                (SELECT count(*)::int FROM (SELECT integration_id FROM integration_dependencies UNION SELECT depends_on_integration_id FROM integration_dependencies) x) AS integrations
         FROM integration_dependencies`,
      );
      return { status: 'up', details: rows[0]! };
    });
    const resourceSharing = await this.#component(async () => {
      const { rows } = await pool.query<{ resources: number; grants: number }>(
        `SELECT (SELECT count(*)::int FROM shared_resources WHERE is_active) AS resources,
                (SELECT count(*)::int FROM resource_access_grants WHERE is_active AND (expires_at IS NULL OR expires_at > $1)) AS grants`,
        [now],
      );
      return { status: 'up', details: { activeResources: rows[0]!.resources, liveGrants: rows[0]!.grants } };
    });
    const eventCoordination: ComponentHealth =
      rt.database.status === 'down'
        ? { status: 'down', details: { error: 'database unavailable' } }
        : {
            status: rt.outbox.oldestAgeMs > 30_000 || rt.deadLetters > 0 ? 'degraded' : 'up',
            details: { outboxPending: rt.outbox.pending, outboxLagMs: rt.outbox.oldestAgeMs, deadLetters: rt.deadLetters },
          };
    const messaging: ComponentHealth = {
      status: rt.database.status === 'down' ? 'down' : rt.outbox.oldestAgeMs > 30_000 ? 'degraded' : 'up',
      details: {
        transport: this.runtime.config.natsUrl ? 'nats' : 'in-process',
        partitionsOwned: rt.partitions.owned.length,
        partitionsTotal: rt.partitions.total,
        members: rt.partitions.members,
      },
    };
    const components = { workflowEngine, dependencyResolution, resourceSharing, eventCoordination, database, messaging };
    const status = Object.values(components).reduce<ComponentStatus>((acc, c) => worst(acc, c.status), 'up');
    return { status, timestamp: now.toISOString(), components };
  }

  async metrics() {
    const pool = this.runtime.database.pool;
    const now = new Date(this.clock.now());
    const since = new Date(now.getTime() - NEW_WINDOW_DAYS * 86_400_000);
    const rel = await pool.query(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE status = 'ACTIVE')::int AS active,
              count(*) FILTER (WHERE status = 'PENDING')::int AS pending,
              count(*) FILTER (WHERE status = 'SUSPENDED')::int AS suspended,
              count(*) FILTER (WHERE status = 'TERMINATED')::int AS terminated,
              count(*) FILTER (WHERE created_at >= $1)::int AS "new"
       FROM actors WHERE type = 'relationship' AND status <> 'DRAFT'`,
      [since],
    );
    const wf = await pool.query(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed,
              count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
              count(*) FILTER (WHERE status = 'IN_PROGRESS')::int AS "inProgress",
              (avg(extract(epoch FROM updated_at - created_at)) FILTER (WHERE status = 'COMPLETED') / 60)::float8 AS "averageCompletionTime"
       FROM actors WHERE type = 'workflow'`,
    );
    const res = await pool.query(
      `WITH live AS (SELECT resource_id, count(*) AS n FROM resource_access_grants WHERE is_active AND (expires_at IS NULL OR expires_at > $1) GROUP BY resource_id)
       SELECT count(*)::int AS total,
              count(*) FILTER (WHERE r.is_active)::int AS active,
              count(*) FILTER (WHERE r.is_active AND live.n > 0)::int AS shared,
              coalesce(avg(coalesce(live.n, 0)) FILTER (WHERE r.is_active), 0)::float8 AS "averageUtilization"
       FROM shared_resources r LEFT JOIN live ON live.resource_id = r.id`,
      [now],
    );
    const deps = await pool.query(
      `WITH s AS (
         SELECT d.dependency_type, coalesce(
           (SELECT CASE WHEN upper(a.status) IN ('ACTIVE','CONNECTED','RUNNING','SYNCING','HEALTHY','IDLE','READY') THEN 'active' ELSE 'inactive' END
            FROM actors a WHERE a.type = 'integration' AND a.id = d.depends_on_integration_id),
           (SELECT st.status FROM integration_status st WHERE st.integration_id = d.depends_on_integration_id),
           'unknown') AS target
         FROM integration_dependencies d)
       SELECT count(*)::int AS total,
              count(*) FILTER (WHERE dependency_type = 'REQUIRES')::int AS critical,
              count(*) FILTER (WHERE dependency_type IN ('REQUIRES','DEPENDS_ON_DATA') AND target IN ('active','degraded'))::int AS resolved,
              count(*) FILTER (WHERE dependency_type IN ('REQUIRES','DEPENDS_ON_DATA') AND target NOT IN ('active','degraded'))::int AS blocked
       FROM s`,
    );
    return {
      timestamp: now.toISOString(),
      relationships: { ...rel.rows[0], newWindowDays: NEW_WINDOW_DAYS },
      workflows: wf.rows[0],
      resources: res.rows[0],
      events: await this.#events(),
      dependencies: deps.rows[0],
    };
  }

  /** Cross-integration events live in their own table (another module); counted when present. */
  async #events(): Promise<Record<string, unknown>> {
    const pool = this.runtime.database.pool;
    const { rows } = await pool.query<{ t: string | null }>(`SELECT to_regclass('cross_integration_events')::text AS t`);
    if (!rows[0]?.t) return { total: 0, processed: 0, failed: 0, averageProcessingTime: null, available: false };
    try {
      const r = await pool.query(
        `SELECT count(*)::int AS total,
                count(*) FILTER (WHERE status IN ('processed', 'completed', 'delivered'))::int AS processed,
                count(*) FILTER (WHERE status = 'failed')::int AS failed,
                (avg(extract(epoch FROM processed_at - created_at)) * 1000)::float8 AS "averageProcessingTime"
         FROM cross_integration_events`,
      );
      return { ...r.rows[0], available: true };
    } catch (err) {
      return { total: 0, processed: 0, failed: 0, averageProcessingTime: null, available: false, error: (err as Error).message };
    }
  }
}
